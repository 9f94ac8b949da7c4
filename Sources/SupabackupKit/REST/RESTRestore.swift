import Foundation
import Logging

/// Restores over PostgREST: upserting batches (`Prefer: resolution=merge-duplicates`) in
/// foreign-key order.
///
/// Not one transaction: a failure leaves the tables and batches written before it. Every write
/// is an upsert of the backup's values, so rerunning the restore converges to the backup.
/// Foreign keys the OpenAPI document hides are handled by retrying, after the others, tables
/// that failed with a foreign-key violation, until a round makes no progress.
struct RESTRestore {
    let settings: RESTSettings
    let logger: Logger
    /// The RPC function `sql/rest/supabackup_setval.sql` installs.
    static let setvalFunction = "supabackup_setval"

    init(settings: RESTSettings, logger: Logger) throws {
        self.settings = try PostgRESTClient.resolve(settings, logger: logger)
        self.logger = logger
    }

    func run(archive: BackupArchive, selected all: [Manifest.Table], dryRun: Bool) throws -> RestoreResult {
        try settings.key.requireServiceLevel()
        // Auth users go through the Auth admin API; the auth schema is not exposed over REST.
        let users = all.first { $0.schema == "auth" && $0.name == "users" }
        let selected = all.filter { $0.schema != "auth" }
        let client = PostgRESTClient(settings: settings, logger: logger)
        defer { client.shutdown() }
        var target: [CatalogTable] = []
        for schema in Array(Set(selected.map(\.schema))).sorted() {
            let document = try RESTBackupSource.discover(schema, client: client)
            target += document.tables.filter(\.insertable).map { Self.catalogTable($0, schema: schema) }
        }
        // Views look like tables over REST; only a REST backup can hold one's rows.
        var views: [TableName: String] = [:]
        if archive.manifest.mode == "rest" {
            let listed = Set(target.map(\.tableName))
            for table in selected where listed.contains(table.tableName) {
                if try client.isView(table.tableName) { views[table.tableName] = "view" }
            }
        }
        var plan = try RestorePlan(
            manifest: archive.manifest, tables: selected, target: target.filter { views[$0.tableName] == nil },
            disableTriggers: false, compareTypes: false, views: views)
        plan.warnings.append(
            "REST restore: not one transaction; if it fails, what was written stays, and rerunning the restore converges")
        if users != nil {
            plan.warnings.append(
                "REST restore: auth users are created through the Auth admin API (missing ones only; existing users are left alone); identities other than email/phone come back when users sign in again with their provider")
        }
        if dryRun {
            return RestoreResult(name: archive.name, plan: plan, dryRun: true, tables: [], sequences: [])
        }
        var authOutcome: (created: Int, existing: Int, needReset: [String])?
        if let users {
            let admin = try AuthAdminClient(settings: settings, logger: logger)
            defer { admin.shutdown() }
            authOutcome = try admin.createMissingUsers(archive: archive, table: users)
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
                    let rows = try load(step, without: withheld[step.table] ?? [], table: table, archive: archive, client: client)
                    if withheld[step.table] != nil {
                        reloads.append(step)
                    } else {
                        outcomes.append(.init(table: step.table, rows: rows, written: rows, inserted: nil, path: "rest"))
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
                    let nullable = Set(target.first { $0.tableName == step.table }?.columns.filter(\.nullable).map(\.name) ?? [])
                    if !columns.isEmpty && columns.allSatisfy({ nullable.contains($0) && !step.conflictKey.contains($0) }) {
                        withheld[step.table] = Set(columns)
                        broke = true
                        break
                    }
                }
                if !broke {
                    let names = blocked.map { "\($0.0.table) (\($0.1.details ?? $0.1.message))" }.joined(separator: "; ")
                    throw RESTError(
                        status: 409, code: "23503", message: "foreign keys stay unsatisfied for: \(names)", details: nil,
                        advice: "the referenced rows are neither in the target nor in this backup; tables before them were restored, rerunning converges once the references exist",
                        table: nil)
                }
            }
            pending = blocked.map(\.0)
        }
        for step in reloads {
            guard let table = archive.manifest.table(step.table) else { continue }
            let rows = try load(step, without: [], table: table, archive: archive, client: client)
            outcomes.append(.init(table: step.table, rows: rows, written: rows, inserted: nil, path: "rest"))
        }
        let sequences = try resetSequences(archive.manifest.sequences, restored: Set(plan.steps.map(\.table)), client: client)
        var result = RestoreResult(name: archive.name, plan: plan, dryRun: false, tables: outcomes, sequences: sequences)
        if let authOutcome {
            result.authUsersCreated = authOutcome.created
            result.authUsersExisting = authOutcome.existing
            result.passwordResetNeeded = authOutcome.needReset
        }
        return result
    }

    static func catalogTable(_ table: OpenAPISchema.Table, schema: String) -> CatalogTable {
        CatalogTable(
            oid: 0, schema: schema, name: table.name, kind: "r", estimatedRows: 0,
            columns: table.columns.map { column in
                CatalogColumn(
                    name: column.name, type: column.type, typeOid: 0, nullable: !column.required, generated: "",
                    identity: "", hasDefault: column.hasDefault || column.primaryKey)
            },
            primaryKey: table.primaryKey, uniqueKeys: nil, foreignKeys: [])
    }

    /// Streams one table's rows into batched upserts. Restarts the table (idempotently) when
    /// the target turns out to generate a column itself.
    private func load(
        _ step: RestorePlan.Step, without withheld: Set<String>, table: Manifest.Table, archive: BackupArchive,
        client: PostgRESTClient
    ) throws -> Int64 {
        var columns = step.columns.filter { !withheld.contains($0.name) }
        while true {
            do {
                return try upsertAll(step, columns: columns, table: table, archive: archive, client: client)
            } catch let error as RESTError where error.code == "428C9" {
                guard let generated = Self.generatedColumn(in: error, among: columns.map(\.name)) else { throw error }
                if step.conflictKey.contains(generated) {
                    throw RESTError(
                        status: error.status, code: error.code,
                        message: "column \(generated) is GENERATED ALWAYS in the target, and PostgREST cannot write it",
                        details: nil,
                        advice: "restore this table with a direct connection (--db-url), which keeps the backup's values", table: step.table)
                }
                logger.info("target generates a column itself; not writing it", metadata: ["table": "\(step.table)", "column": "\(generated)"])
                columns.removeAll { $0.name == generated }
            }
        }
    }

    private func upsertAll(
        _ step: RestorePlan.Step, columns: [RestorePlan.ColumnPlan], table: Manifest.Table, archive: BackupArchive,
        client: PostgRESTClient
    ) throws -> Int64 {
        let started = Date()
        var query = [("columns", columns.map { PostgRESTQuery.field($0.name) }.joined(separator: ","))]
        var prefer = "return=minimal"
        if !step.conflictKey.isEmpty {
            query.append(("on_conflict", step.conflictKey.map(PostgRESTQuery.field).joined(separator: ",")))
            prefer = "resolution=merge-duplicates,return=minimal"
        }
        let headers = RESTBackupSource.schemaHeaders(step.table.schema, write: true) + [("Prefer", prefer)]
        let path = PostgRESTClient.percentEncode(step.table.name)
        // Columns kept as strings of JSON text go back to PostgREST as the JSON itself.
        let unwrap = Set(columns.filter { $0.encoding == .text && $0.targetType == "json" }.map(\.name))
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
                Self.appendForREST(line, unwrapping: unwrap, to: &batch)
                inBatch += 1
                rows += 1
                if batch.count >= settings.batchBytes { try flush() }
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

    static func appendForREST(_ line: UnsafeRawBufferPointer, unwrapping unwrap: Set<String>, to out: inout [UInt8]) {
        guard !unwrap.isEmpty, let members = JSONScanner.members(line, in: 0..<line.count) else {
            out.append(contentsOf: line)
            return
        }
        out.append(UInt8(ascii: "{"))
        for (index, member) in members.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            let key = UnsafeRawBufferPointer(rebasing: line[member.key])
            let value = UnsafeRawBufferPointer(rebasing: line[member.value])
            out.append(contentsOf: key)
            out.append(UInt8(ascii: ":"))
            if value.first == UInt8(ascii: "\""), let name = JSONScanner.decodeString(key), unwrap.contains(name),
                let text = JSONScanner.decodeString(value)
            {
                out.append(contentsOf: Array(text.utf8))
            } else {
                out.append(contentsOf: value)
            }
        }
        out.append(UInt8(ascii: "}"))
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

    /// Moves sequences forward through the optional RPC function; without it, says exactly
    /// which sequences need resetting and the SQL that does it.
    private func resetSequences(
        _ sequences: [Manifest.Sequence], restored: Set<TableName>, client: PostgRESTClient
    ) throws -> [RestoreResult.SequenceOutcome] {
        var outcomes: [RestoreResult.SequenceOutcome] = []
        var rpcMissing = false
        for sequence in sequences {
            let feeds = sequence.feeds.filter { restored.contains($0.tableName) }
            guard !feeds.isEmpty, sequence.increment > 0 else { continue }
            var value = sequence.isCalled ? sequence.lastValue : sequence.lastValue - sequence.increment
            for feed in feeds {
                let response = try client.get(
                    PostgRESTClient.percentEncode(feed.table),
                    query: [("select", PostgRESTQuery.field(feed.column)), ("order", PostgRESTQuery.field(feed.column) + ".desc.nullslast"), ("limit", "1")],
                    headers: RESTBackupSource.schemaHeaders(feed.schema), table: feed.tableName)
                if let rows = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]],
                    let number = rows.first?[feed.column] as? NSNumber
                {
                    value = max(value, number.int64Value)
                }
            }
            let name = TableName(schema: sequence.schema, name: sequence.name)
            let sql = "SELECT setval('\(name.quoted.replacingOccurrences(of: "'", with: "''"))', greatest(\(value), (SELECT last_value FROM \(name.quoted))));"
            guard value >= 1, !rpcMissing else {
                outcomes.append(.init(sequence: name, value: nil, note: "not set over REST; run: \(sql)"))
                continue
            }
            do {
                let body = "{\"sequence_name\":\(SQL.jsonString(name.quoted)),\"new_value\":\(value)}"
                _ = try client.post("rpc/\(Self.setvalFunction)", headers: [("Content-Profile", "public")], body: Array(body.utf8))
                outcomes.append(.init(sequence: name, value: value, note: nil))
            } catch let error as RESTError where error.status == 404 {
                rpcMissing = true
                outcomes.append(.init(
                    sequence: name, value: nil,
                    note: "not set over REST (install sql/rest/supabackup_setval.sql to let restores do it); run: \(sql)"))
            }
        }
        return outcomes
    }
}
