import Foundation

/// Reads tables over one libpq connection inside one `REPEATABLE READ, READ ONLY` transaction.
final class DirectBackupSource: ParallelBackupSource {
    let mode = BackupMode.direct
    let consistentSnapshot = true
    let foreignKeysComplete = true
    let authPasswordHashes = true
    let warnings: [String] = []
    private let connection: PostgresConnection
    private let connectionString: ConnectionString
    /// The snapshot exported for worker connections.
    private var snapshot: String?
    /// Why the snapshot could not be exported (the backup then reads with one connection).
    private(set) var sharingFailure: String?

    var location: String { connection.location(connectionString) }

    /// - Parameter exportSnapshot: export the transaction's snapshot for worker connections
    ///   (`--jobs`). It must happen before any query and cannot be retried inside the
    ///   transaction, so a server that refuses (some poolers) gets a fresh transaction and one
    ///   connection.
    init(connection: ConnectionString, exportSnapshot: Bool = false) throws {
        self.connection = try DirectBackupSource.connect(connection)
        connectionString = connection
        try Session.begin(self.connection, .backup(snapshot: nil))
        if exportSnapshot {
            do {
                snapshot = try self.connection.query("SELECT pg_catalog.pg_export_snapshot()").scalar
            } catch let error as PostgresError where !error.isConnectionFailure {
                sharingFailure = error.message
                try self.connection.execute("ROLLBACK")
                try Session.begin(self.connection, .backup(snapshot: nil))
            }
        }
    }

    deinit { connection.close() }

    static func connect(_ connection: ConnectionString) throws -> PostgresConnection {
        try PostgresConnection.open(connection)
    }

    func tables(in schemas: [String], filters: [TableFilter]) throws -> [SourceTable] {
        let all = Array(Set(schemas + filters.compactMap(\.schema))).sorted()
        let existing = try Catalog.existingSchemas(all, on: connection)
        for schema in schemas where !existing.contains(schema) {
            throw UsageError("schema \(SQL.displayIdentifier(schema)) does not exist", code: .unknownName)
        }
        let classifier = TypeClassifier(connection: connection)
        return try Catalog.tables(in: all, on: connection).map { table in
            let columns = try table.columns.map { column in
                Manifest.Column(
                    name: column.name, type: column.type, nullable: column.nullable,
                    generated: column.isGenerated ? "stored" : nil,
                    identity: column.identity.manifestValue,
                    encoding: try classifier.encoding(forType: column.typeOid))
            }
            return SourceTable(
                name: table.tableName, partitioned: table.kind == .partitioned, columns: columns,
                primaryKey: table.primaryKey ?? [], foreignKeys: table.foreignKeys ?? [],
                estimatedRows: table.estimatedRows, oid: table.oid,
                renderKinds: try zip(table.columns, columns).map {
                    try classifier.renderKind(forType: $0.typeOid, encoding: $1.encoding)
                })
        }
    }

    func prepare(_ tables: [SourceTable]) throws -> [SourceTable] {
        guard !tables.isEmpty else { return tables }
        // Like pg_dump: keep the tables from being dropped or altered while we read them.
        try connection.execute(
            "LOCK TABLE " + tables.map(\.name.quoted).joined(separator: ", ") + " IN ACCESS SHARE MODE")
        return tables
    }

    func readRows(of table: SourceTable, slice: TableSlice?, _ body: (UnsafeRawBufferPointer) throws -> Void) throws
        -> Int64
    {
        try Self.copyRows(of: table, slice: slice, on: connection, body)
    }

    /// Who turns rows into JSON: the client from plain COPY text where it knows every type
    /// involved (the server's cheapest work), else the server's `row_to_json`. Both give the
    /// same bytes; `SUPABACKUP_RENDER=server` forces the server (a diagnostic).
    enum Rendering {
        case automatic, server
        static var current: Rendering {
            ProcessInfo.processInfo.environment["SUPABACKUP_RENDER"] == "server" ? .server : .automatic
        }
    }

    static func copyRows(
        of table: SourceTable, slice: TableSlice?, on connection: PostgresConnection,
        rendering: Rendering = .current, _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> Int64 {
        if rendering == .automatic, var renderer = ClientRendering(table.columns, kinds: table.renderKinds) {
            let statement = RowQuery.plainCopyStatement(
                table: table.name, partitioned: table.partitioned, selectItems: renderer.columns.map(\.selectItem),
                slice: slice)
            do {
                return Int64(try connection.copyOut(statement) { row in try renderer.render(row, body) })
            } catch let error as PostgresError {
                throw BackupError(table: table.name, underlying: error)
            }
        }
        let columns = table.columns.map { RowQuery.Column(name: $0.name, encoding: $0.encoding, nullable: $0.nullable) }
        let statement = RowQuery.copyStatement(
            table: table.name, partitioned: table.partitioned, columns: columns, slice: slice)
        let masked = RowQuery.maskedColumns(columns)
        do {
            if masked.isEmpty { return Int64(try connection.copyOut(statement, body)) }
            var mask = NullMask(columns: masked)
            return Int64(try connection.copyOut(statement) { row in try mask.line(row, body) })
        } catch let error as PostgresError {
            throw BackupError(table: table.name, underlying: error)
        }
    }

    /// Each table's size, for reading with several connections; nil without an exported
    /// snapshot. Block ranges need TID range scans (PostgreSQL 14+).
    func parallelLayout(of tables: [SourceTable]) throws -> [TableLayout]? {
        guard snapshot != nil else { return nil }
        let settings = try connection.query(
            "SELECT current_setting('server_version_num'), current_setting('block_size')")
        let version = Int(settings.rows.first?[0] ?? "") ?? 0
        guard version >= 120000 else { return nil }  // pg_partition_tree
        let blockSize = Int64(settings.rows.first?[1] ?? "") ?? 8192
        // Every table with its size; partitioned tables by leaf, with whether the leaf can be
        // read on its own (an ordinary table the role may select from, as pg_dump reads them).
        let sizes = try connection.query(
            """
            SELECT c.oid, c.relkind, l.relid, ln.nspname, lc.relname, lc.relkind,
                   pg_catalog.pg_relation_size(l.relid), pg_catalog.has_table_privilege(l.relid, 'SELECT')
            FROM pg_catalog.pg_class c
            CROSS JOIN LATERAL (SELECT t.relid FROM pg_catalog.pg_partition_tree(c.oid) t WHERE c.relkind = 'p' AND t.isleaf
                                UNION ALL SELECT c.oid WHERE c.relkind <> 'p') l
            JOIN pg_catalog.pg_class lc ON lc.oid = l.relid
            JOIN pg_catalog.pg_namespace ln ON ln.oid = lc.relnamespace
            WHERE c.oid = ANY($1::oid[])
            ORDER BY c.oid, l.relid
            """, ["{" + tables.map { String($0.oid) }.joined(separator: ",") + "}"])
        var byOid: [Int64: [(leaf: TableLayout.Leaf, readable: Bool)]] = [:]
        for row in sizes.rows {
            guard let oid = row[0].flatMap({ Int64($0) }) else { continue }
            let bytes = row[6].flatMap { Int64($0) } ?? 0
            let leaf = TableLayout.Leaf(
                name: TableName(schema: row[3] ?? "", name: row[4] ?? ""), bytes: bytes,
                blocks: version >= 140000 && row[5] == "r" ? bytes / max(blockSize, 1) : nil)
            byOid[oid, default: []].append((leaf, row[5] == "r" && row[7] == "t"))
        }
        return tables.map { table in
            let leaves = byOid[table.oid] ?? []
            let bytes = leaves.reduce(0) { $0 + $1.leaf.bytes }
            guard table.partitioned else {
                return TableLayout(bytes: bytes, splittableBlocks: leaves.first?.leaf.blocks)
            }
            let readable = !leaves.isEmpty && leaves.allSatisfy(\.readable)
            return TableLayout(bytes: bytes, splittableBlocks: nil, leaves: readable ? leaves.map(\.leaf) : nil)
        }
    }

    func makeReader(interrupt: ConnectionInterrupt) throws -> any RowReader {
        guard let snapshot else { throw InternalError("a worker reader was asked for without an exported snapshot") }
        return try SnapshotReader(connection: connectionString, snapshot: snapshot, interrupt: interrupt)
    }

    func close() {}

    func schemaScript(for tables: [SourceTable], schemas: [String]) throws -> (
        script: SchemaScript, warnings: [String]
    )? {
        // The platform owns its tables' definitions (a fresh project has them already), but the
        // policies on Storage's tables are the app's (pg_dump of the project holds them too).
        let policyTables = try connection.query(
            "SELECT oid::int8 FROM pg_catalog.pg_class WHERE oid IN (to_regclass('storage.objects'), to_regclass('storage.buckets'))"
        ).rows.compactMap { $0[0].flatMap { Int64($0) } }
        let result = try SchemaCapture.capture(
            schemas: schemas, tables: tables.filter { !Platform.isPlatformSchema($0.name.schema) }.map(\.oid),
            policyTables: policyTables, on: connection)
        return (result.script, result.warnings)
    }

    func sequences(feeding tables: [SourceTable]) throws -> [Manifest.Sequence] {
        try SequenceCatalog.sequences(feeding: tables.map(\.oid), on: connection)
    }

    func source() throws -> (source: Manifest.Source, serverVersion: String) {
        (
            Manifest.Source(
                host: connection.host, port: connection.port, database: connection.database, user: connection.user),
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

    /// - Parameter interrupt: ends the wait for the first transaction, which a pooler whose
    ///   pool is taken may hold back indefinitely.
    init(connection: ConnectionString, snapshot: String, interrupt: ConnectionInterrupt) throws {
        self.connection = try DirectBackupSource.connect(connection)
        self.snapshot = snapshot
        try interrupt.attach(self.connection)
        defer { interrupt.detach() }
        try begin()
    }

    deinit { connection.close() }

    private func begin() throws {
        try Session.begin(connection, .backup(snapshot: snapshot))
    }

    /// Takes the table's lock with NOWAIT first, like pg_dump's workers: the leader holds it
    /// already, and waiting behind another session's queued exclusive lock would deadlock.
    func readRows(of table: SourceTable, slice: TableSlice?, _ body: (UnsafeRawBufferPointer) throws -> Void) throws
        -> Int64
    {
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
        return try DirectBackupSource.copyRows(of: table, slice: slice, on: connection, body)
    }

    func close() {
        try? connection.execute("COMMIT")
        connection.close()
    }

    /// Another session is queued for a conflicting lock; the leader, which holds the lock, reads
    /// the table instead.
    struct LockBusy: Error {}
}
