import Foundation

/// The DDL of what a backup holds, built from PostgreSQL's own catalog functions
/// (`format_type`, `pg_get_expr`, `pg_get_constraintdef`, `pg_get_indexdef`,
/// `pg_get_triggerdef`, `pg_get_functiondef`, `pg_policies`), never from pg_dump.
///
/// Statements are split into pre-data (what the rows need: schemas, extensions, types,
/// sequences, functions, tables with their primary, unique and check constraints) and
/// post-data (foreign keys, indexes, row level security, policies, triggers, grants, comments),
/// so a restore can create tables, load rows, then add the rest.
public struct SchemaScript: Sendable, Equatable {
    public enum Section: String, Sendable {
        case preData = "pre-data"
        case postData = "post-data"
    }

    public struct Statement: Sendable, Equatable {
        public var section: Section
        /// `table`, `type`, `function`, `policy`, ...
        public var kind: String
        public var name: String
        public var sql: String
    }

    public var statements: [Statement]

    static let marker = "-- supabackup: "

    /// The file text: each statement under a marker line naming its section, kind and object.
    public func render() -> String {
        var text =
            "-- Schema captured by supabackup \(Supabackup.version). Apply in order; sections: pre-data, then the\n"
            + "-- table rows, then post-data. Each statement follows a '\(Self.marker)<section> <kind> <name>' line.\n"
            + "SET check_function_bodies = false;\n\n"
        for statement in statements {
            text +=
                Self.marker
                + "\(statement.section.rawValue) \(statement.kind) \(statement.name.replacingOccurrences(of: "\n", with: " "))\n"
            text += statement.sql + "\n\n"
        }
        return text
    }

    public init(statements: [Statement]) {
        self.statements = statements
    }

    /// Reads a file written by `render()`.
    public init(parsing text: String) throws {
        var statements: [Statement] = []
        var current: Statement?
        var body: [Substring] = []
        func close() {
            if var statement = current {
                statement.sql = body.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
                statements.append(statement)
            }
            body = []
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(Self.marker) {
                close()
                let parts = line.dropFirst(Self.marker.count).split(separator: " ", maxSplits: 2).map(String.init)
                guard parts.count == 3, let section = Section(rawValue: parts[0]) else {
                    throw ArchiveError(
                        .damaged, "has a malformed statement marker: \(line.prefix(80))", file: "schema.sql")
                }
                current = Statement(section: section, kind: parts[1], name: parts[2], sql: "")
            } else if current != nil {
                body.append(line)
            }
        }
        close()
        self.statements = statements
    }
}

/// Builds a `SchemaScript` for a set of tables from the catalog, one function per kind of
/// object; every query's rows are decoded by column name (`PostgresConnection.decode`), so a
/// catalog of another shape is an error that says so, not a crash.
enum SchemaCapture {
    /// - Parameter policyTables: more tables whose policies (only) belong to the app: Storage's
    ///   `storage.objects` and `storage.buckets`, whose definitions are the platform's.
    static func script(for tables: [Int64], policyTables: [Int64] = [], on connection: PostgresConnection) throws
        -> SchemaScript
    {
        guard !tables.isEmpty || !policyTables.isEmpty else { return SchemaScript(statements: []) }
        _ = try connection.query("SELECT set_config('search_path', 'pg_catalog', true)")
        var capture = Capture(connection: connection, oids: "{" + tables.map(String.init).joined(separator: ",") + "}")
        let schemas = try capture.schemas()
        try capture.extensions()
        try capture.types()
        let sequences = try capture.sequences()
        let functions = try capture.functions()
        let relations = try capture.tables()
        try capture.sequenceOwnership()
        try capture.foreignKeys()
        try capture.indexes()
        try capture.policies(on: "{" + (tables + policyTables).map(String.init).joined(separator: ",") + "}")
        try capture.triggers()
        try capture.accessControl(schemas: schemas, relations: relations, sequences: sequences, functions: functions)
        try capture.columnComments()
        return SchemaScript(statements: capture.pre + capture.post)
    }

    /// Schemas whose functions and triggers belong to the platform, never to the app.
    static let platformSchemas = ["pg_catalog", "information_schema"] + Platform.schemas.map(\.name)

    private struct Capture {
        let connection: PostgresConnection
        /// The backed-up tables' oids, as an array literal for `$1::oid[]`.
        let oids: String
        var pre: [SchemaScript.Statement] = []
        var post: [SchemaScript.Statement] = []

        init(connection: PostgresConnection, oids: String) {
            self.connection = connection
            self.oids = oids
        }

        mutating func add(_ section: SchemaScript.Section, _ kind: String, _ name: String, _ sql: String) {
            let statement = SchemaScript.Statement(section: section, kind: kind, name: name, sql: sql)
            if section == .preData { pre.append(statement) } else { post.append(statement) }
        }

        func rows<T: Decodable>(_ type: T.Type, _ sql: String, _ parameters: [String?]? = nil) throws -> [T] {
            try connection.decode(type, sql, parameters ?? [oids])
        }

        struct Name: Decodable { var name: String }
        struct NameAndSQL: Decodable { var name: String; var sql: String }

        mutating func schemas() throws -> [String] {
            let names = try rows(
                Name.self,
                """
                SELECT DISTINCT n.nspname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.oid = ANY($1::oid[]) ORDER BY 1
                """
            ).map(\.name)
            for name in names {
                add(.preData, "schema", name, "CREATE SCHEMA IF NOT EXISTS \(SQL.quoteIdentifier(name));")
            }
            return names
        }

        /// Extensions whose types the columns use or whose functions the defaults call.
        mutating func extensions() throws {
            struct Row: Decodable { var name: String; var schema: String }
            for row in try rows(
                Row.self,
                """
                WITH RECURSIVE used(oid) AS (
                    SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
                    UNION
                    SELECT x FROM used u JOIN pg_type t ON t.oid = u.oid,
                        LATERAL (VALUES (t.typelem), (t.typbasetype)) v(x) WHERE x <> 0
                ), objects(classid, objid) AS (
                    SELECT 'pg_type'::regclass, oid FROM used
                    UNION
                    SELECT d.refclassid, d.refobjid FROM pg_attrdef ad
                    JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_proc'::regclass
                    WHERE ad.adrelid = ANY($1::oid[])
                )
                SELECT DISTINCT e.extname AS name, n.nspname AS schema FROM objects o
                JOIN pg_depend d ON d.classid = o.classid AND d.objid = o.objid AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
                JOIN pg_extension e ON e.oid = d.refobjid JOIN pg_namespace n ON n.oid = e.extnamespace
                ORDER BY 1
                """)
            {
                add(
                    .preData, "extension", row.name,
                    "CREATE EXTENSION IF NOT EXISTS \(SQL.quoteIdentifier(row.name)) WITH SCHEMA \(SQL.quoteIdentifier(row.schema));"
                )
            }
        }

        /// User types the columns use (through arrays, domains and composites), dependencies first.
        mutating func types() throws {
            struct Row: Decodable { var oid: String; var kind: String; var name: String }
            let types = try rows(
                Row.self,
                """
                WITH RECURSIVE used(oid, depth) AS (
                    SELECT a.atttypid, 0 FROM pg_attribute a WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
                    UNION
                    SELECT x, u.depth + 1 FROM used u JOIN pg_type t ON t.oid = u.oid,
                        LATERAL (SELECT t.typelem UNION ALL SELECT t.typbasetype
                                 UNION ALL SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = t.typrelid AND t.typtype = 'c' AND a.attnum > 0) v(x)
                    WHERE x <> 0 AND u.depth < 20
                )
                SELECT t.oid::text AS oid, t.typtype::text AS kind, format_type(t.oid, NULL) AS name FROM used u
                JOIN pg_type t ON t.oid = u.oid JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE t.typtype IN ('e', 'd', 'c') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                  AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
                GROUP BY 1, 2, 3 ORDER BY max(u.depth) DESC, 3
                """)
            for type in types {
                switch type.kind {
                case "e":
                    let labels = try rows(
                        Name.self,
                        "SELECT enumlabel AS name FROM pg_enum WHERE enumtypid = $1::oid ORDER BY enumsortorder",
                        [type.oid])
                    add(
                        .preData, "type", type.name,
                        "CREATE TYPE \(type.name) AS ENUM (\(labels.map { SQL.quoteLiteral($0.name) }.joined(separator: ", ")));"
                    )
                case "d":
                    struct Domain: Decodable {
                        var base: String; var notNull: Bool; var defaultValue: String?; var constraints: String?
                    }
                    guard
                        let domain = try rows(
                            Domain.self,
                            """
                            SELECT format_type(t.typbasetype, t.typtypmod) AS base, t.typnotnull AS not_null, t.typdefault AS default_value,
                              (SELECT string_agg(' CONSTRAINT ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid), '' ORDER BY c.conname)
                                 FROM pg_constraint c WHERE c.contypid = t.oid) AS constraints
                            FROM pg_type t WHERE t.oid = $1::oid
                            """, [type.oid]
                        ).first
                    else { continue }
                    var sql = "CREATE DOMAIN \(type.name) AS \(domain.base)"
                    if let value = domain.defaultValue { sql += " DEFAULT \(value)" }
                    if domain.notNull { sql += " NOT NULL" }
                    add(.preData, "type", type.name, sql + (domain.constraints ?? "") + ";")
                default:
                    let attributes = try rows(
                        Name.self,
                        """
                        SELECT quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod) AS name
                        FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid
                        WHERE t.oid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
                        """, [type.oid])
                    add(
                        .preData, "type", type.name,
                        "CREATE TYPE \(type.name) AS (\(attributes.map(\.name).joined(separator: ", ")));")
                }
            }
        }

        /// Sequences the columns draw from that are not identity sequences.
        mutating func sequences() throws -> [String] {
            let sequences = try rows(
                NameAndSQL.self,
                """
                SELECT DISTINCT s.oid::regclass::text AS name,
                       'CREATE SEQUENCE ' || s.oid::regclass::text || ' AS ' || format_type(q.seqtypid, NULL)
                       || ' INCREMENT BY ' || q.seqincrement || ' MINVALUE ' || q.seqmin || ' MAXVALUE ' || q.seqmax
                       || ' START WITH ' || q.seqstart || ' CACHE ' || q.seqcache || CASE WHEN q.seqcycle THEN ' CYCLE' ELSE '' END
                       || ';' AS sql
                FROM pg_attrdef ad
                JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
                JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
                JOIN pg_sequence q ON q.seqrelid = s.oid
                WHERE ad.adrelid = ANY($1::oid[])
                ORDER BY 1
                """)
            for sequence in sequences { add(.preData, "sequence", sequence.name, sequence.sql) }
            return sequences.map(\.name)
        }

        /// Functions that triggers, policies, defaults and checks call (not the platform's or
        /// extensions'), as `CREATE FUNCTION` so an existing one is left alone.
        mutating func functions() throws -> [String] {
            let functions = try rows(
                NameAndSQL.self,
                """
                WITH objects AS (
                    SELECT t.tgfoid AS fn FROM pg_trigger t WHERE t.tgrelid = ANY($1::oid[]) AND NOT t.tgisinternal
                    UNION SELECT t.tgfoid FROM pg_trigger t WHERE t.tgrelid = to_regclass('auth.users') AND NOT t.tgisinternal
                    UNION SELECT d.refobjid FROM pg_policy p JOIN pg_depend d ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid
                          AND d.refclassid = 'pg_proc'::regclass WHERE p.polrelid = ANY($1::oid[])
                    UNION SELECT d.refobjid FROM pg_attrdef ad JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                          AND d.refclassid = 'pg_proc'::regclass WHERE ad.adrelid = ANY($1::oid[])
                    UNION SELECT d.refobjid FROM pg_constraint c JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass
                          AND d.objid = c.oid AND d.refclassid = 'pg_proc'::regclass WHERE c.conrelid = ANY($1::oid[])
                )
                SELECT p.oid::regprocedure::text AS name, pg_get_functiondef(p.oid) AS sql FROM objects o JOIN pg_proc p ON p.oid = o.fn
                JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname <> ALL($2::text[])
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
                  AND p.prokind = 'f'
                ORDER BY 1
                """, [oids, SQL.textArrayLiteral(SchemaCapture.platformSchemas)])
            for function in functions {
                var sql = function.sql
                if sql.hasPrefix("CREATE OR REPLACE FUNCTION") {
                    sql = "CREATE FUNCTION" + sql.dropFirst("CREATE OR REPLACE FUNCTION".count)
                }
                add(.preData, "function", function.name, sql.trimmingCharacters(in: .whitespacesAndNewlines) + ";")
            }
            return functions.map(\.name)
        }

        /// Tables, parents before partitions, with row level security and comments.
        mutating func tables() throws -> [String] {
            struct Relation: Decodable {
                var oid: String, name: String, isPartition: Bool, partitionKey: String?, parent: String?, bound: String?
                var rowSecurity: Bool, forceRowSecurity: Bool, comment: String?
            }
            struct Constraint: Decodable { var name: String; var definition: String; var kind: String }
            let relations = try rows(
                Relation.self,
                """
                SELECT c.oid::text AS oid, c.oid::regclass::text AS name, c.relispartition AS is_partition,
                       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
                       CASE WHEN c.relispartition THEN (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid) END AS parent,
                       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS bound,
                       c.relrowsecurity AS row_security, c.relforcerowsecurity AS force_row_security,
                       obj_description(c.oid, 'pg_class') AS comment
                FROM pg_class c
                WHERE c.oid = ANY($1::oid[])
                   OR c.oid IN (SELECT i.inhrelid FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                                WHERE i.inhparent = ANY($1::oid[]) AND p.relkind = 'p')
                ORDER BY c.relispartition, 2
                """)
            for relation in relations {
                let constraints = try rows(
                    Constraint.self,
                    """
                    SELECT quote_ident(conname) AS name, pg_get_constraintdef(oid) AS definition, contype::text AS kind FROM pg_constraint
                    WHERE conrelid = $1::oid AND contype IN ('p', 'u', 'c', 'x') AND conislocal ORDER BY contype <> 'p', conname
                    """, [relation.oid])
                if relation.isPartition, let parent = relation.parent, let bound = relation.bound {
                    var sql = "CREATE TABLE \(relation.name) PARTITION OF \(parent)"
                    let local = constraints.filter { $0.kind == "c" }.map { "CONSTRAINT \($0.name) \($0.definition)" }
                    if !local.isEmpty { sql += " (" + local.joined(separator: ", ") + ")" }
                    add(.preData, "table", relation.name, sql + " \(bound);")
                    continue
                }
                var elements = try rows(
                    Column.self,
                    """
                    SELECT quote_ident(a.attname) AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
                           a.attidentity::text AS identity, a.attgenerated::text AS generated, pg_get_expr(d.adbin, d.adrelid) AS expression,
                           CASE WHEN a.attcollation <> t.typcollation THEN (SELECT quote_ident(n.nspname) || '.' || quote_ident(co.collname)
                                FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace WHERE co.oid = a.attcollation) END AS collation
                    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                    WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
                    """, [relation.oid]
                ).map(Self.columnDefinition)
                elements += constraints.map { "CONSTRAINT \($0.name) \($0.definition)" }
                var sql = "CREATE TABLE \(relation.name) (\n    " + elements.joined(separator: ",\n    ") + "\n)"
                if let key = relation.partitionKey { sql += " PARTITION BY \(key)" }
                add(.preData, "table", relation.name, sql + ";")
                if relation.rowSecurity {
                    add(
                        .postData, "row-security", relation.name,
                        "ALTER TABLE \(relation.name) ENABLE ROW LEVEL SECURITY;")
                }
                if relation.forceRowSecurity {
                    add(
                        .postData, "row-security", relation.name,
                        "ALTER TABLE \(relation.name) FORCE ROW LEVEL SECURITY;")
                }
                if let comment = relation.comment {
                    add(
                        .postData, "comment", relation.name,
                        "COMMENT ON TABLE \(relation.name) IS \(SQL.quoteLiteral(comment));")
                }
            }
            return relations.map(\.name)
        }

        struct Column: Decodable {
            var name: String, type: String, notNull: Bool, identity: IdentityKind, generated: GeneratedKind
            var expression: String?, collation: String?
        }

        private static func columnDefinition(_ column: Column) -> String {
            var sql = "\(column.name) \(column.type)"
            if let collation = column.collation { sql += " COLLATE \(collation)" }
            if column.generated == .stored, let expression = column.expression {
                sql += " GENERATED ALWAYS AS (\(expression)) STORED"
            } else if column.identity == .always {
                sql += " GENERATED ALWAYS AS IDENTITY"
            } else if column.identity == .byDefault {
                sql += " GENERATED BY DEFAULT AS IDENTITY"
            } else if let expression = column.expression {
                sql += " DEFAULT \(expression)"
            }
            if column.notNull { sql += " NOT NULL" }
            return sql
        }

        /// Sequence ownership (serial columns).
        mutating func sequenceOwnership() throws {
            for row in try rows(
                NameAndSQL.self,
                """
                SELECT s.oid::regclass::text AS name,
                       'ALTER SEQUENCE ' || s.oid::regclass::text || ' OWNED BY ' || t.oid::regclass::text || '.' || quote_ident(a.attname) || ';' AS sql
                FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
                JOIN pg_class t ON t.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a'
                  AND d.refobjid = ANY($1::oid[]) ORDER BY 1
                """)
            {
                add(.preData, "sequence-owner", row.name, row.sql)
            }
        }

        mutating func foreignKeys() throws {
            for row in try rows(
                NameAndSQL.self,
                """
                SELECT conrelid::regclass::text || '.' || quote_ident(conname) AS name,
                       'ALTER TABLE ' || conrelid::regclass::text || ' ADD CONSTRAINT ' || quote_ident(conname) || ' '
                       || pg_get_constraintdef(oid) || ';' AS sql
                FROM pg_constraint WHERE conrelid = ANY($1::oid[]) AND contype = 'f' AND conparentid = 0 ORDER BY 1
                """)
            {
                add(.postData, "foreign-key", row.name, row.sql)
            }
        }

        /// Indexes that no primary, unique or exclusion constraint already creates.
        mutating func indexes() throws {
            for row in try rows(
                NameAndSQL.self,
                """
                SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) || ';' AS sql FROM pg_index i
                WHERE i.indrelid = ANY($1::oid[])
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
                ORDER BY 1
                """)
            {
                add(.postData, "index", row.name, row.sql)
            }
        }

        mutating func policies(on tables: String) throws {
            struct Row: Decodable {
                var table: String, name: String, permissive: String, command: String, roles: String?, qual: String?,
                    check: String?
            }
            for row in try rows(
                Row.self,
                """
                SELECT quote_ident(p.schemaname) || '.' || quote_ident(p.tablename) AS table, quote_ident(p.policyname) AS name,
                       p.permissive, p.cmd AS command,
                       (SELECT string_agg(CASE WHEN r = 'public' THEN 'PUBLIC' ELSE quote_ident(r) END, ', ') FROM unnest(p.roles) r) AS roles,
                       p.qual, p.with_check AS check
                FROM pg_policies p JOIN pg_class c ON c.relname = p.tablename
                JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = p.schemaname
                WHERE c.oid = ANY($1::oid[]) ORDER BY 1, 2
                """, [tables])
            {
                var sql =
                    "CREATE POLICY \(row.name) ON \(row.table) AS \(row.permissive) FOR \(row.command) TO \(row.roles ?? "PUBLIC")"
                if let qual = row.qual { sql += " USING (\(qual))" }
                if let check = row.check { sql += " WITH CHECK (\(check))" }
                add(.postData, "policy", "\(row.table).\(row.name)", sql + ";")
            }
        }

        /// The tables' triggers and the app's triggers on auth.users, not the platform's own.
        mutating func triggers() throws {
            for row in try rows(
                NameAndSQL.self,
                """
                SELECT t.tgrelid::regclass::text || '.' || quote_ident(t.tgname) AS name, pg_get_triggerdef(t.oid) || ';' AS sql
                FROM pg_trigger t
                WHERE (t.tgrelid = ANY($1::oid[]) OR t.tgrelid = to_regclass('auth.users')) AND NOT t.tgisinternal AND t.tgparentid = 0
                  AND NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                                  WHERE p.oid = t.tgfoid AND n.nspname = ANY($2::text[]))
                ORDER BY 1
                """, [oids, SQL.textArrayLiteral(SchemaCapture.platformSchemas)])
            {
                add(.postData, "trigger", row.name, row.sql)
            }
        }

        /// Every created object's ACL as in the source, whatever the target's default
        /// privileges add; then the schemas' own default privileges.
        mutating func accessControl(schemas: [String], relations: [String], sequences: [String], functions: [String])
            throws
        {
            var objects = schemas.map(AccessControl.schema)
            objects += relations.map { AccessControl.table($0, key: "table \($0)") }
            objects += sequences.map { AccessControl.sequence($0, key: "sequence \($0)") }
            struct Identity: Decodable { var sequence: String; var table: String }
            for row in try rows(
                Identity.self,
                """
                SELECT s.oid::regclass::text AS sequence, d.refobjid::regclass::text AS table FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
                WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i'
                  AND s.relkind = 'S' AND d.refobjid = ANY($1::oid[]) ORDER BY 1
                """)
            {
                objects.append(AccessControl.sequence(row.sequence, key: "table \(row.table)"))
            }
            objects += functions.map(AccessControl.function)
            post += try AccessControl.statements(for: objects, on: connection)
            post += try AccessControl.columnGrants(relations.map { ($0, "table \($0)") }, on: connection)
            post += try AccessControl.defaultPrivileges(in: schemas, on: connection)
        }

        mutating func columnComments() throws {
            struct Row: Decodable { var column: String; var description: String }
            for row in try rows(
                Row.self,
                """
                SELECT c.oid::regclass::text || '.' || quote_ident(a.attname) AS column, d.description FROM pg_description d
                JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
                JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
                WHERE c.oid = ANY($1::oid[]) AND d.objsubid > 0 ORDER BY 1
                """)
            {
                add(
                    .postData, "comment", row.column,
                    "COMMENT ON COLUMN \(row.column) IS \(SQL.quoteLiteral(row.description));")
            }
        }
    }
}
