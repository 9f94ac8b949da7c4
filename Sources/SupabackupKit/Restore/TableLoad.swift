import Foundation

/// Loading one table's rows over a connection, shared by the one-transaction restore and the
/// parallel loads of a fresh restore: COPY text from the client where the values allow it, the
/// server-side JSON path otherwise.
enum TableLoad {
    /// The fast path: rows converted to COPY text on the client. Into an empty table they are
    /// COPY'd straight in (under a lock that keeps other writers out until commit; with
    /// `skipTriggers`, without per-row foreign-key triggers, checked later); otherwise
    /// into a typed temporary table, then upserted. Returns nil, having changed nothing, when a
    /// value needs the server-side JSON path (composite values).
    static func asText(
        _ step: RestorePlan.Step, table: Manifest.Table, archive: BackupArchive, on connection: PostgresConnection,
        skipTriggers: Bool
    ) throws -> (written: Int64, inserted: Int64?, path: LoadPath)? {
        let columns = step.columns
        guard !columns.isEmpty else { return nil }
        let list = columns.map { SQL.quoteIdentifier($0.name) }.joined(separator: ", ")
        let empty = try connection.query("SELECT NOT EXISTS (SELECT 1 FROM \(step.table.quoted))").scalar == "t"
        try connection.execute("SAVEPOINT supabackup_text")
        do {
            if empty {
                try connection.execute("LOCK TABLE \(step.table.quoted) IN SHARE ROW EXCLUSIVE MODE")
                if try connection.query("SELECT NOT EXISTS (SELECT 1 FROM \(step.table.quoted))").scalar != "t" {
                    try connection.execute("ROLLBACK TO SAVEPOINT supabackup_text")
                    return nil
                }
                if skipTriggers { try connection.execute("SET LOCAL session_replication_role = replica") }
                try copyText(
                    columns, into: "\(step.table.quoted) (\(list))", table: table, archive: archive, on: connection)
                if skipTriggers { try connection.execute("SET LOCAL session_replication_role = origin") }
                try connection.execute("RELEASE SAVEPOINT supabackup_text")
                return (table.rows, table.rows, .copy)
            }
            try connection.execute(UpsertStatement.createTyped(columns))
            try copyText(
                columns, into: "\(UpsertStatement.typedTable) (\(list))", table: table, archive: archive, on: connection
            )
            let counts = try connection.query(
                UpsertStatement.make(
                    table: step.table, step: step, partitioned: step.partitioned,
                    rows: UpsertStatement.selectTyped(columns)))
            try connection.execute("DROP TABLE \(UpsertStatement.typedTable)")
            try connection.execute("RELEASE SAVEPOINT supabackup_text")
            return (Int64(counts.rows.first?[0] ?? "0") ?? 0, counts.rows.first?[1].flatMap { Int64($0) }, .upsert)
        } catch is CopyTextEncoder.Unsupported {
            try connection.execute("ROLLBACK TO SAVEPOINT supabackup_text")
            return nil
        }
    }

    private static func copyText(
        _ columns: [RestorePlan.ColumnPlan], into target: String, table: Manifest.Table, archive: BackupArchive,
        on connection: PostgresConnection
    ) throws {
        var encoder = CopyTextEncoder(columns: columns)
        var scanner = LineScanner()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 18)
        try connection.copyIn("COPY \(target) FROM STDIN") { writer in
            try ArchiveVerifier.checkDataFile(archive, table, validateLines: false) { chunk in
                try scanner.feed(chunk) { line in try encoder.append(line, to: &buffer) }
                if buffer.count >= 1 << 18 {
                    try buffer.withUnsafeBytes { try writer.write($0) }
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            try buffer.withUnsafeBytes { try writer.write($0) }
        }
    }

    /// The server-side JSON path: the lines into the stage, then one upsert (which needs the
    /// table's keys in place).
    static func upsertJSON(
        _ step: RestorePlan.Step, table: Manifest.Table, archive: BackupArchive, on connection: PostgresConnection
    ) throws -> RestoreResult.TableOutcome {
        try stage(table, archive: archive, on: connection)
        let counts = try connection.query(
            UpsertStatement.make(table: step.table, step: step, partitioned: step.partitioned))
        return .init(
            table: step.table, rows: table.rows, written: Int64(counts.rows.first?[0] ?? "0") ?? 0,
            inserted: counts.rows.first?[1].flatMap { Int64($0) })
    }

    static func createStage(_ connection: PostgresConnection) throws {
        try connection.execute("CREATE TEMP TABLE IF NOT EXISTS supabackup_stage (line json NOT NULL) ON COMMIT DROP")
    }

    /// Loads a table's lines into the temporary stage (checking them against the manifest).
    static func stage(_ table: Manifest.Table, archive: BackupArchive, on connection: PostgresConnection) throws {
        try connection.execute("TRUNCATE \(UpsertStatement.stageTable)")
        try connection.copyIn("COPY \(UpsertStatement.stageTable) (line) FROM STDIN WITH \(RowQuery.copyOptions)") {
            writer in
            try ArchiveVerifier.checkDataFile(archive, table, validateLines: false) { chunk in
                try writer.write(chunk)
            }
        }
    }

    /// A primary key, unique or exclusion constraint taken off a table for its load.
    struct DeferredKey {
        var table: TableName
        var name: String
        var add: String
    }

    /// Tables this restore created are empty: their primary keys, unique and exclusion
    /// constraints are dropped before the rows go in and added back after (pg_restore's order),
    /// so each index is built once from all its rows instead of growing row by row. Foreign keys
    /// come later still (post-data), and everything stays in the one transaction.
    static func dropKeys(of tables: [String], on connection: PostgresConnection) throws -> [DeferredKey] {
        guard !tables.isEmpty else { return [] }
        struct Row: Decodable {
            var schema: String
            var relation: String
            var name: String
            var definition: String
        }
        let rows = try connection.decode(
            Row.self,
            """
            SELECT n.nspname AS schema, c.relname AS relation, quote_ident(k.conname) AS name,
                   pg_get_constraintdef(k.oid) AS definition
            FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE k.conrelid IN (SELECT to_regclass(t) FROM unnest($1::text[]) t)
              AND k.contype IN ('p', 'u', 'x') AND k.conislocal AND k.conparentid = 0
            ORDER BY k.contype <> 'p', 1, 2, 3
            """, [SQL.textArrayLiteral(tables)])
        var deferred: [DeferredKey] = []
        for row in rows {
            let table = TableName(schema: row.schema, name: row.relation)
            try connection.execute("ALTER TABLE \(table.quoted) DROP CONSTRAINT \(row.name)")
            deferred.append(
                DeferredKey(
                    table: table, name: row.name,
                    add: "ALTER TABLE \(table.quoted) ADD CONSTRAINT \(row.name) \(row.definition)"))
        }
        return deferred
    }

    static func addKeys(_ deferred: [DeferredKey], on connection: PostgresConnection) throws {
        for key in deferred {
            do {
                try connection.execute(key.add)
            } catch let error as PostgresError {
                throw RestoreError(
                    table: nil, underlying: error,
                    advice: "adding \(key.name) to \(key.table) after its rows failed")
            }
        }
    }
}
