/// Runs schema.sql statements inside the restore's transaction, each under a savepoint, so an
/// object that already exists is left alone (and reported) instead of failing the restore.
struct DDLApplier {
    let connection: PostgresConnection
    private(set) var created: [String] = []
    /// Tables this restore created (their names as schema.sql gives them): empty before the load.
    private(set) var createdTables: [String] = []
    private(set) var existing: [String] = []
    /// Grants and default privileges that could not be applied (a role the target lacks, or
    /// one the restoring role may not act for), with why.
    private(set) var skipped: [String] = []

    /// SQLSTATEs for "already exists": duplicate table, object, function, schema, alias.
    static let duplicates: Set<String> = ["42P07", "42710", "42723", "42P06", "42712"]
    /// Undefined role (42704) and insufficient privilege (42501): a grant the target cannot take.
    static let grantRefusals: Set<String> = ["42704", "42501"]
    /// Statements that set access control on objects other statements create.
    static let accessKinds: Set<String> = ["acl", "grant", "default-acl"]
    /// Statements a role without superuser may be refused (event triggers): skipped with why.
    static let privilegedKinds: Set<String> = ["event-trigger"]

    init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// What one applier did, to carry over from another connection's.
    struct Report: Sendable {
        var created: [String]
        var existing: [String]
        var skipped: [String]
    }

    var report: Report { Report(created: created, existing: existing, skipped: skipped) }

    /// Takes in what appliers on other connections did (a parallel fresh restore's indexes).
    mutating func absorb(_ report: Report) {
        created += report.created
        for object in report.existing { markExisting(object) }
        skipped += report.skipped
    }

    /// What kind of relation each kind of statement creates (`pg_class.relkind`).
    static let relationKinds: [String: (kinds: String, noun: String)] = [
        "table": ("rp", "table"), "view": ("v", "view"), "materialized-view": ("m", "materialized view"),
        "sequence": ("S", "sequence"), "index": ("iI", "index"),
    ]

    /// The kind of object that holds the name when it is not what `statement` creates (a table
    /// where the backup has a view): nil when it is the same kind, left alone as existing.
    func takenBySomethingElse(_ statement: SchemaScript.Statement) throws -> String? {
        if Self.relationKinds[statement.kind] != nil {
            guard
                let kind = try connection.query(
                    "SELECT relkind::text FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass($1)",
                    [statement.name]
                ).scalar, let expected = Self.relationKinds[statement.kind]
            else { return nil }
            if expected.kinds.contains(kind) { return nil }
            return Self.relationKinds.values.first { $0.kinds.contains(kind) }?.noun ?? "relation"
        }
        if statement.kind == "type" || statement.kind == "domain" {
            guard
                let kind = try connection.query(
                    """
                    SELECT CASE WHEN t.typtype = 'd' THEN 'domain' WHEN c.relkind IN ('r', 'p', 'v', 'm', 'f') THEN 'table'
                                ELSE 'type' END
                    FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
                    WHERE t.oid = pg_catalog.to_regtype($1)
                    """, [statement.name]
                ).scalar
            else { return nil }
            return kind == statement.kind ? nil : kind
        }
        return nil
    }

    /// `existing`, for lookups.
    private var existingSet: Set<String> = []

    private mutating func markExisting(_ object: String) {
        existing.append(object)
        existingSet.insert(object)
    }

    mutating func apply(_ statements: [SchemaScript.Statement]) throws {
        // As pg_restore: a function's body may name objects created after it.
        try connection.execute("SET LOCAL check_function_bodies = off")
        for statement in statements {
            let object = "\(statement.kind) \(statement.name)"
            // The ACL of an object that existed before the restore is the target's business.
            if statement.kind == "acl" || statement.kind == "grant",
                SchemaScript.object(of: statement.name, among: existingSet) != nil
            {
                continue
            }
            // A materialized view that was there keeps its own data.
            if statement.kind == "refresh" && existingSet.contains("materialized-view \(statement.name)") { continue }
            if statement.kind == "schema",
                try connection.query("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", [statement.name]).rows
                    .count == 1
            {
                markExisting(object)
                continue
            }
            do {
                // One round trip per statement, not three: a project's database is remote. On an
                // error the rest of the string does not run and the savepoint is rolled back to.
                let sql = statement.sql.hasSuffix(";") ? statement.sql : statement.sql + ";"
                try connection.execute("SAVEPOINT supabackup_ddl;\n\(sql)\nRELEASE SAVEPOINT supabackup_ddl")
                if !Self.accessKinds.contains(statement.kind) && !SchemaCapture.attachedKinds.contains(statement.kind) {
                    created.append(object)
                }
                if statement.kind == "table" { createdTables.append(statement.name) }
            } catch let error as PostgresError where Self.duplicates.contains(error.sqlState ?? "") {
                try connection.execute("ROLLBACK TO SAVEPOINT supabackup_ddl")
                if let other = try takenBySomethingElse(statement) {
                    throw RestoreError(
                        table: nil, underlying: error,
                        advice: "creating \(object) from schema.sql failed: the target has a \(other) of that name")
                }
                markExisting(object)
            } catch let error as PostgresError
                where (Self.accessKinds.contains(statement.kind) || Self.privilegedKinds.contains(statement.kind))
                && Self.grantRefusals.contains(error.sqlState ?? "")
            {
                try connection.execute("ROLLBACK TO SAVEPOINT supabackup_ddl")
                skipped.append("\(statement.kind) \(statement.name): \(error.message)")
            } catch let error as PostgresError
                where statement.kind == "policy" && statement.name.hasPrefix("storage.") && error.sqlState == "42P01"
            {
                // The app's policies on Supabase Storage's tables, restored where there is no Storage.
                try connection.execute("ROLLBACK TO SAVEPOINT supabackup_ddl")
                skipped.append("\(statement.kind) \(statement.name): the target has no Supabase Storage tables")
            } catch let error as PostgresError {
                throw RestoreError(
                    table: nil, underlying: error,
                    advice: "creating \(statement.kind) \(statement.name) from schema.sql failed")
            }
        }
    }
}
