import Foundation
import Logging

/// Where a restore writes to.
public enum RestoreTarget: Sendable {
    case direct(ConnectionString)
    case rest(RESTSettings)
}

public struct RestoreOptions: Sendable {
    public var target: RestoreTarget
    /// The backups folder holding the backup.
    public var directory: String
    public var name: String
    /// Restore only these tables (default: all in the backup).
    public var tables: [TableFilter]
    public var dryRun: Bool
    /// `session_replication_role = replica`: no user triggers, no FK checks.
    public var disableTriggers: Bool
    /// Create missing types, tables, indexes, policies, ... from the backup's schema.sql, in the
    /// same transaction as the rows.
    public var createSchema = false
    /// Restore the backup's Auth tables (users, identities, MFA factors); skipped otherwise.
    public var withAuth = false
    /// Called as each table starts loading (table, its position, the number of tables), for a
    /// terminal progress line.
    public var progress: (@Sendable (TableName, Int, Int) -> Void)?

    public init(
        target: RestoreTarget, directory: String = "backups", name: String, tables: [TableFilter] = [],
        dryRun: Bool = false, disableTriggers: Bool = false
    ) {
        self.target = target
        self.directory = directory
        self.name = name
        self.tables = tables
        self.dryRun = dryRun
        self.disableTriggers = disableTriggers
    }

    /// A direct-mode restore.
    public init(
        connection: ConnectionString, directory: String = "backups", name: String, tables: [TableFilter] = [],
        dryRun: Bool = false, disableTriggers: Bool = false
    ) {
        self.init(
            target: .direct(connection), directory: directory, name: name, tables: tables, dryRun: dryRun,
            disableTriggers: disableTriggers)
    }
}

public struct RestoreResult: Sendable {
    public struct TableOutcome: Sendable {
        public var table: TableName
        public var rows: Int64
        /// Rows inserted or updated; the others existed with identical values.
        public var written: Int64
        /// Rows inserted, when the server can tell (not for partitioned tables).
        public var inserted: Int64?
        /// How the rows were loaded: `copy` (empty table, COPY text), `upsert` (COPY text into a
        /// typed stage, then upsert), `upsert-json` (server-side JSON decoding), `rest`.
        public var path = "upsert-json"
        public var unchanged: Int64 { rows - written }
    }

    public struct SequenceOutcome: Sendable {
        public var sequence: TableName
        /// The value `setval` was given; nextval returns the next one.
        public var value: Int64?
        public var note: String?
    }

    /// Auth users created through the Auth admin API (REST restores), those that existed, and
    /// the created users that had no password hash in the backup and must reset their password.
    public var authUsersCreated = 0
    public var authUsersExisting = 0
    public var passwordResetNeeded: [String] = []

    /// Objects `--create-schema` created, and those it found existing and left alone.
    public var schemaCreated: [String] = []
    public var schemaExisting: [String] = []
    /// Grants from schema.sql the target could not take (missing roles), with why.
    public var schemaSkipped: [String] = []

    public var name: String
    public var plan: RestorePlan
    public var dryRun: Bool
    public var tables: [TableOutcome]
    public var sequences: [SequenceOutcome]
}

/// Restores a backup over one direct connection, in one transaction: all or nothing.
public struct RestoreEngine {
    public var options: RestoreOptions
    public var logger: Logger

    public init(options: RestoreOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public func run() throws -> RestoreResult {
        let archive = try BackupArchive.open(name: options.name, in: options.directory)
        let all = archive.manifest.tables.map(\.tableName)
        let names = Set(try options.tables.select(from: all, excluding: []))
        // Auth rows only on request: restoring them into a live project overwrites its users.
        let selected = archive.manifest.tables.filter { table in
            let named = options.tables.contains { $0.schema == table.schema && $0.matches(table.tableName) }
            if Platform.isInternal(table.tableName) && !named { return false }
            return names.contains(table.tableName) && (options.withAuth || table.schema != "auth" || named)
        }
        if options.withAuth && !selected.contains(where: { $0.schema == "auth" }) {
            throw UsageError("--with-auth: this backup holds no auth tables (back up with --with-auth)", code: .unknownName)
        }
        var schema: SchemaScript?
        if options.createSchema {
            guard let script = try archive.schemaScript() else {
                throw UsageError(
                    "--create-schema: backup \(archive.name) was made over REST (mode \(archive.manifest.mode)), which cannot see table definitions; it has no schema.sql. Create the tables first (e.g. from your migrations), or restore a direct-mode backup", code: .notSupported)
            }
            schema = script
        }
        // Damaged files are refused before the database is touched.
        try ArchiveVerifier.checkChecksums(archive, tables: selected)
        switch options.target {
        case .direct(let connection):
            return try runDirect(archive: archive, selected: selected, connectionString: connection, schema: schema)
        case .rest(let settings):
            guard schema == nil else {
                throw UsageError("--create-schema needs a direct connection (--db-url): the REST API cannot create tables", code: .notSupported)
            }
            guard !options.disableTriggers else {
                throw UsageError("--disable-triggers needs a direct connection; the REST API cannot change session_replication_role", code: .notSupported)
            }
            return try RESTRestore(settings: settings, logger: logger)
                .run(archive: archive, selected: selected, dryRun: options.dryRun)
        }
    }

    private func runDirect(
        archive: BackupArchive, selected: [Manifest.Table], connectionString: ConnectionString, schema: SchemaScript?
    ) throws -> RestoreResult {
        let connection = try PostgresConnection.open(connectionString)
        defer { connection.close() }
        try Session.configure(connection, applicationName: "supabackup restore", pinSearchPath: false)
        try connection.execute("BEGIN")
        var ddl = DDLApplier(connection: connection)
        if let schema {
            try connection.execute("SET LOCAL check_function_bodies = off")
            try ddl.apply(schema.statements.filter { $0.section == .preData })
        }
        let schemas = Array(Set(selected.map(\.schema))).sorted()
        let target = try Catalog.tables(in: schemas, on: connection)
        let plan: RestorePlan
        do {
            plan = try RestorePlan(
                manifest: archive.manifest, tables: selected, target: target, disableTriggers: options.disableTriggers,
                compareTypes: true, views: try Catalog.nonTables(in: schemas, on: connection))
        } catch var error as RestoreValidationError where !connectionString.namesDatabase {
            error.problems.append("looked in \(connection.location(connectionString))")
            throw error
        }
        try checkPrivileges(plan, on: connection)
        try checkConversions(plan, archive: archive, on: connection)
        if options.dryRun {
            try connection.execute("ROLLBACK")
            var result = RestoreResult(name: archive.name, plan: plan, dryRun: true, tables: [], sequences: [])
            result.schemaCreated = ddl.created
            result.schemaExisting = ddl.existing
            result.schemaSkipped = ddl.skipped
            return result
        }

        do {
            var result = try load(plan, archive: archive, connection: connection) {
                if let schema { try ddl.apply(schema.statements.filter { $0.section == .postData }) }
            }
            result.schemaCreated = ddl.created
            result.schemaExisting = ddl.existing
            result.schemaSkipped = ddl.skipped
            if archive.manifest.authPasswordHashes == false, let users = selected.first(where: { $0.schema == "auth" && $0.name == "users" }) {
                result.passwordResetNeeded = ["all \(users.rows) users in this backup (it was made over REST, without password hashes)"]
            }
            try commit(connection, plan: plan)
            return result
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    private func load(
        _ plan: RestorePlan, archive: BackupArchive, connection: PostgresConnection, afterRows: () throws -> Void
    ) throws -> RestoreResult {
        try connection.execute("SET CONSTRAINTS ALL DEFERRED")
        if options.disableTriggers {
            try connection.execute("SET LOCAL session_replication_role = replica")
        }
        try createStage(connection)
        // Tables loaded into empty targets with triggers off get their foreign keys checked
        // set-based before commit (ForeignKeyCheck), not row by row.
        var triggerFree: Set<TableName> = []
        if !options.disableTriggers, try ForeignKeyCheck.canSkipTriggers(on: connection) {
            triggerFree = try ForeignKeyCheck.triggerFree(plan.steps.map(\.table), on: connection)
        }
        var pendingChecks: [ForeignKeyCheck.Key] = []
        var outcomes: [RestoreResult.TableOutcome] = []
        for (index, step) in plan.steps.enumerated() {
            guard let table = archive.manifest.table(step.table) else { continue }
            options.progress?(step.table, index + 1, plan.steps.count)
            let started = Date()
            do {
                let checks = triggerFree.contains(step.table) ? try ForeignKeyCheck.prepare(step.table, on: connection) : nil
                if let rows = try loadAsText(step, table: table, archive: archive, on: connection, skipTriggers: checks != nil) {
                    if let checks, rows.path == "copy" { pendingChecks += checks }
                    outcomes.append(.init(
                        table: step.table, rows: table.rows, written: rows.written, inserted: rows.inserted, path: rows.path))
                    logger.debug(
                        "table restored",
                        metadata: [
                            "table": "\(step.table)", "rows": "\(table.rows)", "written": "\(rows.written)",
                            "seconds": "\(String(format: "%.2f", Date().timeIntervalSince(started)))",
                        ])
                    continue
                }
                try stage(table, archive: archive, on: connection)
                let counts = try connection.query(
                    UpsertStatement.make(table: step.table, step: step, partitioned: step.partitioned))
                let written = Int64(counts.rows.first?[0] ?? "0") ?? 0
                let inserted = counts.rows.first?[1].flatMap { Int64($0) }
                outcomes.append(.init(table: step.table, rows: table.rows, written: written, inserted: inserted))
                logger.debug(
                    "table restored",
                    metadata: [
                        "table": "\(step.table)", "rows": "\(table.rows)", "written": "\(written)",
                        "seconds": "\(String(format: "%.2f", Date().timeIntervalSince(started)))",
                    ])
            } catch let error as PostgresError {
                throw RestoreError(table: step.table, underlying: error, advice: advice(for: error, table: step.table, plan: plan))
            } catch var error as ArchiveError {
                error.file = error.file ?? table.file
                throw error
            }
        }
        try afterRows()
        try ForeignKeyCheck.validate(pendingChecks, on: connection)
        let sequences = try SequenceReset.apply(
            archive.manifest.sequences, restored: Set(plan.steps.map(\.table)), on: connection)
        return RestoreResult(name: archive.name, plan: plan, dryRun: false, tables: outcomes, sequences: sequences)
    }

    /// The fast path: rows converted to COPY text on the client. Into an empty table they are
    /// COPY'd straight in (under a lock that keeps other writers out until commit; with
    /// `skipTriggers`, without per-row foreign-key triggers, checked later); otherwise
    /// into a typed temporary table, then upserted. Returns nil, having changed nothing, when a
    /// value needs the server-side JSON path (composite values).
    private func loadAsText(
        _ step: RestorePlan.Step, table: Manifest.Table, archive: BackupArchive, on connection: PostgresConnection,
        skipTriggers: Bool
    ) throws -> (written: Int64, inserted: Int64?, path: String)? {
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
                try copyText(columns, into: "\(step.table.quoted) (\(list))", table: table, archive: archive, on: connection)
                if skipTriggers { try connection.execute("SET LOCAL session_replication_role = origin") }
                try connection.execute("RELEASE SAVEPOINT supabackup_text")
                return (table.rows, table.rows, "copy")
            }
            try connection.execute(UpsertStatement.createTyped(columns))
            try copyText(columns, into: "\(UpsertStatement.typedTable) (\(list))", table: table, archive: archive, on: connection)
            let counts = try connection.query(
                UpsertStatement.make(
                    table: step.table, step: step, partitioned: step.partitioned, rows: UpsertStatement.selectTyped(columns)))
            try connection.execute("DROP TABLE \(UpsertStatement.typedTable)")
            try connection.execute("RELEASE SAVEPOINT supabackup_text")
            return (Int64(counts.rows.first?[0] ?? "0") ?? 0, counts.rows.first?[1].flatMap { Int64($0) }, "upsert")
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
        try connection.copyIn("COPY \(UpsertStatement.stageTable) (line) FROM STDIN WITH \(RowQuery.copyOptions)") { writer in
            try ArchiveVerifier.checkDataFile(archive, table, validateLines: false) { chunk in
                try writer.write(chunk)
            }
        }
    }

    /// Where the target's column types differ from the backup's, converts the staged values
    /// without writing them, so an incompatible type is reported table by table before any write.
    private func checkConversions(_ plan: RestorePlan, archive: BackupArchive, on connection: PostgresConnection) throws {
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
                problems.append("\(step.table): the backup's values do not fit \(names.joined(separator: ", ")): \(error.message)")
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

    private func commit(_ connection: PostgresConnection, plan: RestorePlan) throws {
        do {
            try connection.execute("COMMIT")
        } catch let error as PostgresError {
            // Deferred foreign keys are checked here.
            throw RestoreError(table: nil, underlying: error, advice: nil)
        }
    }

    private func advice(for error: PostgresError, table: TableName, plan: RestorePlan) -> String? {
        guard error.sqlState == "23503" else { return nil }
        if let cycle = plan.blockedCycles.first(where: { $0.contains(table) }) {
            return RestorePlan.cycleAdvice(cycle)
        }
        return "the referenced rows are neither in the target nor in this restore; restore their table too (or all tables)"
    }
}

/// A restore failed; the transaction was rolled back and the target is unchanged.
public struct RestoreError: Error, CustomStringConvertible, Sendable {
    /// The table being restored, nil when the failure came at commit.
    public var table: TableName?
    public var underlying: PostgresError
    public var advice: String?

    public var description: String {
        var text = table.map { "table \($0): " } ?? "at commit: "
        text += underlying.description
        if let advice { text += "; \(advice)" }
        return text + " (rolled back: nothing was changed)"
    }
}
