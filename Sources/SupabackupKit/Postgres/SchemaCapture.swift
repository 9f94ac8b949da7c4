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
        var text = "-- Schema captured by supabackup \(Supabackup.version). Apply in order; sections: pre-data, then the\n"
            + "-- table rows, then post-data. Each statement follows a '\(Self.marker)<section> <kind> <name>' line.\n"
            + "SET check_function_bodies = false;\n\n"
        for statement in statements {
            text += Self.marker + "\(statement.section.rawValue) \(statement.kind) \(statement.name.replacingOccurrences(of: "\n", with: " "))\n"
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
                    throw ArchiveError(.damaged, "has a malformed statement marker: \(line.prefix(80))", file: "schema.sql")
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

/// Builds a `SchemaScript` for a set of tables from the catalog.
enum SchemaCapture {
    static func script(for tables: [Int64], on connection: PostgresConnection) throws -> SchemaScript {
        guard !tables.isEmpty else { return SchemaScript(statements: []) }
        let oids = "{" + tables.map(String.init).joined(separator: ",") + "}"
        _ = try connection.query("SELECT set_config('search_path', 'pg_catalog', true)")
        var pre: [SchemaScript.Statement] = []
        var post: [SchemaScript.Statement] = []
        func add(_ section: SchemaScript.Section, _ kind: String, _ name: String, _ sql: String) {
            let statement = SchemaScript.Statement(section: section, kind: kind, name: name, sql: sql)
            if section == .preData { pre.append(statement) } else { post.append(statement) }
        }

        // Schemas.
        let schemaNames = try connection.query(
            """
            SELECT DISTINCT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.oid = ANY($1::oid[]) ORDER BY 1
            """, [oids]).rows.map { $0[0]! }
        for name in schemaNames {
            add(.preData, "schema", name, "CREATE SCHEMA IF NOT EXISTS \(SQL.quoteIdentifier(name));")
        }

        // Extensions whose types the columns use or whose functions the defaults call.
        for row in try connection.query(
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
            SELECT DISTINCT e.extname, n.nspname FROM objects o
            JOIN pg_depend d ON d.classid = o.classid AND d.objid = o.objid AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
            JOIN pg_extension e ON e.oid = d.refobjid JOIN pg_namespace n ON n.oid = e.extnamespace
            ORDER BY 1
            """, [oids]).rows
        {
            add(.preData, "extension", row[0]!,
                "CREATE EXTENSION IF NOT EXISTS \(SQL.quoteIdentifier(row[0]!)) WITH SCHEMA \(SQL.quoteIdentifier(row[1]!));")
        }

        // User types the columns use (through arrays, domains and composites), dependencies first.
        let types = try connection.query(
            """
            WITH RECURSIVE used(oid, depth) AS (
                SELECT a.atttypid, 0 FROM pg_attribute a WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
                UNION
                SELECT x, u.depth + 1 FROM used u JOIN pg_type t ON t.oid = u.oid,
                    LATERAL (SELECT t.typelem UNION ALL SELECT t.typbasetype
                             UNION ALL SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = t.typrelid AND t.typtype = 'c' AND a.attnum > 0) v(x)
                WHERE x <> 0 AND u.depth < 20
            )
            SELECT t.oid::text, t.typtype::text, format_type(t.oid, NULL), max(u.depth) FROM used u
            JOIN pg_type t ON t.oid = u.oid JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typtype IN ('e', 'd', 'c') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
            GROUP BY 1, 2, 3 ORDER BY 4 DESC, 3
            """, [oids]).rows
        for row in types {
            let (oid, kind, name) = (row[0]!, row[1]!, row[2]!)
            switch kind {
            case "e":
                let labels = try connection.query(
                    "SELECT enumlabel FROM pg_enum WHERE enumtypid = $1::oid ORDER BY enumsortorder", [oid]).rows.map { SQL.quoteLiteral($0[0]!) }
                add(.preData, "type", name, "CREATE TYPE \(name) AS ENUM (\(labels.joined(separator: ", ")));")
            case "d":
                let info = try connection.query(
                    """
                    SELECT format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
                      (SELECT string_agg(' CONSTRAINT ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid), '' ORDER BY c.conname)
                         FROM pg_constraint c WHERE c.contypid = t.oid)
                    FROM pg_type t WHERE t.oid = $1::oid
                    """, [oid]).rows[0]
                var sql = "CREATE DOMAIN \(name) AS \(info[0]!)"
                if let value = info[2] { sql += " DEFAULT \(value)" }
                if info[1] == "t" { sql += " NOT NULL" }
                sql += (info[3] ?? "") + ";"
                add(.preData, "type", name, sql)
            default:
                let attributes = try connection.query(
                    """
                    SELECT quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                    FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid
                    WHERE t.oid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
                    """, [oid]).rows.map { $0[0]! }
                add(.preData, "type", name, "CREATE TYPE \(name) AS (\(attributes.joined(separator: ", ")));")
            }
        }

        // Sequences the columns draw from that are not identity sequences.
        let sequences = try connection.query(
            """
            SELECT DISTINCT s.oid::regclass::text, format_type(q.seqtypid, NULL), q.seqincrement, q.seqmin, q.seqmax,
                   q.seqstart, q.seqcache, q.seqcycle
            FROM pg_attrdef ad
            JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
            JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
            JOIN pg_sequence q ON q.seqrelid = s.oid
            WHERE ad.adrelid = ANY($1::oid[])
            ORDER BY 1
            """, [oids]).rows
        for row in sequences {
            add(.preData, "sequence", row[0]!,
                "CREATE SEQUENCE \(row[0]!) AS \(row[1]!) INCREMENT BY \(row[2]!) MINVALUE \(row[3]!) MAXVALUE \(row[4]!) START WITH \(row[5]!) CACHE \(row[6]!)\(row[7] == "t" ? " CYCLE" : "");")
        }

        // Functions that triggers, policies, defaults and checks call (not the platform's or extensions').
        let functions = try connection.query(
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
            SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM objects o JOIN pg_proc p ON p.oid = o.fn
            JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'auth', 'storage', 'extensions', 'realtime', 'vault', 'graphql', 'pgsodium')
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
              AND p.prokind = 'f'
            ORDER BY 1
            """, [oids]).rows
        for row in functions {
            var sql = row[1]!
            if sql.hasPrefix("CREATE OR REPLACE FUNCTION") {
                sql = "CREATE FUNCTION" + sql.dropFirst("CREATE OR REPLACE FUNCTION".count)
            }
            add(.preData, "function", row[0]!, sql.trimmingCharacters(in: .whitespacesAndNewlines) + ";")
        }

        // Tables, parents before partitions.
        let relations = try connection.query(
            """
            SELECT c.oid::text, c.oid::regclass::text, c.relkind::text, c.relispartition,
                   CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                   CASE WHEN c.relispartition THEN (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid) END,
                   CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
                   c.relrowsecurity, c.relforcerowsecurity, obj_description(c.oid, 'pg_class')
            FROM pg_class c
            WHERE c.oid = ANY($1::oid[])
               OR c.oid IN (SELECT i.inhrelid FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                            WHERE i.inhparent = ANY($1::oid[]) AND p.relkind = 'p')
            ORDER BY c.relispartition, 2
            """, [oids]).rows
        for relation in relations {
            let (oid, name, isPartition) = (relation[0]!, relation[1]!, relation[3] == "t")
            let constraints = try connection.query(
                """
                SELECT quote_ident(conname), pg_get_constraintdef(oid), contype::text FROM pg_constraint
                WHERE conrelid = $1::oid AND contype IN ('p', 'u', 'c', 'x') AND conislocal ORDER BY contype <> 'p', conname
                """, [oid]).rows
            var elements: [String] = []
            if isPartition {
                var sql = "CREATE TABLE \(name) PARTITION OF \(relation[5]!)"
                let local = constraints.filter { $0[2] == "c" }.map { "CONSTRAINT \($0[0]!) \($0[1]!)" }
                if !local.isEmpty { sql += " (" + local.joined(separator: ", ") + ")" }
                add(.preData, "table", name, sql + " \(relation[6]!);")
                continue
            }
            for column in try connection.query(
                """
                SELECT quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity::text,
                       a.attgenerated::text, pg_get_expr(d.adbin, d.adrelid),
                       CASE WHEN a.attcollation <> t.typcollation THEN (SELECT quote_ident(n.nspname) || '.' || quote_ident(co.collname)
                            FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace WHERE co.oid = a.attcollation) END
                FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
                """, [oid]).rows
            {
                var sql = "\(column[0]!) \(column[1]!)"
                if let collation = column[6] { sql += " COLLATE \(collation)" }
                if column[4] == "s", let expression = column[5] {
                    sql += " GENERATED ALWAYS AS (\(expression)) STORED"
                } else if column[3] == "a" {
                    sql += " GENERATED ALWAYS AS IDENTITY"
                } else if column[3] == "d" {
                    sql += " GENERATED BY DEFAULT AS IDENTITY"
                } else if let expression = column[5] {
                    sql += " DEFAULT \(expression)"
                }
                if column[2] == "t" { sql += " NOT NULL" }
                elements.append(sql)
            }
            elements += constraints.map { "CONSTRAINT \($0[0]!) \($0[1]!)" }
            var sql = "CREATE TABLE \(name) (\n    " + elements.joined(separator: ",\n    ") + "\n)"
            if let key = relation[4] { sql += " PARTITION BY \(key)" }
            add(.preData, "table", name, sql + ";")
            if relation[7] == "t" { add(.postData, "row-security", name, "ALTER TABLE \(name) ENABLE ROW LEVEL SECURITY;") }
            if relation[8] == "t" { add(.postData, "row-security", name, "ALTER TABLE \(name) FORCE ROW LEVEL SECURITY;") }
            if let comment = relation[9] { add(.postData, "comment", name, "COMMENT ON TABLE \(name) IS \(SQL.quoteLiteral(comment));") }
        }

        // Sequence ownership (serial columns).
        for row in try connection.query(
            """
            SELECT s.oid::regclass::text, t.oid::regclass::text || '.' || quote_ident(a.attname)
            FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
            JOIN pg_class t ON t.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
            WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a'
              AND d.refobjid = ANY($1::oid[]) ORDER BY 1
            """, [oids]).rows
        {
            add(.preData, "sequence-owner", row[0]!, "ALTER SEQUENCE \(row[0]!) OWNED BY \(row[1]!);")
        }

        // Post-data: foreign keys, indexes, policies, triggers, grants, column comments.
        for row in try connection.query(
            """
            SELECT conrelid::regclass::text, quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = ANY($1::oid[]) AND contype = 'f' AND conparentid = 0 ORDER BY 1, 2
            """, [oids]).rows
        {
            add(.postData, "foreign-key", "\(row[0]!).\(row[1]!)", "ALTER TABLE \(row[0]!) ADD CONSTRAINT \(row[1]!) \(row[2]!);")
        }
        for row in try connection.query(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
            WHERE i.indrelid = ANY($1::oid[])
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
            ORDER BY 1
            """, [oids]).rows
        {
            add(.postData, "index", row[0]!, row[1]! + ";")
        }
        for row in try connection.query(
            """
            SELECT quote_ident(p.schemaname) || '.' || quote_ident(p.tablename), quote_ident(p.policyname), p.permissive, p.cmd,
                   (SELECT string_agg(CASE WHEN r = 'public' THEN 'PUBLIC' ELSE quote_ident(r) END, ', ') FROM unnest(p.roles) r),
                   p.qual, p.with_check
            FROM pg_policies p JOIN pg_class c ON c.relname = p.tablename
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = p.schemaname
            WHERE c.oid = ANY($1::oid[]) ORDER BY 1, 2
            """, [oids]).rows
        {
            var sql = "CREATE POLICY \(row[1]!) ON \(row[0]!) AS \(row[2]!) FOR \(row[3]!) TO \(row[4] ?? "PUBLIC")"
            if let qual = row[5] { sql += " USING (\(qual))" }
            if let check = row[6] { sql += " WITH CHECK (\(check))" }
            add(.postData, "policy", "\(row[0]!).\(row[1]!)", sql + ";")
        }
        for row in try connection.query(
            """
            SELECT t.tgrelid::regclass::text || '.' || quote_ident(t.tgname), pg_get_triggerdef(t.oid)
            FROM pg_trigger t
            WHERE (t.tgrelid = ANY($1::oid[]) OR t.tgrelid = to_regclass('auth.users')) AND NOT t.tgisinternal AND t.tgparentid = 0
              AND NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                              WHERE p.oid = t.tgfoid AND n.nspname IN ('auth', 'storage', 'realtime', 'supabase_functions'))
            ORDER BY 1
            """, [oids]).rows
        {
            add(.postData, "trigger", row[0]!, row[1]! + ";")
        }
        // Access control: every created object's ACL as in the source, whatever the target's
        // default privileges add; then the schemas' own default privileges.
        var objects = schemaNames.map(AccessControl.schema)
        objects += relations.map { AccessControl.table($0[1]!, key: "table \($0[1]!)") }
        objects += sequences.map { AccessControl.sequence($0[0]!, key: "sequence \($0[0]!)") }
        for row in try connection.query(
            """
            SELECT s.oid::regclass::text, d.refobjid::regclass::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
            WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i'
              AND s.relkind = 'S' AND d.refobjid = ANY($1::oid[]) ORDER BY 1
            """, [oids]).rows
        {
            objects.append(AccessControl.sequence(row[0]!, key: "table \(row[1]!)"))
        }
        objects += functions.map { AccessControl.function($0[0]!) }
        post += try AccessControl.statements(for: objects, on: connection)
        post += try AccessControl.columnGrants(relations.map { ($0[1]!, "table \($0[1]!)") }, on: connection)
        post += try AccessControl.defaultPrivileges(in: schemaNames, on: connection)
        for row in try connection.query(
            """
            SELECT c.oid::regclass::text || '.' || quote_ident(a.attname), d.description FROM pg_description d
            JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
            WHERE c.oid = ANY($1::oid[]) AND d.objsubid > 0 ORDER BY 1
            """, [oids]).rows
        {
            add(.postData, "comment", row[0]!, "COMMENT ON COLUMN \(row[0]!) IS \(SQL.quoteLiteral(row[1]!));")
        }
        return SchemaScript(statements: pre + post)
    }
}
