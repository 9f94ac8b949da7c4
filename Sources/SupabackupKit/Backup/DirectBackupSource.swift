/// Reads tables over one libpq connection inside one `REPEATABLE READ, READ ONLY` transaction.
final class DirectBackupSource: BackupSource {
    let mode = "direct"
    let consistentSnapshot = true
    let foreignKeysComplete = true
    let authPasswordHashes = true
    let warnings: [String] = []
    private let connection: PostgresConnection

    init(connection: ConnectionString) throws {
        do {
            self.connection = try PostgresConnection(conninfo: connection.raw)
        } catch var error as PostgresError {
            error.message = connection.redact(error.message)
            throw error
        }
        try Session.configure(self.connection, applicationName: "supabackup backup", pinSearchPath: true)
        try self.connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        // row_security = off makes RLS an error instead of a silently partial backup.
        try self.connection.execute("SET LOCAL row_security = off")
    }

    deinit { connection.close() }

    func tables(in schemas: [String], filters: [TableFilter]) throws -> [SourceTable] {
        let all = Array(Set(schemas + filters.compactMap(\.schema))).sorted()
        let existing = try Catalog.existingSchemas(all, on: connection)
        for schema in schemas where !existing.contains(schema) {
            throw UsageError("schema \(SQL.displayIdentifier(schema)) does not exist")
        }
        let classifier = TypeClassifier(connection: connection)
        return try Catalog.tables(in: all, on: connection).map { table in
            SourceTable(
                name: table.tableName, partitioned: table.kind == "p",
                columns: try table.columns.map { column in
                    Manifest.Column(
                        name: column.name, type: column.type, nullable: column.nullable,
                        generated: column.isGenerated ? "stored" : nil,
                        identity: column.identity == "a" ? "always" : column.identity == "d" ? "by_default" : nil,
                        encoding: try classifier.encoding(forType: column.typeOid))
                },
                primaryKey: table.primaryKey ?? [], foreignKeys: table.foreignKeys ?? [],
                estimatedRows: table.estimatedRows, oid: table.oid)
        }
    }

    func prepare(_ tables: [SourceTable]) throws {
        guard !tables.isEmpty else { return }
        // Like pg_dump: keep the tables from being dropped or altered while we read them.
        try connection.execute(
            "LOCK TABLE " + tables.map(\.name.quoted).joined(separator: ", ") + " IN ACCESS SHARE MODE")
    }

    func readRows(of table: SourceTable, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int64 {
        let statement = RowQuery.copyStatement(
            table: table.name, partitioned: table.partitioned,
            columns: table.columns.map { RowQuery.Column(name: $0.name, encoding: $0.encoding) })
        do {
            return Int64(try connection.copyOut(statement, body))
        } catch let error as PostgresError {
            throw BackupError(table: table.name, underlying: error)
        }
    }

    func schemaScript(for tables: [SourceTable]) throws -> SchemaScript? {
        // The platform owns its tables' definitions (a fresh project has them already).
        try SchemaCapture.script(
            for: tables.filter { !Platform.isPlatformSchema($0.name.schema) }.map(\.oid), on: connection)
    }

    func sequences(feeding tables: [SourceTable]) throws -> [Manifest.Sequence] {
        try SequenceCatalog.sequences(feeding: tables.map(\.oid), on: connection)
    }

    func source() throws -> (source: Manifest.Source, serverVersion: String) {
        (
            Manifest.Source(host: connection.host, port: connection.port, database: connection.database, user: connection.user),
            try connection.query("SHOW server_version").scalar ?? ""
        )
    }

    func finish() throws {
        try connection.execute("COMMIT")
        connection.close()
    }
}
