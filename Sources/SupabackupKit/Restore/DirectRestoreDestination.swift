import Foundation
import Logging

/// Restores over one libpq connection, in one transaction: all or nothing. With
/// `--create-schema` the pre-data DDL runs before the catalog is read and the post-data DDL
/// after the rows, in the same transaction.
final class DirectRestoreDestination: RestoreDestination {
    private let connection: PostgresConnection
    private let connectionString: ConnectionString
    private let archive: BackupArchive
    private let schema: SchemaScript?
    private let disableTriggers: Bool
    private let logger: Logger
    private var ddl: DDLApplier

    init(
        connectionString: ConnectionString, archive: BackupArchive, schema: SchemaScript?, disableTriggers: Bool,
        logger: Logger
    ) throws {
        connection = try PostgresConnection.open(connectionString)
        self.connectionString = connectionString
        self.archive = archive
        self.schema = schema
        self.disableTriggers = disableTriggers
        self.logger = logger
        ddl = DDLApplier(connection: connection)
        do {
            try Session.begin(connection, .restore)
            // Only a superuser can change it, so it is set only when someone left it changed
            // (through a pooler, another client's session may have).
            if !disableTriggers, try connection.query("SHOW session_replication_role").scalar != "origin" {
                try connection.execute("SET LOCAL session_replication_role = origin")
            }
        } catch {
            connection.close()
            throw error
        }
    }

    deinit { connection.close() }

    let comparesTypes = true

    func warnings(for selected: [Manifest.Table]) -> [String] { [] }

    func catalog(schemas: [String], selected: [Manifest.Table]) throws -> (
        tables: [CatalogTable], nonTables: [TableName: String]
    ) {
        if let schema {
            try connection.execute("SET LOCAL check_function_bodies = off")
            try ddl.apply(schema.statements.filter { $0.section == .preData })
        }
        return (try Catalog.tables(in: schemas, on: connection), try Catalog.nonTables(in: schemas, on: connection))
    }

    var target: String {
        "database \(SQL.displayIdentifier(connection.database)) on \(connection.host):\(connection.port) as \(connection.user)"
    }

    /// Where this connection looked, when its URL names no database (libpq then uses the
    /// user's name, which surprises people).
    var locationNote: String? {
        connectionString.namesDatabase ? nil : "looked in \(connection.location(connectionString))"
    }

    func check(_ plan: RestorePlan) throws {
        try checkPrivileges(plan, on: connection)
        try checkConversions(plan, archive: archive, on: connection)
    }

    func planned(_ selected: [Manifest.Table]) -> [Manifest.Table] { selected }

    func load(_ plan: RestorePlan, selected: [Manifest.Table], progress: ((TableName, Int, Int) -> Void)?) throws
        -> RestoreLoad
    {
        try connection.execute("SET CONSTRAINTS ALL DEFERRED")
        if disableTriggers {
            try connection.execute("SET LOCAL session_replication_role = replica")
        }
        try createStage(connection)
        // Tables loaded into empty targets with triggers off get their foreign keys checked
        // set-based before commit (ForeignKeyCheck), not row by row.
        var triggerFree: Set<TableName> = []
        if !disableTriggers, try ForeignKeyCheck.canSkipTriggers(on: connection) {
            triggerFree = try ForeignKeyCheck.triggerFree(plan.steps.map(\.table), on: connection)
        }
        var pendingChecks: [ForeignKeyCheck.Key] = []
        var outcomes: [RestoreResult.TableOutcome] = []
        var deferred = try deferKeys(of: ddl.createdTables)
        for (index, step) in plan.steps.enumerated() {
            guard let table = archive.manifest.table(step.table) else { continue }
            progress?(step.table, index + 1, plan.steps.count)
            let started = Date()
            do {
                let checks =
                    triggerFree.contains(step.table) ? try ForeignKeyCheck.prepare(step.table, on: connection) : nil
                let outcome: RestoreResult.TableOutcome
                if let rows = try loadAsText(
                    step, table: table, archive: archive, on: connection, skipTriggers: checks != nil)
                {
                    if let checks, rows.path == .copy { pendingChecks += checks }
                    outcome = .init(
                        table: step.table, rows: table.rows, written: rows.written, inserted: rows.inserted,
                        path: rows.path)
                } else {
                    // The upsert's ON CONFLICT needs the table's keys: put them back first.
                    let keys = deferred.filter { $0.table == step.table }
                    if !keys.isEmpty {
                        try restoreKeys(keys)
                        deferred.removeAll { $0.table == step.table }
                    }
                    try stage(table, archive: archive, on: connection)
                    let counts = try connection.query(
                        UpsertStatement.make(table: step.table, step: step, partitioned: step.partitioned))
                    outcome = .init(
                        table: step.table, rows: table.rows, written: Int64(counts.rows.first?[0] ?? "0") ?? 0,
                        inserted: counts.rows.first?[1].flatMap { Int64($0) })
                }
                outcomes.append(outcome)
                logger.debug(
                    "table restored",
                    metadata: [
                        "table": "\(step.table)", "rows": "\(table.rows)", "written": "\(outcome.written)",
                        "seconds": "\(String(format: "%.2f", Date().timeIntervalSince(started)))",
                    ])
            } catch let error as PostgresError {
                throw RestoreError(
                    table: step.table, underlying: error, advice: advice(for: error, table: step.table, plan: plan))
            } catch var error as ArchiveError {
                error.file = error.file ?? table.file
                throw error
            }
        }
        try restoreKeys(deferred)
        if let schema { try ddl.apply(schema.statements.filter { $0.section == .postData }) }
        try ForeignKeyCheck.validate(pendingChecks, on: connection)
        return RestoreLoad(
            tables: outcomes, schemaCreated: ddl.created, schemaExisting: ddl.existing, schemaSkipped: ddl.skipped)
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
    private func deferKeys(of tables: [String]) throws -> [DeferredKey] {
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

    private func restoreKeys(_ deferred: [DeferredKey]) throws {
        for key in deferred {
            do {
                try connection.execute(key.add)
            } catch let error as PostgresError {
                throw RestoreError(
                    table: nil, underlying: error,
                    advice: "adding \(key.name) to \(key.table) after its rows failed; nothing was written")
            }
        }
    }

    /// What `--create-schema` did so far (for a dry run, the pre-data part).
    var schemaReport: (created: [String], existing: [String], skipped: [String]) {
        (ddl.created, ddl.existing, ddl.skipped)
    }

    func sequenceState(_ sequence: Manifest.Sequence) throws -> SequenceState? {
        let name = TableName(schema: sequence.schema, name: sequence.name)
        let info = try connection.query(
            """
            SELECT s.seqincrement::text, s.seqmin::text FROM pg_catalog.pg_sequence s WHERE s.seqrelid = to_regclass($1)
            """, [name.quoted])
        guard let row = info.rows.first, let increment = Int64(row[0] ?? ""), let minimum = Int64(row[1] ?? "") else {
            return nil
        }
        let current = try connection.query("SELECT last_value::text, is_called FROM \(name.quoted)")
        let lastUsed = current.rows.first.flatMap { state in
            Int64(state[0] ?? "").map {
                SequenceArithmetic.lastUsed(lastValue: $0, isCalled: state[1] == "t", increment: increment)
            }
        }
        return SequenceState(increment: increment, minimum: minimum, lastUsed: lastUsed)
    }

    func columnMaximum(_ feed: Manifest.ColumnRef) throws -> Int64? {
        // Only integer columns can be compared with a sequence value.
        let type = try connection.query(
            "SELECT atttypid::regtype::text FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2",
            [feed.tableName.quoted, feed.column]
        ).scalar
        guard let type, ["smallint", "integer", "bigint"].contains(type) else { return nil }
        return try connection.query(
            "SELECT max(\(SQL.quoteIdentifier(feed.column)))::text FROM \(feed.tableName.quoted)"
        ).scalar
            .flatMap { Int64($0) }
    }

    func setSequence(_ name: TableName, to value: Int64, isCalled: Bool) throws -> String? {
        _ = try connection.query(
            "SELECT setval($1::regclass, $2::int8, $3::bool)",
            [name.quoted, String(value), isCalled ? "true" : "false"])
        return nil
    }

    func commit() throws {
        do {
            try connection.execute("COMMIT")
        } catch let error as PostgresError {
            // Deferred foreign keys are checked here.
            throw RestoreError(table: nil, underlying: error, advice: nil)
        }
    }

    let canRehearse = true

    func checkDeferred() throws {
        do {
            try connection.execute("SET CONSTRAINTS ALL IMMEDIATE")
        } catch let error as PostgresError {
            throw RestoreError(table: nil, underlying: error, advice: nil)
        }
    }

    func abandon() {
        try? connection.execute("ROLLBACK")
    }

    /// The fast path: rows converted to COPY text on the client. Into an empty table they are
    /// COPY'd straight in (under a lock that keeps other writers out until commit; with
    /// `skipTriggers`, without per-row foreign-key triggers, checked later); otherwise
    /// into a typed temporary table, then upserted. Returns nil, having changed nothing, when a
    /// value needs the server-side JSON path (composite values).
    private func loadAsText(
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

    private func copyText(
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

    private func createStage(_ connection: PostgresConnection) throws {
        try connection.execute("CREATE TEMP TABLE IF NOT EXISTS supabackup_stage (line json NOT NULL) ON COMMIT DROP")
    }

    /// Loads a table's lines into the temporary stage (checking them against the manifest).
    private func stage(_ table: Manifest.Table, archive: BackupArchive, on connection: PostgresConnection) throws {
        try connection.execute("TRUNCATE \(UpsertStatement.stageTable)")
        try connection.copyIn("COPY \(UpsertStatement.stageTable) (line) FROM STDIN WITH \(RowQuery.copyOptions)") {
            writer in
            try ArchiveVerifier.checkDataFile(archive, table, validateLines: false) { chunk in
                try writer.write(chunk)
            }
        }
    }

    /// Where the target's column types differ from the backup's, converts the staged values
    /// without writing them, so an incompatible type is reported table by table before any write.
    private func checkConversions(_ plan: RestorePlan, archive: BackupArchive, on connection: PostgresConnection) throws
    {
        let steps = plan.steps.filter { $0.columns.contains(where: \.typeDiffers) }
        guard !steps.isEmpty else { return }
        try createStage(connection)
        var problems: [String] = []
        for step in steps {
            guard let table = archive.manifest.table(step.table) else { continue }
            let columns = step.columns.filter(\.typeDiffers)
            try connection.execute("SAVEPOINT supabackup_check")
            do {
                try stage(table, archive: archive, on: connection)
                _ = try connection.query(UpsertStatement.conversionCheck(columns))
                try connection.execute("RELEASE SAVEPOINT supabackup_check")
            } catch let error as PostgresError where !error.isConnectionFailure {
                try connection.execute("ROLLBACK TO SAVEPOINT supabackup_check")
                let names = columns.map { "\(SQL.displayIdentifier($0.name)) (\($0.targetType) in the target)" }
                problems.append(
                    "\(step.table): the backup's values do not fit \(names.joined(separator: ", ")): \(error.message)")
            }
        }
        if !problems.isEmpty { throw RestoreValidationError(problems: problems) }
    }

    /// A role without the rights to restore gets one error listing what it lacks, before any write.
    private func checkPrivileges(_ plan: RestorePlan, on connection: PostgresConnection) throws {
        var checks: [(table: TableName, privilege: String)] = []
        for step in plan.steps {
            checks.append((step.table, "INSERT"))
            if !step.conflictKey.isEmpty { checks.append((step.table, "UPDATE")) }
        }
        guard !checks.isEmpty else { return }
        // One round trip for every table, not two per table.
        let granted = try connection.query(
            "SELECT has_table_privilege(t, p) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(t, p, n) ORDER BY n",
            [SQL.textArrayLiteral(checks.map(\.table.quoted)), SQL.textArrayLiteral(checks.map(\.privilege))])
        var missing: [String] = []
        for (check, row) in zip(checks, granted.rows) where row.first ?? nil != "t" {
            missing.append("\(check.privilege) on \(check.table)")
        }
        if !missing.isEmpty {
            let role = try connection.query("SELECT current_user").scalar ?? "?"
            throw RestoreValidationError(problems: ["role \(role) lacks " + missing.joined(separator: ", ")])
        }
    }

    private func advice(for error: PostgresError, table: TableName, plan: RestorePlan) -> String? {
        guard error.sqlState == "23503" else { return nil }
        if let cycle = plan.blockedCycles.first(where: { $0.contains(table) }) {
            return RestorePlan.cycleAdvice(cycle)
        }
        return
            "the referenced rows are neither in the target nor in this restore; restore their table too (or all tables)"
    }
}
