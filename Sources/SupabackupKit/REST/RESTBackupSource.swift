import Foundation
import Logging

/// Reads tables through PostgREST: OpenAPI discovery, keyset pages on the primary key.
///
/// Each page is a separate request (its own transaction), so the backup is not one snapshot.
/// Rows are the server's bytes, split out of the `json_agg` page without re-encoding values.
final class RESTBackupSource: BackupSource {
    let mode = BackupMode.rest
    let consistentSnapshot = false
    let foreignKeysComplete = false
    private(set) var authPasswordHashes = true
    private(set) var warnings: [String] = [
        "REST mode: each page is read in its own transaction, so tables are not one consistent snapshot",
        "REST mode: the OpenAPI document shows only single-column foreign keys within a schema; others are missing from this manifest",
        "REST mode: sequence values cannot be read over REST and are not in this manifest",
        "REST mode: table definitions (DDL) cannot be read over REST; there is no schema.sql, so restore --create-schema needs a direct-mode backup",
    ]
    private let client: PostgRESTClient
    var location: String { "the REST API at \(settings.root.absoluteString)" }
    private let settings: RESTSettings
    private let logger: Logger

    init(settings: RESTSettings, logger: Logger) throws {
        try settings.key.requireServiceLevel()
        let settings = try PostgRESTClient.resolve(settings, logger: logger)
        self.settings = settings
        self.logger = logger
        client = PostgRESTClient(settings: settings, logger: logger)
    }

    deinit { client.shutdown() }

    func tables(in schemas: [String], filters: [TableFilter]) throws -> [SourceTable] {
        var result: [SourceTable] = []
        for schema in Array(Set(schemas + filters.compactMap(\.schema))).sorted() {
            // The auth schema is never exposed over REST; its users come from the Auth admin API.
            if schema == "auth" {
                result += Self.authTables
                continue
            }
            let document = try PostgRESTCatalog.discover(schema, client: client)
            for table in document.tables where table.insertable {
                let columns = table.columns.map { column in
                    Manifest.Column(
                        name: column.name, type: column.type, nullable: !column.required, generated: nil, identity: nil,
                        encoding: OpenAPISchema.encoding(forType: column.type))
                }
                let foreignKeys = table.columns.compactMap { column -> Manifest.ForeignKey? in
                    guard let reference = column.references else { return nil }
                    return Manifest.ForeignKey(
                        name: "\(table.name)_\(column.name)_fkey", columns: [column.name], referencedSchema: schema,
                        referencedTable: reference.table, referencedColumns: [reference.column], deferrable: false)
                }
                result.append(
                    SourceTable(
                        name: TableName(schema: schema, name: table.name), partitioned: false, columns: columns,
                        primaryKey: table.primaryKey, foreignKeys: foreignKeys, estimatedRows: 0))
            }
        }
        return result
    }

    static let authTables = [
        SourceTable(
            name: TableName(schema: "auth", name: "users"), partitioned: false, columns: AuthAdminClient.userColumns,
            primaryKey: ["id"], foreignKeys: [], estimatedRows: 0),
        SourceTable(
            name: TableName(schema: "auth", name: "identities"), partitioned: false,
            columns: AuthAdminClient.identityColumns,
            primaryKey: ["id"],
            foreignKeys: [
                Manifest.ForeignKey(
                    name: "identities_user_id_fkey", columns: ["user_id"], referencedSchema: "auth",
                    referencedTable: "users",
                    referencedColumns: ["id"], deferrable: false)
            ], estimatedRows: 0),
    ]

    func prepare(_ tables: [SourceTable]) throws -> [SourceTable] {
        // A view's rows belong to its base table, backed up on its own; stored as a table they
        // could never be restored into the view a direct target has.
        if tables.contains(where: { $0.name.schema == "auth" }) {
            // Fails before any row is read when there is no Auth API.
            _ = try AuthAdminClient.settings(for: settings)
        }
        var kept: [SourceTable] = []
        for table in tables {
            if table.name.schema != "auth", try client.isView(table.name) {
                let note =
                    "\(table.name) is a view (PostgREST lists updatable views like tables): skipped, its rows are backed up with its base table"
                logger.warning("\(note)")
                warnings.append(note)
            } else {
                kept.append(table)
            }
        }
        let tables = kept
        if tables.contains(where: { $0.name.schema == "auth" }) {
            authPasswordHashes = false
            warnings.append(
                "auth users come from the Auth admin API, which never returns password hashes: restored users must reset their passwords (or restore a direct-mode --with-auth backup)"
            )
        }
        for table in tables where table.primaryKey.isEmpty {
            warnings.append(
                "table \(table.name) has no primary key: read in pages by offset, ordered by all columns; rows written meanwhile can be missed or repeated"
            )
        }
        return tables
    }

    func close() {}

    func readRows(of table: SourceTable, slice: TableSlice?, _ body: (UnsafeRawBufferPointer) throws -> Void) throws
        -> Int64
    {
        if table.name.schema == "auth" {
            let admin = try AuthAdminClient(settings: settings, logger: logger)
            defer { admin.shutdown() }
            let users = table.name.name == "users"
            let counts = try admin.readUsers(
                users: { if users { try body($0) } }, identities: { if !users { try body($0) } })
            return users ? counts.users : counts.identities
        }
        let jsonb = JSONScanner.KeySet(Set(table.columns.filter { $0.encoding == .jsonOmitNull }.map(\.name)))
        let keyed = !table.primaryKey.isEmpty
        // Without a key, order by every column that has an ordering (json has none; for xml, the
        // geometric types and domains or composites over them the server says so, 42883).
        var orderColumns = keyed ? table.primaryKey : table.columns.filter { $0.encoding == .json }.map(\.name)
        var lastKey: [String]?
        var probed = false
        var offset = 0
        var rows: Int64 = 0
        var lines: [UInt8] = []
        while true {
            var query: [(String, String)] = [("select", PostgRESTQuery.select(table.columns))]
            if !orderColumns.isEmpty { query.append(("order", PostgRESTQuery.order(orderColumns))) }
            query.append(("limit", String(settings.pageSize)))
            if keyed, let lastKey {
                query.append(PostgRESTQuery.after(table.primaryKey, lastKey))
            } else if !keyed && offset > 0 {
                query.append(("offset", String(offset)))
            }
            let response: RESTResponse
            do {
                response = try client.get(
                    PostgRESTClient.percentEncode(table.name.name), query: query,
                    headers: PostgRESTCatalog.schemaHeaders(table.name.schema), table: table.name)
            } catch let error as RESTError where error.code == "42883" && !keyed && rows == 0 && !probed {
                // A column without an ordering: ask the server which ones have one.
                orderColumns = try sortable(orderColumns, of: table.name)
                probed = true
                continue
            }
            lines.removeAll(keepingCapacity: true)
            var pageRows = 0
            var lastRow: Range<Int>?
            let wellFormed = response.body.withUnsafeBytes { page in
                JSONScanner.forEachArrayElement(page) { range in
                    Self.appendLine(page, range, jsonbAsText: jsonb, to: &lines)
                    pageRows += 1
                    lastRow = range
                }
            }
            guard wellFormed else {
                throw RESTError(
                    status: response.status, code: nil, message: "the server sent a page that is not a JSON array",
                    details: nil, advice: nil, table: table.name)
            }
            // Only an empty page ends a table: the server caps pages silently (db-max-rows).
            if pageRows == 0 { break }
            try lines.withUnsafeBytes { try body($0) }
            rows += Int64(pageRows)
            offset += pageRows
            if keyed, let lastRow {
                lastKey = try response.body.withUnsafeBytes { page in
                    try Self.keyValues(page, lastRow, keys: table.primaryKey, table: table.name)
                }
            }
        }
        return rows
    }

    /// The columns of `columns` the server can sort by (42883: no ordering operator).
    private func sortable(_ columns: [String], of table: TableName) throws -> [String] {
        try columns.filter { column in
            do {
                _ = try client.get(
                    PostgRESTClient.percentEncode(table.name),
                    query: [
                        ("select", PostgRESTQuery.field(column)), ("order", PostgRESTQuery.order([column])),
                        ("limit", "0"),
                    ],
                    headers: PostgRESTCatalog.schemaHeaders(table.schema), table: table)
                return true
            } catch let error as RESTError where error.code == "42883" {
                return false
            }
        }
    }

    /// Appends one row and a newline. jsonb columns arrive as text (`col::text`), so SQL NULL
    /// (`null`, its key left out as in direct mode) and JSON null (`"null"`) stay apart; their
    /// text is jsonb's own rendering, the bytes `to_json` gives.
    static func appendLine(
        _ page: UnsafeRawBufferPointer, _ row: Range<Int>, jsonbAsText jsonb: JSONScanner.KeySet,
        to lines: inout [UInt8]
    ) {
        let start = lines.count
        JSONScanner.appendObject(page, row, unwrapping: jsonb, omittingNull: true, to: &lines)
        // A raw newline can only be whitespace inside a json value nested in a composite; the
        // archive's lines never contain one.
        for i in start..<lines.count where lines[i] == 0x0A || lines[i] == 0x0D { lines[i] = 0x20 }
        lines.append(0x0A)
    }

    /// The key columns' values in the row, as text for a filter.
    static func keyValues(_ page: UnsafeRawBufferPointer, _ row: Range<Int>, keys: [String], table: TableName) throws
        -> [String]
    {
        guard let members = JSONScanner.members(page, in: row) else {
            throw RESTError(
                status: nil, code: nil, message: "a row is not a JSON object", details: nil, advice: nil, table: table)
        }
        var byName: [String: Range<Int>] = [:]
        for member in members {
            if let key = JSONScanner.decodeString(UnsafeRawBufferPointer(rebasing: page[member.key])) {
                byName[key] = member.value
            }
        }
        return try keys.map { key in
            guard let range = byName[key] else {
                throw RESTError(
                    status: nil, code: nil, message: "rows lack key column \(key)", details: nil, advice: nil,
                    table: table)
            }
            let raw = UnsafeRawBufferPointer(rebasing: page[range])
            if raw.first == UInt8(ascii: "\"") {
                guard let text = JSONScanner.decodeString(raw) else {
                    throw RESTError(
                        status: nil, code: nil, message: "cannot read key \(key)", details: nil, advice: nil,
                        table: table)
                }
                return text
            }
            return String(decoding: raw, as: UTF8.self)
        }
    }

    func sequences(feeding tables: [SourceTable]) throws -> [Manifest.Sequence] { [] }

    func schemaScript(for tables: [SourceTable], schemas: [String]) throws -> (
        script: SchemaScript, warnings: [String]
    )? { nil }

    func source() throws -> (source: Manifest.Source, serverVersion: String) {
        let root = settings.root
        return (
            Manifest.Source(
                host: root.host ?? "", port: root.port.map(String.init) ?? "", database: root.path, user: "rest"),
            ""
        )
    }

    func finish() throws { client.shutdown() }
}
