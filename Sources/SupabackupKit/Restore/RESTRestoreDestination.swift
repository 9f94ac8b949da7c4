import Foundation
import Logging

/// Restores over PostgREST: upserting batches (`Prefer: resolution=merge-duplicates`) in
/// foreign-key order; auth users through the Auth admin API.
///
/// Not one transaction: a failure leaves the tables and batches written before it. Every write
/// is an upsert of the backup's values, so rerunning the restore converges to the backup.
/// Foreign keys the OpenAPI document hides are handled by retrying, after the others, tables
/// that failed with a foreign-key violation, until a round makes no progress.
final class RESTRestoreDestination: RestoreDestination {
    private let settings: RESTSettings
    private let client: PostgRESTClient
    private let archive: BackupArchive
    private let logger: Logger
    /// The target's tables as the plan saw them.
    private var targetTables: [CatalogTable] = []
    /// The RPC function `sql/rest/supabackup_setval.sql` installs; false once it proved missing.
    static let setvalFunction = "supabackup_setval"
    private var setvalInstalled = true

    init(settings: RESTSettings, archive: BackupArchive, logger: Logger) throws {
        try settings.key.requireServiceLevel()
        self.settings = try PostgRESTClient.resolve(settings, logger: logger)
        self.archive = archive
        self.logger = logger
        client = PostgRESTClient(settings: self.settings, logger: logger)
    }

    let comparesTypes = false
    let locationNote: String? = nil
    let canRehearse = false
    func checkDeferred() throws {}
    var target: String { "the REST API at \(settings.root.absoluteString)" }
    let schemaReport: (created: [String], existing: [String], skipped: [String]) = ([], [], [])

    /// Auth users go through the Auth admin API; the auth schema is not exposed over REST.
    private func users(_ selected: [Manifest.Table]) -> Manifest.Table? {
        selected.first { $0.schema == "auth" && $0.name == "users" }
    }

    func warnings(for selected: [Manifest.Table]) -> [String] {
        var warnings = [
            "REST restore: not one transaction; if it fails, what was written stays, and rerunning the restore converges"
        ]
        if users(selected) != nil {
            warnings.append(
                "REST restore: auth users are created through the Auth admin API (missing ones only; existing users are left alone); identities other than email/phone come back when users sign in again with their provider"
            )
        }
        return warnings
    }

    func catalog(schemas: [String], selected: [Manifest.Table]) throws -> (
        tables: [CatalogTable], nonTables: [TableName: String]
    ) {
        var tables: [CatalogTable] = []
        for schema in schemas where schema != "auth" {
            let document = try PostgRESTCatalog.discover(schema, client: client)
            tables += document.tables.filter(\.insertable).map { PostgRESTCatalog.catalogTable($0, schema: schema) }
        }
        // Views look like tables over REST; only a REST backup can hold one's rows.
        var views: [TableName: String] = [:]
        if archive.manifest.mode == .rest {
            let listed = Set(tables.map(\.tableName))
            for table in selected where listed.contains(table.tableName) {
                if try client.isView(table.tableName) { views[table.tableName] = "view" }
            }
        }
        targetTables = tables.filter { views[$0.tableName] == nil }
        return (targetTables, views)
    }

    /// The auth tables are not rows to upsert here: `load` creates the users.
    func planned(_ selected: [Manifest.Table]) -> [Manifest.Table] {
        selected.filter { $0.schema != "auth" }
    }

    func check(_ plan: RestorePlan) throws {}

    func load(_ plan: RestorePlan, selected: [Manifest.Table], progress: (@Sendable (TableName, Int, Int) -> Void)?)
        throws
        -> RestoreLoad
    {
        var authUsers: (created: Int, existing: Int, needReset: [String])?
        if let users = users(selected) {
            let admin = try AuthAdminClient(settings: settings, logger: logger)
            defer { admin.shutdown() }
            authUsers = try admin.createMissingUsers(archive: archive, table: users)
        }
        var outcomes: [RestoreResult.TableOutcome] = []
        var pending = plan.steps
        // Tables loaded without some nullable foreign-key columns, to break a cycle; they are
        // loaded again, whole, at the end.
        var reloads: [RestorePlan.Step] = []
        var withheld: [TableName: Set<String>] = [:]
        while !pending.isEmpty {
            var blocked: [(RestorePlan.Step, RESTError)] = []
            for step in pending {
                guard let table = archive.manifest.table(step.table) else { continue }
                do {
                    progress?(step.table, outcomes.count + 1, plan.steps.count)
                    let rows = try load(step, without: withheld[step.table] ?? [], table: table)
                    if withheld[step.table] != nil {
                        reloads.append(step)
                    } else {
                        outcomes.append(.init(table: step.table, rows: rows, written: rows, inserted: nil, path: .rest))
                    }
                } catch let error as RESTError where error.code == "23503" {
                    logger.info("foreign key not satisfied yet, will retry", metadata: ["table": "\(step.table)"])
                    blocked.append((step, error))
                }
            }
            if blocked.count == pending.count {
                // No progress: a cycle, or references missing everywhere. Break cycles by first
                // loading a table without the nullable foreign-key columns that failed.
                var broke = false
                for (step, error) in blocked where withheld[step.table] == nil {
                    let columns = Self.keyColumns(in: error.details ?? "")
                    let nullable = Set(
                        targetTables.first { $0.tableName == step.table }?.columns.filter(\.nullable).map(\.name) ?? [])
                    if !columns.isEmpty
                        && columns.allSatisfy({ nullable.contains($0) && !step.conflictKey.contains($0) })
                    {
                        withheld[step.table] = Set(columns)
                        broke = true
                        break
                    }
                }
                if !broke {
                    let names = blocked.map { "\($0.0.table) (\($0.1.details ?? $0.1.message))" }.joined(
                        separator: "; ")
                    throw RESTError(
                        status: 409, code: "23503", message: "foreign keys stay unsatisfied for: \(names)",
                        details: nil,
                        advice:
                            "the referenced rows are neither in the target nor in this backup; tables before them were restored, rerunning converges once the references exist",
                        table: nil)
                }
            }
            pending = blocked.map(\.0)
        }
        for step in reloads {
            guard let table = archive.manifest.table(step.table) else { continue }
            let rows = try load(step, without: [], table: table)
            outcomes.append(.init(table: step.table, rows: rows, written: rows, inserted: nil, path: .rest))
        }
        var load = RestoreLoad(tables: outcomes)
        load.authUsers = authUsers
        return load
    }

    func sequenceState(_ sequence: Manifest.Sequence) throws -> SequenceState? {
        // REST cannot read sequences; the RPC function moves them forward only, on the server.
        SequenceState(increment: sequence.increment, minimum: 1, lastUsed: nil)
    }

    func columnMaximum(_ feed: Manifest.ColumnRef) throws -> Int64? {
        let response = try client.get(
            PostgRESTClient.percentEncode(feed.table),
            query: [
                ("select", PostgRESTQuery.field(feed.column)),
                ("order", PostgRESTQuery.field(feed.column) + ".desc.nullslast"),
                ("limit", "1"),
            ],
            headers: PostgRESTCatalog.schemaHeaders(feed.schema), table: feed.tableName)
        let rows = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]]
        return (rows?.first?[feed.column] as? NSNumber)?.int64Value
    }

    func setSequence(_ name: TableName, to value: Int64, isCalled: Bool) throws -> String? {
        let sql =
            "SELECT setval('\(name.quoted.replacingOccurrences(of: "'", with: "''"))', greatest(\(value), (SELECT last_value FROM \(name.quoted))));"
        guard isCalled, setvalInstalled else { return "not set over REST; run: \(sql)" }
        do {
            let body = "{\"sequence_name\":\(SQL.jsonString(name.quoted)),\"new_value\":\(value)}"
            _ = try client.post(
                "rpc/\(Self.setvalFunction)", headers: [("Content-Profile", "public")], body: Array(body.utf8))
            return nil
        } catch let error as RESTError where error.status == 404 {
            setvalInstalled = false
            return "not set over REST (install sql/rest/supabackup_setval.sql to let restores do it); run: \(sql)"
        }
    }

    func commit() throws { client.shutdown() }

    func abandon() { client.shutdown() }

    /// Streams one table's rows into batched upserts. Restarts the table (idempotently) when
    /// the target turns out to generate a column itself.
    private func load(_ step: RestorePlan.Step, without withheld: Set<String>, table: Manifest.Table) throws -> Int64 {
        var columns = step.columns.filter { !withheld.contains($0.name) }
        while true {
            do {
                return try upsertAll(step, columns: columns, table: table)
            } catch let error as RESTError where error.code == "428C9" {
                guard let generated = Self.generatedColumn(in: error, among: columns.map(\.name)) else { throw error }
                if step.conflictKey.contains(generated) {
                    throw RESTError(
                        status: error.status, code: error.code,
                        message: "column \(generated) is GENERATED ALWAYS in the target, and PostgREST cannot write it",
                        details: nil,
                        advice:
                            "restore this table with a direct connection (--db-url), which keeps the backup's values",
                        table: step.table)
                }
                logger.info(
                    "target generates a column itself; not writing it",
                    metadata: ["table": "\(step.table)", "column": "\(generated)"])
                columns.removeAll { $0.name == generated }
            }
        }
    }

    private func upsertAll(_ step: RestorePlan.Step, columns: [RestorePlan.ColumnPlan], table: Manifest.Table) throws
        -> Int64
    {
        let started = Date()
        var query = [("columns", columns.map { PostgRESTQuery.field($0.name) }.joined(separator: ","))]
        var prefer = "return=minimal"
        if !step.conflictKey.isEmpty {
            query.append(("on_conflict", step.conflictKey.map(PostgRESTQuery.field).joined(separator: ",")))
            prefer = "resolution=merge-duplicates,return=minimal"
        }
        let headers = PostgRESTCatalog.schemaHeaders(step.table.schema, write: true) + [("Prefer", prefer)]
        let path = PostgRESTClient.percentEncode(step.table.name)
        // Columns kept as strings of JSON text go back to PostgREST as the JSON itself.
        let unwrap = JSONScanner.KeySet(
            Set(columns.filter { $0.encoding == .text && $0.targetType == "json" }.map(\.name)))
        var batch: [UInt8] = [UInt8(ascii: "[")]
        var inBatch = 0
        var rows: Int64 = 0
        func flush() throws {
            guard inBatch > 0 else { return }
            batch.append(UInt8(ascii: "]"))
            _ = try client.post(path, query: query, headers: headers, body: batch, table: step.table)
            batch = [UInt8(ascii: "[")]
            inBatch = 0
        }
        var scanner = LineScanner()
        try ArchiveVerifier.checkDataFile(archive, table, validateLines: false) { chunk in
            try scanner.feed(chunk) { line in
                if inBatch > 0 { batch.append(UInt8(ascii: ",")) }
                JSONScanner.appendObject(line, 0..<line.count, unwrapping: unwrap, omittingNull: false, to: &batch)
                inBatch += 1
                rows += 1
                if batch.count >= self.settings.batchBytes { try flush() }
            }
        }
        try flush()
        logger.debug(
            "table restored",
            metadata: [
                "table": "\(step.table)", "rows": "\(rows)",
                "seconds": "\(String(format: "%.2f", Date().timeIntervalSince(started)))",
            ])
        return rows
    }

    /// The key columns of a foreign-key violation's detail, from its `(a, b)=(1, 2)` part, which
    /// every translation keeps (`Key (a)=(1) is not present ...`, `Schlüssel (a)=(1) ist nicht ...`).
    static func keyColumns(in detail: String) -> [String] {
        guard let open = detail.firstIndex(of: "("), let end = detail[open...].range(of: ")=(") else { return [] }
        return detail[detail.index(after: open)..<end.lowerBound].components(separatedBy: ", ").map {
            $0.hasPrefix("\"") && $0.hasSuffix("\"") && $0.count >= 2 ? String($0.dropFirst().dropLast()) : $0
        }
    }

    /// Which of `columns` a 428C9 error (a value for a generated column) is about. PostgREST
    /// passes only the server's text, in the server's language, so the column is the one whose
    /// name stands between quote marks of any kind (`"x"`, `»x«`, `„x“`), longest first.
    static func generatedColumn(in error: RESTError, among columns: [String]) -> String? {
        let text = error.message + " " + (error.details ?? "")
        func quoted(_ name: String) -> Bool {
            var search = text.startIndex..<text.endIndex
            while let found = text.range(of: name, range: search) {
                let before = found.lowerBound > text.startIndex ? text[text.index(before: found.lowerBound)] : " "
                let after = found.upperBound < text.endIndex ? text[found.upperBound] : " "
                if isQuote(before) && isQuote(after) { return true }
                search = found.upperBound..<text.endIndex
            }
            return false
        }
        func isQuote(_ c: Character) -> Bool { "\"'»«„“”‘’「」".contains(c) }
        return columns.filter { !$0.isEmpty && quoted($0) }.max { $0.count < $1.count }
    }

}
