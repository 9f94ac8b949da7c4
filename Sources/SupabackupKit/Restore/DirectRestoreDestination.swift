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
    /// Connections a fresh restore loads over; 1 keeps every restore in one transaction.
    private let jobs: Int
    private let logger: Logger
    private var ddl: DDLApplier
    /// Set once part of the restore is committed (a parallel fresh restore): what failed after
    /// that leaves the committed part in place.
    private var committed = false

    init(
        connectionString: ConnectionString, archive: BackupArchive, schema: SchemaScript?, disableTriggers: Bool,
        jobs: Int = 1, logger: Logger
    ) throws {
        connection = try PostgresConnection.open(connectionString)
        self.connectionString = connectionString
        self.archive = archive
        self.schema = schema
        self.disableTriggers = disableTriggers
        self.jobs = jobs
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

    func load(_ plan: RestorePlan, selected: [Manifest.Table], progress: (@Sendable (TableName, Int, Int) -> Void)?)
        throws
        -> RestoreLoad
    {
        if jobs > 1, let schema, !disableTriggers, let fresh = try freshTables(plan) {
            return try loadFresh(plan, fresh: fresh, schema: schema, progress: progress)
        }
        var deferred = try TableLoad.dropKeys(of: ddl.createdTables, on: connection)
        let (outcomes, pendingChecks) = try loadInOrder(plan.steps, plan: plan, deferred: &deferred) {
            table, position in
            progress?(table, position, plan.steps.count)
        }
        try TableLoad.addKeys(deferred, on: connection)
        if let schema { try ddl.apply(schema.statements.filter { $0.section == .postData }) }
        try ForeignKeyCheck.validate(pendingChecks, on: connection)
        return RestoreLoad(
            tables: outcomes, schemaCreated: ddl.created, schemaExisting: ddl.existing, schemaSkipped: ddl.skipped)
    }

    /// Loads `steps` in plan order in this connection's transaction; returns what was loaded and
    /// the foreign keys still to check (of tables loaded without triggers).
    private func loadInOrder(
        _ steps: [RestorePlan.Step], plan: RestorePlan, deferred: inout [TableLoad.DeferredKey],
        progress: (TableName, Int) -> Void
    ) throws -> ([RestoreResult.TableOutcome], [ForeignKeyCheck.Key]) {
        try connection.execute("SET CONSTRAINTS ALL DEFERRED")
        if disableTriggers {
            try connection.execute("SET LOCAL session_replication_role = replica")
        }
        try TableLoad.createStage(connection)
        // Tables loaded into empty targets with triggers off get their foreign keys checked
        // set-based before commit (ForeignKeyCheck), not row by row.
        var triggerFree: Set<TableName> = []
        if !disableTriggers, try ForeignKeyCheck.canSkipTriggers(on: connection) {
            triggerFree = try ForeignKeyCheck.triggerFree(steps.map(\.table), on: connection)
        }
        var pendingChecks: [ForeignKeyCheck.Key] = []
        var outcomes: [RestoreResult.TableOutcome] = []
        for (index, step) in steps.enumerated() {
            guard let table = archive.manifest.table(step.table) else { continue }
            progress(step.table, index + 1)
            let started = Date()
            do {
                let checks =
                    triggerFree.contains(step.table) ? try ForeignKeyCheck.prepare(step.table, on: connection) : nil
                let outcome: RestoreResult.TableOutcome
                if let rows = try TableLoad.asText(
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
                        try TableLoad.addKeys(keys, on: connection)
                        deferred.removeAll { $0.table == step.table }
                    }
                    outcome = try TableLoad.upsertJSON(step, table: table, archive: archive, on: connection)
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
        return (outcomes, pendingChecks)
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
            throw RestoreError(table: nil, underlying: error, advice: nil, partial: committed)
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

    /// Where the target's column types differ from the backup's, converts the staged values
    /// without writing them, so an incompatible type is reported table by table before any write.
    private func checkConversions(_ plan: RestorePlan, archive: BackupArchive, on connection: PostgresConnection) throws
    {
        let steps = plan.steps.filter { $0.columns.contains(where: \.typeDiffers) }
        guard !steps.isEmpty else { return }
        try TableLoad.createStage(connection)
        var problems: [String] = []
        for step in steps {
            guard let table = archive.manifest.table(step.table) else { continue }
            let columns = step.columns.filter(\.typeDiffers)
            try connection.execute("SAVEPOINT supabackup_check")
            do {
                try TableLoad.stage(table, archive: archive, on: connection)
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

/// A fresh restore over several connections (`--jobs`), as `pg_restore -j`: the tables
/// schema.sql created are committed empty, each table is loaded and keyed in a transaction of
/// its own, indexes are built over the connections too, and the rest of schema.sql, sequences
/// and refreshes follow in one last transaction. A failure leaves what was committed; the same
/// restore run again completes it (the tables are then existing ones, filled by upserts).
extension DirectRestoreDestination {
    /// The plan's tables this restore created, when it created some and none of them has a
    /// foreign key or trigger yet (schema.sql adds them after the rows), so loading them apart
    /// cannot break a rule; nil otherwise.
    fileprivate func freshTables(_ plan: RestorePlan) throws -> Set<TableName>? {
        guard !plan.steps.isEmpty, !ddl.createdTables.isEmpty else { return nil }
        struct Row: Decodable {
            var schema: String
            var name: String
            var bound: Bool
        }
        let rows = try connection.decode(
            Row.self,
            """
            SELECT n.nspname AS schema, c.relname AS name,
                   EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.contype = 'f' AND k.conrelid = c.oid)
                   OR EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE NOT t.tgisinternal AND t.tgrelid = c.oid) AS bound
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.oid IN (SELECT to_regclass(t) FROM unnest($1::text[]) t)
            """, [SQL.textArrayLiteral(ddl.createdTables)])
        guard !rows.contains(where: \.bound) else { return nil }
        let fresh = Set(rows.map { TableName(schema: $0.schema, name: $0.name) }).intersection(plan.steps.map(\.table))
        return fresh.isEmpty ? nil : fresh
    }

    fileprivate func loadFresh(
        _ plan: RestorePlan, fresh: Set<TableName>, schema: SchemaScript,
        progress: (@Sendable (TableName, Int, Int) -> Void)?
    ) throws -> RestoreLoad {
        // The other connections must see the tables.
        try connection.execute("COMMIT")
        committed = true
        do {
            // Tables that were there (a fresh project's auth.users) first, in one transaction as
            // always, committed before the foreign keys that reference them are added.
            let existing = plan.steps.filter { !fresh.contains($0.table) }
            var existingOutcomes: [RestoreResult.TableOutcome] = []
            if !existing.isEmpty {
                try Session.begin(connection, .restore)
                var none: [TableLoad.DeferredKey] = []
                let pendingChecks: [ForeignKeyCheck.Key]
                (existingOutcomes, pendingChecks) = try loadInOrder(existing, plan: plan, deferred: &none) {
                    table, position in progress?(table, position, plan.steps.count)
                }
                try ForeignKeyCheck.validate(pendingChecks, on: connection)
                try connection.execute("COMMIT")
            }
            let archive = archive
            let connect: @Sendable () throws -> PostgresConnection = { [connectionString] in
                try PostgresConnection.open(connectionString)
            }
            let postData = schema.statements.filter { $0.section == .postData }
            // Largest first, so the last items to finish are small ones.
            let size = { (step: RestorePlan.Step) in archive.manifest.table(step.table)?.bytes ?? 0 }
            let graph = FreshRestoreGraph(
                steps: plan.steps.filter { fresh.contains($0.table) }.sorted { size($0) > size($1) },
                postData: postData)
            let started = Counter(existing.count)
            logger.debug(
                "loading the tables this restore created over several connections",
                metadata: ["tables": "\(fresh.count)", "connections": "\(jobs)"])
            let count = plan.steps.count
            let outputs = try ConnectionWorkers.run(graph.items, after: graph.after, jobs: jobs, connect: connect) {
                connection, item -> FreshRestoreGraph.Output in
                switch item {
                case .table(let step):
                    progress?(step.table, started.increment(), count)
                    return .table(try Self.loadCommitted(step, archive: archive, on: connection))
                case .statement(let statement):
                    return .statement(try Self.applyCommitted(connection, statement))
                }
            }
            var byTable = Dictionary(existingOutcomes.map { ($0.table, $0) }) { first, _ in first }
            for output in outputs {
                switch output {
                case .table(let outcome): byTable[outcome.table] = outcome
                case .statement(let report): ddl.absorb(report)
                }
            }
            // The rest of schema.sql (triggers, policies, grants, refreshes, ...) in one last
            // transaction, with the sequences. It begins only now: through a pooler, an open
            // transaction here would hold a server connection the other connections may need.
            try Session.begin(connection, .restore)
            try ddl.apply(postData.filter { !FreshRestoreGraph.parallelKinds.contains($0.kind) })
            return RestoreLoad(
                tables: plan.steps.compactMap { byTable[$0.table] }, schemaCreated: ddl.created,
                schemaExisting: ddl.existing, schemaSkipped: ddl.skipped)
        } catch var error as RestoreError {
            error.partial = true
            throw error
        } catch let error as PostgresError {
            throw RestoreError(table: nil, underlying: error, advice: nil, partial: true)
        }
    }

    /// One schema.sql statement in a transaction of its own.
    fileprivate static func applyCommitted(_ connection: PostgresConnection, _ statement: SchemaScript.Statement)
        throws -> DDLApplier.Report
    {
        try Session.begin(connection, .restore)
        var applier = DDLApplier(connection: connection)
        try applier.apply([statement])
        try connection.execute("COMMIT")
        return applier.report
    }

    /// One table in a transaction of its own: keys off, rows in, keys back on, commit.
    fileprivate static func loadCommitted(
        _ step: RestorePlan.Step, archive: BackupArchive, on connection: PostgresConnection
    ) throws -> RestoreResult.TableOutcome {
        guard let table = archive.manifest.table(step.table) else {
            throw InternalError("\(step.table) is in the plan but not in the manifest")
        }
        do {
            try Session.begin(connection, .restore)
            let keys = try TableLoad.dropKeys(of: [step.table.quoted], on: connection)
            let outcome: RestoreResult.TableOutcome
            if let rows = try TableLoad.asText(
                step, table: table, archive: archive, on: connection, skipTriggers: false)
            {
                try TableLoad.addKeys(keys, on: connection)
                outcome = .init(
                    table: step.table, rows: table.rows, written: rows.written, inserted: rows.inserted,
                    path: rows.path)
            } else {
                try TableLoad.addKeys(keys, on: connection)
                try TableLoad.createStage(connection)
                outcome = try TableLoad.upsertJSON(step, table: table, archive: archive, on: connection)
            }
            try connection.execute("COMMIT")
            return outcome
        } catch let error as PostgresError {
            throw RestoreError(table: step.table, underlying: error, advice: nil, partial: true)
        } catch var error as ArchiveError {
            error.file = error.file ?? table.file
            throw error
        }
    }
}

/// What a parallel fresh restore runs over its connections, and what each item waits for: a
/// table's rows (with its keys), its indexes once its rows are in, partitions' indexes attached
/// once every index exists, and foreign keys once both their tables and the referenced table's
/// indexes are there. Two foreign keys that share a table run one after the other, as
/// pg_restore -j schedules them: each locks both its tables against the other, and two at once
/// can deadlock. Items come in the order of `steps`, each table followed by its indexes.
struct FreshRestoreGraph {
    enum Item: Sendable {
        case table(RestorePlan.Step)
        case statement(SchemaScript.Statement)
    }

    enum Output: Sendable {
        case table(RestoreResult.TableOutcome)
        case statement(DDLApplier.Report)
    }

    /// The post-data kinds that run over the connections; the rest runs in the last transaction.
    static let parallelKinds: Set<String> = ["index", "foreign-key"]

    private(set) var items: [Item] = []
    private(set) var after: [[Int]] = []

    init(steps: [RestorePlan.Step], postData: [SchemaScript.Statement]) {
        let planned = Set(steps.map(\.table))
        let attached = { (statement: SchemaScript.Statement) in statement.sql.contains(" ATTACH PARTITION ") }
        var indexesOf: [TableName: [SchemaScript.Statement]] = [:]
        var otherIndexes: [SchemaScript.Statement] = []
        var attaches: [SchemaScript.Statement] = []
        for statement in postData where statement.kind == "index" {
            if attached(statement) {
                attaches.append(statement)
            } else if let table = Self.indexTable(statement.sql), planned.contains(table) {
                indexesOf[table, default: []].append(statement)
            } else {
                otherIndexes.append(statement)
            }
        }
        var loads: [TableName: Int] = [:]
        var indexItems: [TableName: [Int]] = [:]
        for step in steps {
            loads[step.table] = add(.table(step), after: [])
            for index in indexesOf[step.table] ?? [] {
                indexItems[step.table, default: []].append(add(.statement(index), after: [loads[step.table]!]))
            }
        }
        let allLoads = Array(loads.values).sorted()
        let unplaced = otherIndexes.map { add(.statement($0), after: allLoads) }
        let allIndexes = (indexItems.values.flatMap { $0 } + unplaced).sorted()
        // One after another: a sub-partition's index is attached to its partition's only once
        // that one is attached to the table's.
        var attachItems: [Int] = []
        for statement in attaches {
            attachItems.append(add(.statement(statement), after: allLoads + allIndexes + attachItems))
        }
        var lastKeyOn: [TableName: Int] = [:]
        var keys: [Int] = []
        var unreadKeys: [Int] = []
        for statement in postData where statement.kind == "foreign-key" {
            guard let tables = Self.foreignKeyTables(statement.sql) else {
                // Tables unknown: after everything else, and after every foreign key before it.
                let key = add(.statement(statement), after: allLoads + allIndexes + attachItems + keys)
                keys.append(key)
                unreadKeys.append(key)
                continue
            }
            // A table this graph does not load was loaded and committed before it.
            let shared = Set([tables.child, tables.parent]).compactMap { lastKeyOn[$0] }
            let key = add(
                .statement(statement),
                after: [tables.child, tables.parent].compactMap { loads[$0] } + (indexItems[tables.parent] ?? [])
                    + attachItems + shared + unreadKeys)
            keys.append(key)
            lastKeyOn[tables.child] = key
            lastKeyOn[tables.parent] = key
        }
    }

    @discardableResult
    private mutating func add(_ item: Item, after prerequisites: [Int]) -> Int {
        items.append(item)
        after.append(prerequisites)
        return items.count - 1
    }

    /// The table of `CREATE [UNIQUE] INDEX name ON [ONLY] table USING ...` (pg_get_indexdef).
    static func indexTable(_ sql: String) -> TableName? {
        guard let on = sql.range(of: " ON ") else { return nil }
        var rest = sql[on.upperBound...]
        if rest.hasPrefix("ONLY ") { rest = rest.dropFirst(5) }
        return qualifiedName(rest)
    }

    /// The tables of `ALTER TABLE [ONLY] child ADD CONSTRAINT ... REFERENCES parent(...)`.
    static func foreignKeyTables(_ sql: String) -> (child: TableName, parent: TableName)? {
        guard sql.hasPrefix("ALTER TABLE "), let references = sql.range(of: " REFERENCES ") else { return nil }
        var rest = sql.dropFirst("ALTER TABLE ".count)
        if rest.hasPrefix("ONLY ") { rest = rest.dropFirst(5) }
        guard let child = qualifiedName(rest), let parent = qualifiedName(sql[references.upperBound...]) else {
            return nil
        }
        return (child, parent)
    }

    /// A `schema.name` at the start of `text`, as `regclass` output writes it (quoted where needed).
    static func qualifiedName(_ text: Substring) -> TableName? {
        var parts: [String] = []
        var i = text.startIndex
        while i < text.endIndex, parts.count < 3 {
            var part = ""
            if text[i] == "\"" {
                i = text.index(after: i)
                while i < text.endIndex {
                    if text[i] == "\"" {
                        let next = text.index(after: i)
                        guard next < text.endIndex, text[next] == "\"" else { break }
                        i = next
                    }
                    part.append(text[i])
                    i = text.index(after: i)
                }
                guard i < text.endIndex else { return nil }
                i = text.index(after: i)
            } else {
                while i < text.endIndex, text[i].isLetter || text[i].isNumber || text[i] == "_" || text[i] == "$" {
                    part.append(text[i])
                    i = text.index(after: i)
                }
            }
            guard !part.isEmpty else { return nil }
            parts.append(part)
            guard i < text.endIndex, text[i] == "." else { break }
            i = text.index(after: i)
        }
        return parts.count == 2 ? TableName(schema: parts[0], name: parts[1]) : nil
    }
}

/// A count shared by threads.
final class Counter: @unchecked Sendable {
    // @unchecked: `value` is touched only under `lock`.
    private let lock = NSLock()
    private var value: Int

    init(_ value: Int = 0) { self.value = value }

    func increment() -> Int {
        lock.withLock {
            value += 1
            return value
        }
    }
}
