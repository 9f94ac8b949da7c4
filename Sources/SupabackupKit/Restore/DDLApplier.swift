/// Runs schema.sql statements inside the restore's transaction, each under a savepoint, so an
/// object that already exists is left alone (and reported) instead of failing the restore.
struct DDLApplier {
    let connection: PostgresConnection
    private(set) var created: [String] = []
    private(set) var existing: [String] = []

    /// SQLSTATEs for "already exists": duplicate table, object, function, schema, alias.
    static let duplicates: Set<String> = ["42P07", "42710", "42723", "42P06", "42712"]

    init(connection: PostgresConnection) {
        self.connection = connection
    }

    mutating func apply(_ statements: [SchemaScript.Statement]) throws {
        for statement in statements {
            try connection.execute("SAVEPOINT supabackup_ddl")
            do {
                try connection.execute(statement.sql)
                try connection.execute("RELEASE SAVEPOINT supabackup_ddl")
                if !statement.sql.contains("IF NOT EXISTS") && statement.kind != "grant" && statement.kind != "comment" {
                    created.append("\(statement.kind) \(statement.name)")
                }
            } catch let error as PostgresError where Self.duplicates.contains(error.sqlState ?? "") {
                try connection.execute("ROLLBACK TO SAVEPOINT supabackup_ddl")
                existing.append("\(statement.kind) \(statement.name)")
            } catch let error as PostgresError {
                throw RestoreError(
                    table: nil, underlying: error,
                    advice: "creating \(statement.kind) \(statement.name) from schema.sql failed")
            }
        }
    }
}
