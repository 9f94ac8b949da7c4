/// Reads tables over one libpq connection inside one `REPEATABLE READ, READ ONLY` transaction.
final class DirectBackupSource: BackupSource {
    let mode = "direct"
    let consistentSnapshot = true
    let foreignKeysComplete = true
    let authPasswordHashes = true
    let warnings: [String] = []
    private let connection: PostgresConnection
    private let connectionString: ConnectionString
    /// The snapshot exported for worker connections, once `parallelLayout` has run.
    private var snapshot: String?

    init(connection: ConnectionString) throws {
        self.connection = try DirectBackupSource.connect(connection)
        connectionString = connection
        try self.connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        // row_security = off makes RLS an error instead of a silently partial backup.
        try self.connection.execute("SET LOCAL row_security = off")
    }

    deinit { connection.close() }

    static func connect(_ connection: ConnectionString) throws -> PostgresConnection {
        let opened = try PostgresConnection.open(connection)
        try Session.configure(opened, applicationName: "supabackup backup", pinSearchPath: true)
        return opened
    }

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

    func readRows(of table: SourceTable, range: BlockRange?, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int64 {
        try Self.copyRows(of: table, range: range, on: connection, body)
    }

    static func copyRows(
        of table: SourceTable, range: BlockRange?, on connection: PostgresConnection,
        _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> Int64 {
        let statement = RowQuery.copyStatement(
            table: table.name, partitioned: table.partitioned,
            columns: table.columns.map { RowQuery.Column(name: $0.name, encoding: $0.encoding) }, range: range)
        do {
            return Int64(try connection.copyOut(statement, body))
        } catch let error as PostgresError {
            throw BackupError(table: table.name, underlying: error)
        }
    }

    /// Exports this transaction's snapshot for the workers and reads each table's size.
    /// Block ranges need TID range scans (PostgreSQL 14+); partitioned tables are never split.
    func parallelLayout(of tables: [SourceTable]) throws -> [TableLayout]? {
        snapshot = try connection.query("SELECT pg_catalog.pg_export_snapshot()").scalar
        let version = Int(try connection.query("SHOW server_version_num").scalar ?? "") ?? 0
        let sizes = try connection.query(
            """
            SELECT c.oid, CASE WHEN c.relkind = 'p' THEN coalesce((
                       SELECT sum(pg_catalog.pg_relation_size(p.relid)) FROM pg_catalog.pg_partition_tree(c.oid) p), 0)
                     ELSE pg_catalog.pg_relation_size(c.oid) END,
                   current_setting('block_size')
            FROM pg_catalog.pg_class c WHERE c.oid = ANY($1::oid[])
            """, ["{" + tables.map { String($0.oid) }.joined(separator: ",") + "}"])
        var byOid: [Int64: (bytes: Int64, blockSize: Int64)] = [:]
        for row in sizes.rows {
            guard let oid = row[0].flatMap({ Int64($0) }) else { continue }
            byOid[oid] = (row[1].flatMap { Int64($0) } ?? 0, row[2].flatMap { Int64($0) } ?? 8192)
        }
        return tables.map { table in
            let size = byOid[table.oid] ?? (0, 8192)
            let splittable = version >= 140000 && !table.partitioned
            return TableLayout(bytes: size.bytes, splittableBlocks: splittable ? size.bytes / max(size.blockSize, 1) : nil)
        }
    }

    func makeReader() throws -> any RowReader {
        guard let snapshot else { throw UsageError("no snapshot was exported for worker connections") }
        return try SnapshotReader(connection: connectionString, snapshot: snapshot)
    }

    func close() {}

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

/// A worker connection of a parallel backup: its own `REPEATABLE READ, READ ONLY` transaction
/// importing the leader's snapshot, so every connection sees the same data.
final class SnapshotReader: RowReader {
    private let connection: PostgresConnection
    private let snapshot: String
    private var locked: Set<Int64> = []

    init(connection: ConnectionString, snapshot: String) throws {
        self.connection = try DirectBackupSource.connect(connection)
        self.snapshot = snapshot
        try begin()
    }

    deinit { connection.close() }

    private func begin() throws {
        try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try connection.execute("SET TRANSACTION SNAPSHOT " + SQL.quoteLiteral(snapshot))
        try connection.execute("SET LOCAL row_security = off")
    }

    /// Takes the table's lock with NOWAIT first, like pg_dump's workers: the leader holds it
    /// already, and waiting behind another session's queued exclusive lock would deadlock.
    func readRows(of table: SourceTable, range: BlockRange?, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int64 {
        if !locked.contains(table.oid) {
            do {
                try connection.execute("LOCK TABLE \(table.name.quoted) IN ACCESS SHARE MODE NOWAIT")
            } catch let error as PostgresError where error.sqlState == "55P03" {
                // The failed statement ended the transaction; start over on the same snapshot.
                try connection.execute("ROLLBACK")
                locked.removeAll()
                try begin()
                throw LockBusy()
            }
            locked.insert(table.oid)
        }
        return try DirectBackupSource.copyRows(of: table, range: range, on: connection, body)
    }

    func close() {
        try? connection.execute("COMMIT")
        connection.close()
    }

    /// Another session is queued for a conflicting lock; the leader, which holds the lock, reads
    /// the table instead.
    struct LockBusy: Error {}
}
