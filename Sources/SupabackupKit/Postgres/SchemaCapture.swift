import Foundation

/// Builds schema.sql from the catalog with PostgreSQL's own functions (`pg_get_functiondef`,
/// `pg_get_viewdef`, `pg_get_indexdef`, `pg_get_constraintdef`, `pg_get_triggerdef`,
/// `pg_get_ruledef`, `pg_get_statisticsobjdef`, `pg_get_expr`, `format_type`), never from a
/// pg_dump binary, whose version would have to match the server's.
///
/// It holds every object of the backed-up schemas that pg_dump would dump for them: the
/// backed-up tables with everything bound to them, and every type, function, view, sequence,
/// ... of those schemas, ordered by pg_depend. An object that depends on a table of those
/// schemas left out of the backup (a view on an excluded table) is left out too, with a
/// warning. One query per kind of object, never one per object: a project's catalog is remote.
enum SchemaCapture {
    struct Result {
        var script: SchemaScript
        /// What the source holds that schema.sql cannot carry or leaves out, one line each.
        var warnings: [String]
    }

    /// - Parameters:
    ///   - schemas: the backed-up schemas (platform schemas are the platform's and skipped).
    ///   - tables: the backed-up tables' oids (their partitions come along).
    ///   - policyTables: more tables whose policies (only) belong to the app: Storage's
    ///     `storage.objects` and `storage.buckets`, whose definitions are the platform's.
    static func capture(
        schemas: [String], tables: [Int64], policyTables: [Int64] = [], on connection: PostgresConnection
    ) throws -> Result {
        let schemas = schemas.filter { !Platform.isPlatformSchema($0) }
        guard !tables.isEmpty || !policyTables.isEmpty || !schemas.isEmpty else {
            return Result(script: SchemaScript(statements: []), warnings: [])
        }
        _ = try connection.query("SELECT set_config('search_path', 'pg_catalog', true)")
        var capture = try Capture(connection: connection, schemas: schemas, tables: tables)
        try capture.schemas()
        try capture.collations()
        try capture.types()
        try capture.functions()
        try capture.aggregates()
        try capture.sequences()
        try capture.tables()
        try capture.views()
        try capture.indexes()
        try capture.constraints()
        try capture.triggers()
        try capture.rules()
        try capture.policies(extraTables: policyTables)
        try capture.statistics()
        try capture.publications()
        try capture.eventTriggers()
        try capture.links()
        capture.leaveOutDependentsOfExcluded()
        capture.refreshInDependencyOrder()
        capture.comments()
        try capture.accessControl()
        try capture.uncaptured()
        return Result(script: SchemaScript(statements: SchemaOrder.sorted(capture.nodes)), warnings: capture.warnings)
    }

    /// Schemas whose functions and triggers belong to the platform, never to the app.
    static let platformSchemas = ["pg_catalog", "information_schema"] + Platform.schemas.map(\.name)

    /// Kind ranks within a section, as pg_dump orders its archive.
    static let ranks: [String: Int] = [
        "schema": 0, "extension": 1, "collation": 2, "type": 3, "domain": 4, "function": 5, "procedure": 5,
        "aggregate": 6, "sequence": 7, "table": 8, "sequence-owner": 9, "view": 10, "materialized-view": 11,
        "index": 20, "constraint": 21, "foreign-key": 22, "trigger": 23, "rule": 24, "row-security": 25,
        "policy": 26, "statistics": 27, "publication": 28, "publication-table": 29, "refresh": 30,
        "event-trigger": 31, "comment": 40, "acl": 41, "grant": 42, "default-acl": 43,
    ]

    struct Capture {
        let connection: PostgresConnection
        /// The backed-up schemas, as a text[] literal for `$2`.
        let schemaList: String
        /// The captured relations (backed-up tables and their partitions), as an oid[] literal for `$1`.
        let relationList: String
        var nodes: [SchemaOrder.Node] = []
        /// Catalog object -> node key, for reading pg_depend: (catalog, oid, key).
        private(set) var members: [(catalog: String, oid: String, key: String)] = []
        var warnings: [String] = []
        /// Relations of the backed-up schemas that are not captured (tables left out of the
        /// backup, foreign tables): what depends on them cannot be created.
        private(set) var excluded: [(oid: String, name: String)] = []
        /// Objects whose ACL schema.sql sets.
        var accessObjects: [AccessControl.Object] = []
        /// Tables and views whose column privileges schema.sql sets: (name, node key).
        var columnGrantTables: [(name: String, key: String)] = []
        /// Relation oid -> its node key.
        var relationKeys: [String: String] = [:]
        /// The captured tables' oids; `boundRelations` the views' and materialized views'.
        let relationOids: [String]
        var boundRelations: [String] = []
        /// `OWNED BY` statements waiting for their table: (sequence name, sql, sequence key, table oid).
        var pendingOwners: [(name: String, sql: String, sequence: String, table: String)] = []
        /// Comments on captured objects, read with their dependencies; added once the nodes are final.
        var commentRows: [Comment] = []

        init(connection: PostgresConnection, schemas: [String], tables: [Int64]) throws {
            self.connection = connection
            // Partitions at any depth come with their partitioned table.
            let relations = try connection.decode(
                Oid.self,
                """
                WITH RECURSIVE r(oid) AS (
                    SELECT unnest($1::oid[])
                    UNION SELECT i.inhrelid FROM pg_inherits i JOIN r ON i.inhparent = r.oid
                    JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relispartition
                ) SELECT oid::text AS oid FROM r ORDER BY 1
                """, ["{" + tables.map(String.init).joined(separator: ",") + "}"])
            relationOids = relations.map(\.oid)
            relationList = Self.oidList(relationOids)
            schemaList = SQL.textArrayLiteral(schemas)
            // What kinds of object there are at all, in one query: the query for a kind that is
            // absent is not sent (planning catalog queries is most of what capture costs).
            let inventory = try connection.decode(
                Inventory.self,
                """
                WITH scope AS (SELECT oid FROM pg_namespace WHERE nspname = ANY($2::text[]))
                SELECT
                  (SELECT coalesce(json_agg(json_build_object('oid', c.oid::text, 'name', c.oid::regclass::text)
                                            ORDER BY c.oid::regclass::text), '[]')
                   FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM scope) AND c.relkind IN ('r', 'p', 'f')
                     AND c.oid <> ALL($1::oid[])
                     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                     AND d.deptype = 'e')) AS excluded,
                  EXISTS (SELECT 1 FROM pg_type WHERE typnamespace IN (SELECT oid FROM scope) AND typtype IN ('e', 'r', 'd'))
                    OR EXISTS (SELECT 1 FROM pg_class WHERE relnamespace IN (SELECT oid FROM scope) AND relkind = 'c')
                    OR EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = ANY($1::oid[]) AND atttypid >= 16384) AS types,
                  EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace IN (SELECT oid FROM scope) AND prokind = 'a') AS aggregates,
                  EXISTS (SELECT 1 FROM pg_collation WHERE collnamespace IN (SELECT oid FROM scope)) AS collations,
                  EXISTS (SELECT 1 FROM pg_class WHERE relnamespace IN (SELECT oid FROM scope) AND relkind IN ('v', 'm')) AS views,
                  EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class = ANY($1::oid[]) AND rulename <> '_RETURN') AS rules,
                  EXISTS (SELECT 1 FROM pg_statistic_ext WHERE stxrelid = ANY($1::oid[])) AS statistics,
                  EXISTS (SELECT 1 FROM pg_publication_rel WHERE prrelid = ANY($1::oid[])) AS publications,
                  EXISTS (SELECT 1 FROM pg_event_trigger) AS event_triggers,
                  EXISTS (SELECT 1 FROM pg_class WHERE relnamespace IN (SELECT oid FROM scope) AND relkind = 'f')
                    OR EXISTS (SELECT 1 FROM pg_operator WHERE oprnamespace IN (SELECT oid FROM scope))
                    OR EXISTS (SELECT 1 FROM pg_opfamily WHERE opfnamespace IN (SELECT oid FROM scope))
                    OR EXISTS (SELECT 1 FROM pg_type WHERE typnamespace IN (SELECT oid FROM scope) AND typtype = 'b'
                               AND typcategory <> 'A')
                    OR EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgnamespace IN (SELECT oid FROM scope))
                    OR EXISTS (SELECT 1 FROM pg_ts_dict WHERE dictnamespace IN (SELECT oid FROM scope))
                    OR EXISTS (SELECT 1 FROM pg_conversion WHERE connamespace IN (SELECT oid FROM scope))
                    OR EXISTS (SELECT 1 FROM pg_cast WHERE oid >= 16384) AS uncaptured
                """, [relationList, schemaList]
            ).first!
            excluded = inventory.excluded.map { ($0.oid, $0.name) }
            present = inventory
        }

        /// Which kinds of object the catalog has (a superset: extensions' members count).
        struct Inventory: Decodable {
            var excluded: [OidAndName]
            var types, aggregates, collations, views, rules, statistics, publications, eventTriggers, uncaptured: Bool
        }
        let present: Inventory

        struct Oid: Decodable { var oid: String }
        struct OidAndName: Decodable { var oid: String; var name: String }
        struct Object: Decodable { var oid: String; var name: String; var sql: String }

        /// `sql`'s rows; `$1` is the captured tables, `$2` the backed-up schemas unless told.
        func rows<T: Decodable>(_ type: T.Type, _ sql: String, _ parameters: [String?]? = nil) throws -> [T] {
            let parameters = parameters ?? [relationList, schemaList]
            // A parameter the query does not use would have no type: give it one.
            var sql = sql
            for number in 1...parameters.count where !sql.contains("$\(number)") {
                sql = "SELECT q.* FROM (\(sql)) q WHERE $\(number)::text IS NOT NULL"
            }
            return try connection.decode(type, sql, parameters)
        }

        /// Adds a statement; `catalog`/`oid` name the catalog object it creates (for pg_depend).
        @discardableResult
        mutating func add(
            _ section: SchemaScript.Section, _ kind: String, _ name: String, _ sql: String,
            catalog: String? = nil, oid: String? = nil, after: [String] = [], key: String? = nil
        ) -> String {
            let key = key ?? "\(kind) \(name)"
            let statement = SchemaScript.Statement(section: section, kind: kind, name: name, sql: sql)
            nodes.append(
                SchemaOrder.Node(
                    key: key, statement: statement, rank: SchemaCapture.ranks[kind] ?? 50, after: Set(after)))
            if let catalog, let oid { members.append((catalog, oid, key)) }
            return key
        }

        func has(_ key: String) -> Bool { nodes.contains { $0.key == key } }

        /// Leaves out what cannot be created without a table the backup left out, and says so.
        mutating func leaveOutDependentsOfExcluded() {
            var gone = Set(excluded.map { "excluded \($0.name)" })
            var reasons: [String: String] = [:]
            for name in excluded.map(\.name) { reasons["excluded \(name)"] = name }
            var changed = true
            while changed {
                changed = false
                for node in nodes where !gone.contains(node.key) {
                    if let cause = node.after.first(where: gone.contains) {
                        gone.insert(node.key)
                        reasons[node.key] = reasons[cause]
                        changed = true
                    }
                }
            }
            for node in nodes
            where gone.contains(node.key) && !SchemaCapture.attachedKinds.contains(node.statement.kind) {
                warnings.append(
                    "schema.sql leaves out \(node.key): it needs \(reasons[node.key] ?? "a table"), which this backup does not hold"
                )
            }
            nodes.removeAll { gone.contains($0.key) }
        }
    }

    /// Statements that belong to another object (reported with it, not on their own).
    static let attachedKinds: Set<String> = [
        "comment", "acl", "grant", "sequence-owner", "refresh", "row-security", "replica-identity",
    ]
}
