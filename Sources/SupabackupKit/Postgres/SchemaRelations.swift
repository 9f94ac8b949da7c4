import Foundation

/// Tables, views and what is bound to them: indexes, constraints, triggers, rules, policies,
/// statistics, publication membership.
extension SchemaCapture.Capture {
    /// Tables, parents before partitions, with their columns and inline constraints (three
    /// queries for all of them), storage options, and row level security.
    mutating func tables() throws {
        struct Relation: Decodable {
            var oid: String, name: String, unlogged: Bool, isPartition: Bool, partitionKey: String?, parent: String?
            var bound: String?, inherits: String?, parentOids: String?, options: String?, replicaIdentity: String,
                replicaIndex: String?
            var rowSecurity: Bool, forceRowSecurity: Bool, typed: Bool
        }
        struct Constraint: Decodable {
            var oid: String, relation: String, name: String, definition: String, kind: String, valid: Bool
        }
        let relations = try rows(
            Relation.self,
            """
            SELECT c.oid::text AS oid, c.oid::regclass::text AS name, c.relpersistence = 'u' AS unlogged,
                   c.relispartition AS is_partition, CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
                   CASE WHEN c.relispartition THEN (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid) END AS parent,
                   CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS bound,
                   CASE WHEN NOT c.relispartition THEN (SELECT string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno)
                        FROM pg_inherits i WHERE i.inhrelid = c.oid) END AS inherits,
                   (SELECT string_agg(i.inhparent::text, ',') FROM pg_inherits i WHERE i.inhrelid = c.oid) AS parent_oids,
                   concat_ws(', ', \(Self.options("c.reloptions")),
                        \(Self.options("(SELECT reloptions FROM pg_class WHERE oid = c.reltoastrelid)", prefix: "toast."))) AS options,
                   c.relreplident::text AS replica_identity,
                   (SELECT quote_ident(ic.relname) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                    WHERE i.indrelid = c.oid AND i.indisreplident) AS replica_index,
                   c.relrowsecurity AS row_security, c.relforcerowsecurity AS force_row_security, c.reloftype <> 0 AS typed
            FROM pg_class c WHERE c.oid = ANY($1::oid[]) ORDER BY c.relispartition, 2
            """)
        var columns: [String: [TableColumn]] = [:]
        for column in try rows(
            TableColumn.self,
            """
            SELECT a.attrelid::text AS relation, quote_ident(a.attname) AS name, format_type(a.atttypid, a.atttypmod) AS type,
                   a.attnotnull AS not_null, a.attidentity::text AS identity, a.attgenerated::text AS generated,
                   pg_get_expr(d.adbin, d.adrelid) AS expression, a.attislocal AS local,
                   CASE WHEN a.attcollation <> t.typcollation THEN \(Self.collate("a.attcollation")) END AS collation,
                   CASE WHEN a.attstattarget >= 0 THEN a.attstattarget END AS statistics,
                   CASE WHEN a.attstorage <> t.typstorage THEN CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
                        WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END END AS storage,
                   CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END AS compression,
                   \(Self.options("a.attoptions")) AS options,
                   identity.sequence AS identity_sequence, identity.options AS identity_options
            FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            -- An identity column's sequence, whose name and options the column declares.
            LEFT JOIN LATERAL (
                SELECT s.oid::regclass::text AS sequence, \(Self.sequenceOptions("q")) AS options
                FROM pg_depend dd JOIN pg_class s ON s.oid = dd.objid AND s.relkind = 'S' JOIN pg_sequence q ON q.seqrelid = s.oid
                WHERE a.attidentity <> '' AND dd.classid = 'pg_class'::regclass AND dd.refclassid = 'pg_class'::regclass
                  AND dd.refobjid = a.attrelid AND dd.refobjsubid = a.attnum AND dd.deptype = 'i'
            ) identity ON true
            WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum
            """)
        {
            columns[column.relation, default: []].append(column)
        }
        var constraints: [String: [Constraint]] = [:]
        for constraint in try rows(
            Constraint.self,
            """
            SELECT oid::text AS oid, conrelid::text AS relation, quote_ident(conname) AS name, pg_get_constraintdef(oid) AS definition,
                   contype::text AS kind, convalidated AS valid
            FROM pg_constraint WHERE conrelid = ANY($1::oid[]) AND contype IN ('p', 'u', 'c', 'x') AND conislocal
            ORDER BY conrelid, contype <> 'p', conname
            """)
        {
            constraints[constraint.relation, default: []].append(constraint)
        }
        for relation in relations {
            var inline = constraints[relation.oid] ?? []
            let later = inline.filter { !$0.valid }
            inline.removeAll { !$0.valid }
            let own = (columns[relation.oid] ?? []).filter { $0.local || relation.isPartition }
            var sql = "CREATE \(relation.unlogged ? "UNLOGGED " : "")TABLE \(relation.name)"
            if relation.isPartition, let parent = relation.parent, let bound = relation.bound {
                // A partition's columns are its parent's; it declares only its own checks.
                let checks = inline.filter { $0.kind == "c" }.map { "CONSTRAINT \($0.name) \($0.definition)" }
                sql +=
                    " PARTITION OF \(parent)"
                    + (checks.isEmpty ? "" : " (\n    " + checks.joined(separator: ",\n    ") + "\n)")
                sql += " \(bound)"
            } else {
                let elements =
                    own.map(Self.columnDefinition) + inline.map { "CONSTRAINT \($0.name) \($0.definition)" }
                sql += " (\n    " + elements.joined(separator: ",\n    ") + "\n)"
                if let parents = relation.inherits { sql += " INHERITS (\(parents))" }
            }
            if let key = relation.partitionKey { sql += " PARTITION BY \(key)" }
            if let options = relation.options, !options.isEmpty { sql += " WITH (\(options))" }
            sql += ";"
            for column in own where !relation.isPartition {
                let alter = "\nALTER TABLE ONLY \(relation.name) ALTER COLUMN \(column.name)"
                if let statistics = column.statistics { sql += "\(alter) SET STATISTICS \(statistics);" }
                if let storage = column.storage { sql += "\(alter) SET STORAGE \(storage);" }
                if let compression = column.compression { sql += "\(alter) SET COMPRESSION \(compression);" }
                if let options = column.options { sql += "\(alter) SET (\(options));" }
            }
            switch relation.replicaIdentity {
            case "f": sql += "\nALTER TABLE ONLY \(relation.name) REPLICA IDENTITY FULL;"
            case "n": sql += "\nALTER TABLE ONLY \(relation.name) REPLICA IDENTITY NOTHING;"
            default: break
            }
            if relation.typed {
                warnings.append(
                    "schema.sql creates \(relation.name) as an ordinary table: typed tables (OF type) are not captured")
            }
            let after = (relation.parentOids ?? "").split(separator: ",").compactMap { relationKeys[String($0)] }
            let key = add(.preData, "table", relation.name, sql, catalog: "pg_class", oid: relation.oid, after: after)
            relationKeys[relation.oid] = key
            accessObjects.append(AccessControl.table(relation.name, key: key))
            // An identity sequence comes with its table, and so does its ACL.
            for column in columns[relation.oid] ?? [] {
                if let sequence = column.identitySequence {
                    accessObjects.append(AccessControl.sequence(sequence, key: key))
                }
            }
            columnGrantTables.append((relation.name, key))
            for constraint in later {
                add(
                    .postData, "constraint", "\(relation.name).\(constraint.name)",
                    "ALTER TABLE \(relation.name) ADD CONSTRAINT \(constraint.name) \(constraint.definition);",
                    catalog: "pg_constraint", oid: constraint.oid, after: [key])
            }
            if let index = relation.replicaIndex {
                add(
                    .postData, "replica-identity", relation.name,
                    "ALTER TABLE ONLY \(relation.name) REPLICA IDENTITY USING INDEX \(index);",
                    after: [key])
            }
            if relation.rowSecurity {
                add(
                    .postData, "row-security", relation.name, "ALTER TABLE \(relation.name) ENABLE ROW LEVEL SECURITY;",
                    after: [key])
            }
            if relation.forceRowSecurity {
                add(
                    .postData, "row-security", relation.name, "ALTER TABLE \(relation.name) FORCE ROW LEVEL SECURITY;",
                    after: [key], key: "row-security-force \(relation.name)")
            }
        }
        for owner in pendingOwners {
            guard let table = relationKeys[owner.table] else { continue }
            add(.preData, "sequence-owner", owner.name, owner.sql, after: [owner.sequence, table])
        }
    }

    struct TableColumn: Decodable {
        var relation: String, name: String, type: String, notNull: Bool, identity: IdentityKind
        var generated: GeneratedKind, expression: String?, collation: String?, local: Bool, statistics: Int?
        var storage: String?, compression: String?, options: String?, identitySequence: String?
        var identityOptions: String?
    }

    private static func columnDefinition(_ column: TableColumn) -> String {
        var sql = "\(column.name) \(column.type)"
        if let collation = column.collation { sql += collation }
        if column.generated == .stored, let expression = column.expression {
            sql += " GENERATED ALWAYS AS (\(expression)) STORED"
        } else if column.identity != .none {
            sql += " GENERATED \(column.identity == .always ? "ALWAYS" : "BY DEFAULT") AS IDENTITY"
            if let sequence = column.identitySequence, let options = column.identityOptions {
                sql += " (SEQUENCE NAME \(sequence) \(options))"
            }
        } else if let expression = column.expression {
            sql += " DEFAULT \(expression)"
        }
        if column.notNull { sql += " NOT NULL" }
        return sql
    }

    /// Views and materialized views of the schemas (created without data; refreshed after the
    /// rows and indexes), with their options and column defaults.
    mutating func views() throws {
        guard present.views else { return }
        struct Row: Decodable {
            var oid: String; var name: String; var materialized: Bool; var populated: Bool; var sql: String
        }
        for row in try rows(
            Row.self,
            """
            SELECT c.oid::text AS oid, c.oid::regclass::text AS name, c.relkind = 'm' AS materialized, c.relispopulated AS populated,
                   'CREATE ' || CASE WHEN c.relkind = 'm' THEN 'MATERIALIZED VIEW ' ELSE 'VIEW ' END || c.oid::regclass::text
                   || coalesce(' WITH (' || \(Self.options("c.reloptions")) || ')', '') || E' AS\\n'
                   || rtrim(rtrim(pg_get_viewdef(c.oid)), ';') || CASE WHEN c.relkind = 'm' THEN E'\\n  WITH NO DATA' ELSE '' END || ';'
                   || coalesce((SELECT string_agg(E'\\nALTER VIEW ' || c.oid::regclass::text || ' ALTER COLUMN ' || quote_ident(a.attname)
                                  || ' SET DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) || ';', '' ORDER BY a.attnum)
                                FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                                WHERE d.adrelid = c.oid), '') AS sql
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY($2::text[]) AND \(Self.notExtensionMember("pg_class", "c.oid"))
            ORDER BY 2
            """)
        {
            let kind = row.materialized ? "materialized-view" : "view"
            let key = add(.preData, kind, row.name, row.sql, catalog: "pg_class", oid: row.oid)
            relationKeys[row.oid] = key
            boundRelations.append(row.oid)
            accessObjects.append(AccessControl.table(row.name, key: key))
            columnGrantTables.append((row.name, key))
            if row.materialized && row.populated {
                add(.postData, "refresh", row.name, "REFRESH MATERIALIZED VIEW \(row.name);", after: [key])
            }
        }
    }

    /// The oids of tables, views and materialized views schema.sql creates, for `$1`.
    var boundList: String { Self.oidList(relationOids + boundRelations) }

    /// Indexes no constraint creates: partitioned ones `ON ONLY` the parent, each partition's
    /// attached to its parent's, as pg_dump does.
    mutating func indexes() throws {
        struct Row: Decodable {
            var oid: String, name: String, bareName: String, relation: String, table: String, sql: String
            var parent: String?, clustered: Bool
        }
        for row in try rows(
            Row.self,
            """
            SELECT i.indexrelid::text AS oid, i.indexrelid::regclass::text AS name, i.indrelid::text AS relation,
                   (SELECT quote_ident(relname) FROM pg_class WHERE oid = i.indexrelid) AS bare_name,
                   i.indrelid::regclass::text AS table, pg_get_indexdef(i.indexrelid) AS sql, i.indisclustered AS clustered,
                   (SELECT p.inhparent::regclass::text FROM pg_inherits p WHERE p.inhrelid = i.indexrelid) AS parent
            FROM pg_index i
            WHERE i.indrelid = ANY($1::oid[])
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                              AND c.contype IN ('p', 'u', 'x'))
            ORDER BY 2
            """, [boundList])
        {
            var sql = row.sql + ";"
            var after = [relationKeys[row.relation]].compactMap { $0 }
            if let parent = row.parent {
                sql += "\nALTER INDEX \(parent) ATTACH PARTITION \(row.name);"
                after.append("index \(parent)")
            }
            if row.clustered {
                sql += "\nALTER TABLE \(row.table) CLUSTER ON \(row.bareName);"
            }
            add(.postData, "index", row.name, sql, catalog: "pg_class", oid: row.oid, after: after)
        }
    }

    /// What is bound to one relation (a foreign key, trigger, rule, policy, statistics object):
    /// `sql` returns `oid`, `name`, `relation` (the oid it is bound to) and `sql`; each statement
    /// follows its relation.
    mutating func addBound(
        _ kind: String, catalog: String, _ sql: String, _ parameters: [String?]? = nil
    ) throws {
        struct Row: Decodable { var oid: String; var name: String; var relation: String; var sql: String }
        for row in try rows(Row.self, sql, parameters) {
            add(
                .postData, kind, row.name, row.sql, catalog: catalog, oid: row.oid,
                after: [relationKeys[row.relation]].compactMap { $0 })
        }
    }

    /// An oid[] literal for `$1`.
    static func oidList(_ oids: [String]) -> String { "{" + oids.joined(separator: ",") + "}" }

    /// Foreign keys, declared ones only (a partitioned table's are cloned onto its partitions).
    mutating func constraints() throws {
        try addBound(
            "foreign-key", catalog: "pg_constraint",
            """
            SELECT oid::text AS oid, conrelid::regclass::text || '.' || quote_ident(conname) AS name, conrelid::text AS relation,
                   'ALTER TABLE ' || conrelid::regclass::text || ' ADD CONSTRAINT ' || quote_ident(conname) || ' '
                   || pg_get_constraintdef(oid) || ';' AS sql
            FROM pg_constraint WHERE conrelid = ANY($1::oid[]) AND contype = 'f' AND conparentid = 0 ORDER BY 2
            """)
    }

    /// Every trigger of the tables and views (constraint triggers, WHEN, transition tables,
    /// enabled state), and the app's triggers on auth.users (not the platform's own).
    mutating func triggers() throws {
        try addBound(
            "trigger", catalog: "pg_trigger",
            """
            SELECT t.oid::text AS oid, t.tgrelid::regclass::text || '.' || quote_ident(t.tgname) AS name, t.tgrelid::text AS relation,
                   pg_get_triggerdef(t.oid) || ';' || CASE t.tgenabled
                     WHEN 'D' THEN E'\\nALTER TABLE ' || t.tgrelid::regclass::text || ' DISABLE TRIGGER ' || quote_ident(t.tgname) || ';'
                     WHEN 'A' THEN E'\\nALTER TABLE ' || t.tgrelid::regclass::text || ' ENABLE ALWAYS TRIGGER ' || quote_ident(t.tgname) || ';'
                     WHEN 'R' THEN E'\\nALTER TABLE ' || t.tgrelid::regclass::text || ' ENABLE REPLICA TRIGGER ' || quote_ident(t.tgname) || ';'
                     ELSE '' END AS sql
            FROM pg_trigger t
            WHERE NOT t.tgisinternal AND t.tgparentid = 0
              AND (t.tgrelid = ANY($1::oid[])
                   OR (t.tgrelid = to_regclass('auth.users')
                       AND NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                                       WHERE p.oid = t.tgfoid AND n.nspname = ANY($2::text[]))))
            ORDER BY 2
            """, [boundList, Self.platform])
    }

    mutating func rules() throws {
        guard present.rules || present.views else { return }
        try addBound(
            "rule", catalog: "pg_rewrite",
            """
            SELECT r.oid::text AS oid, r.ev_class::regclass::text || '.' || quote_ident(r.rulename) AS name,
                   r.ev_class::text AS relation, pg_get_ruledef(r.oid) AS sql
            FROM pg_rewrite r WHERE r.ev_class = ANY($1::oid[]) AND r.rulename <> '_RETURN' ORDER BY 2
            """, [boundList])
    }

    /// Policies of the tables, and of `extraTables` (Storage's, whose definitions are the platform's).
    mutating func policies(extraTables: [Int64]) throws {
        try addBound(
            "policy", catalog: "pg_policy",
            """
            SELECT p.oid::text AS oid, p.polrelid::regclass::text || '.' || quote_ident(p.polname) AS name, p.polrelid::text AS relation,
                   'CREATE POLICY ' || quote_ident(p.polname) || ' ON ' || p.polrelid::regclass::text
                   || ' AS ' || CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END
                   || ' FOR ' || CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                  WHEN 'd' THEN 'DELETE' ELSE 'ALL' END
                   || ' TO ' || coalesce((SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', '
                                          ORDER BY r <> 0, pg_get_userbyid(r)) FROM unnest(p.polroles) r), 'PUBLIC')
                   || coalesce(' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', '')
                   || coalesce(' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', '') || ';' AS sql
            FROM pg_policy p WHERE p.polrelid = ANY($1::oid[]) ORDER BY 2
            """,
            [Self.oidList(relationOids + boundRelations + extraTables.map(String.init))])
    }

    mutating func statistics() throws {
        guard present.statistics || present.views else { return }
        try addBound(
            "statistics", catalog: "pg_statistic_ext",
            """
            SELECT s.oid::text AS oid, \(Self.qualified("n", "s.stxname")) AS name, s.stxrelid::text AS relation,
                   pg_get_statisticsobjdef(s.oid) || ';'
                   || CASE WHEN s.stxstattarget >= 0 THEN E'\\nALTER STATISTICS ' || \(Self.qualified("n", "s.stxname"))
                        || ' SET STATISTICS ' || s.stxstattarget || ';' ELSE '' END AS sql
            FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
            WHERE s.stxrelid = ANY($1::oid[]) ORDER BY 2
            """, [boundList])
    }

    /// The publications the tables belong to (Supabase Realtime's `supabase_realtime`; a
    /// project has it already and keeps its own), and each table's membership with its column
    /// list and row filter.
    mutating func publications() throws {
        guard present.publications else { return }
        let version = connection.serverVersion
        let columnsAndFilter =
            version >= 150000
            ? """
            || coalesce(' (' || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                                 WHERE a.attrelid = r.prrelid AND a.attnum = ANY(r.prattrs::int2[])) || ')', '')
            || coalesce(' WHERE (' || pg_get_expr(r.prqual, r.prrelid) || ')', '')
            """ : ""
        struct Publication: Decodable { var oid: String; var name: String; var sql: String }
        let publications = try rows(
            Publication.self,
            """
            SELECT p.oid::text AS oid, quote_ident(p.pubname) AS name,
                   'CREATE PUBLICATION ' || quote_ident(p.pubname) || CASE WHEN p.puballtables THEN ' FOR ALL TABLES' ELSE '' END
                   || ' WITH (publish = ' || quote_literal(concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END,
                        CASE WHEN p.pubupdate THEN 'update' END, CASE WHEN p.pubdelete THEN 'delete' END,
                        CASE WHEN p.pubtruncate THEN 'truncate' END))
                   || ', publish_via_partition_root = ' || p.pubviaroot || ');' AS sql
            FROM pg_publication p
            WHERE EXISTS (SELECT 1 FROM pg_publication_rel r WHERE r.prpubid = p.oid AND r.prrelid = ANY($1::oid[]))
            ORDER BY 2
            """)
        guard !publications.isEmpty else { return }
        for publication in publications {
            add(
                .preData, "publication", publication.name, publication.sql, catalog: "pg_publication",
                oid: publication.oid)
        }
        struct Member: Decodable {
            var oid: String; var name: String; var relation: String; var publication: String; var sql: String
        }
        for row in try rows(
            Member.self,
            """
            SELECT r.oid::text AS oid, quote_ident(p.pubname) || ' ' || r.prrelid::regclass::text AS name, r.prrelid::text AS relation,
                   quote_ident(p.pubname) AS publication,
                   'ALTER PUBLICATION ' || quote_ident(p.pubname) || ' ADD TABLE ONLY ' || r.prrelid::regclass::text
                   \(columnsAndFilter) || ';' AS sql
            FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
            WHERE r.prrelid = ANY($1::oid[]) ORDER BY 2
            """)
        {
            add(
                .postData, "publication-table", row.name, row.sql, catalog: "pg_publication_rel", oid: row.oid,
                after: [relationKeys[row.relation], "publication \(row.publication)"].compactMap { $0 })
        }
    }

    /// Event triggers whose function is the app's (creating one needs a superuser; a restore
    /// that may not skips it with a warning).
    mutating func eventTriggers() throws {
        guard present.eventTriggers else { return }
        for row in try rows(
            Object.self,
            """
            SELECT e.oid::text AS oid, quote_ident(e.evtname) AS name,
                   'CREATE EVENT TRIGGER ' || quote_ident(e.evtname) || ' ON ' || e.evtevent
                   || coalesce(E'\\n  WHEN TAG IN (' || (SELECT string_agg(quote_literal(t), ', ') FROM unnest(e.evttags) t) || ')', '')
                   || E'\\n  EXECUTE FUNCTION ' || e.evtfoid::regproc::text || '();'
                   || CASE e.evtenabled WHEN 'D' THEN E'\\nALTER EVENT TRIGGER ' || quote_ident(e.evtname) || ' DISABLE;'
                        WHEN 'A' THEN E'\\nALTER EVENT TRIGGER ' || quote_ident(e.evtname) || ' ENABLE ALWAYS;'
                        WHEN 'R' THEN E'\\nALTER EVENT TRIGGER ' || quote_ident(e.evtname) || ' ENABLE REPLICA;' ELSE '' END AS sql
            FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = ANY($2::text[]) AND \(Self.notExtensionMember("pg_event_trigger", "e.oid")) ORDER BY 2
            """)
        {
            add(.postData, "event-trigger", row.name, row.sql, catalog: "pg_event_trigger", oid: row.oid)
        }
    }
}
