import Foundation
import Logging

/// Supabase Auth's admin API (`/auth/v1/admin/users`), for auth users when only the REST API is
/// reachable. It lists and creates users but never returns password hashes.
struct AuthAdminClient {
    let client: PostgRESTClient

    /// The `auth.users` columns a user listed by the admin API fills, in this order.
    static let userColumns: [Manifest.Column] = [
        ("id", "uuid", false), ("aud", "character varying(255)", true), ("role", "character varying(255)", true),
        ("email", "character varying(255)", true), ("phone", "text", true),
        ("email_confirmed_at", "timestamp with time zone", true),
        ("phone_confirmed_at", "timestamp with time zone", true),
        ("last_sign_in_at", "timestamp with time zone", true), ("raw_app_meta_data", "jsonb", true),
        ("raw_user_meta_data", "jsonb", true), ("created_at", "timestamp with time zone", true),
        ("updated_at", "timestamp with time zone", true), ("is_anonymous", "boolean", false),
    ].map {
        Manifest.Column(
            name: $0.0, type: $0.1, nullable: $0.2, generated: nil, identity: nil,
            encoding: $0.1 == "jsonb" ? .jsonOmitNull : .json)
    }

    /// The user's field for each column (the API renames the metadata).
    static let userFields: [String: String] = [
        "raw_app_meta_data": "app_metadata", "raw_user_meta_data": "user_metadata",
    ]

    static let identityColumns: [Manifest.Column] = [
        ("provider_id", "text", false), ("user_id", "uuid", false), ("identity_data", "jsonb", false),
        ("provider", "text", false), ("last_sign_in_at", "timestamp with time zone", true),
        ("created_at", "timestamp with time zone", true), ("updated_at", "timestamp with time zone", true),
        ("id", "uuid", false),
    ].map {
        Manifest.Column(
            name: $0.0, type: $0.1, nullable: $0.2, generated: nil, identity: nil,
            encoding: $0.1 == "jsonb" ? .jsonOmitNull : .json)
    }

    /// Identity fields: `id` is the provider's id and `identity_id` the row's (GoTrue >= 2.x).
    static let identityFields: [String: String] = ["provider_id": "id", "id": "identity_id"]

    init(settings: RESTSettings, logger: Logger) throws {
        client = PostgRESTClient(settings: try Self.settings(for: settings), logger: logger)
    }

    /// The settings that reach the Auth API beside `settings`' PostgREST; a bare PostgREST
    /// has none, which is a usage error said before any row is read.
    static func settings(for settings: RESTSettings) throws -> RESTSettings {
        guard let root = settings.authRoot else {
            throw UsageError(
                "--with-auth over REST needs the project URL (https://<ref>.supabase.co, http://127.0.0.1:54321, https://supabase.example.com); \(settings.root.absoluteString) is a bare PostgREST with no Auth API beside it",
                code: .notSupported)
        }
        var auth = settings
        auth.root = root
        auth.fallbackRoot = nil
        return auth
    }

    func shutdown() { client.shutdown() }

    /// Streams every user (page by page) as `auth.users` and `auth.identities` lines.
    func readUsers(users: (UnsafeRawBufferPointer) throws -> Void, identities: (UnsafeRawBufferPointer) throws -> Void)
        throws -> (users: Int64, identities: Int64)
    {
        var page = 1
        var userCount: Int64 = 0
        var identityCount: Int64 = 0
        let table = TableName(schema: "auth", name: "users")
        while true {
            let response = try client.get(
                "admin/users", query: [("page", String(page)), ("per_page", "1000")], table: table)
            var userLines: [UInt8] = []
            var identityLines: [UInt8] = []
            var pageUsers = 0
            let ok = response.body.withUnsafeBytes { body -> Bool in
                guard let top = JSONScanner.members(body, in: 0..<body.count),
                    let list = top.first(where: {
                        JSONScanner.decodeString(UnsafeRawBufferPointer(rebasing: body[$0.key])) == "users"
                    })
                else { return false }
                return JSONScanner.forEachArrayElement(UnsafeRawBufferPointer(rebasing: body[list.value])) { range in
                    let offset = list.value.lowerBound
                    let user = (range.lowerBound + offset)..<(range.upperBound + offset)
                    guard let members = JSONScanner.members(body, in: user) else { return }
                    let fields = Self.fields(body, members)
                    Self.appendLine(body, fields, columns: Self.userColumns, renamed: Self.userFields, to: &userLines)
                    pageUsers += 1
                    if let list = fields["identities"] {
                        _ = JSONScanner.forEachArrayElement(UnsafeRawBufferPointer(rebasing: body[list])) { range in
                            let identity = (range.lowerBound + list.lowerBound)..<(range.upperBound + list.lowerBound)
                            guard let members = JSONScanner.members(body, in: identity) else { return }
                            Self.appendLine(
                                body, Self.fields(body, members), columns: Self.identityColumns,
                                renamed: Self.identityFields, to: &identityLines)
                            identityCount += 1
                        }
                    }
                }
            }
            guard ok else {
                throw RESTError(
                    status: response.status, code: nil,
                    message: "the Auth admin API answered with something other than a user list", details: nil,
                    advice: nil, table: table)
            }
            if pageUsers == 0 { break }
            try userLines.withUnsafeBytes { try users($0) }
            try identityLines.withUnsafeBytes { try identities($0) }
            userCount += Int64(pageUsers)
            page += 1
        }
        return (userCount, identityCount)
    }

    private static func fields(_ body: UnsafeRawBufferPointer, _ members: [JSONScanner.Member]) -> [String: Range<Int>]
    {
        var fields: [String: Range<Int>] = [:]
        for member in members {
            if let key = JSONScanner.decodeString(UnsafeRawBufferPointer(rebasing: body[member.key])) {
                fields[key] = member.value
            }
        }
        return fields
    }

    /// One archive line in column order, values copied as the API sent them. An empty phone
    /// (the API's "none") becomes SQL NULL: `auth.users.phone` is unique.
    private static func appendLine(
        _ body: UnsafeRawBufferPointer, _ fields: [String: Range<Int>], columns: [Manifest.Column],
        renamed: [String: String], to out: inout [UInt8]
    ) {
        out.append(UInt8(ascii: "{"))
        var first = true
        for column in columns {
            var value: [UInt8] = Array("null".utf8)
            if let range = fields[renamed[column.name] ?? column.name] {
                value = Array(UnsafeRawBufferPointer(rebasing: body[range]))
            }
            if column.name == "phone" && value == Array("\"\"".utf8) { value = Array("null".utf8) }
            if column.encoding == .jsonOmitNull && value == Array("null".utf8) { continue }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(contentsOf: Array(SQL.jsonString(column.name).utf8))
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: value)
        }
        out.append(contentsOf: Array("}\n".utf8))
    }

    /// Creates the users of an `auth.users` data file that the project lacks, with their ids,
    /// metadata and, when the backup has them, password hashes.
    /// - Returns: users created, users that existed, and created users that must reset their password.
    func createMissingUsers(
        archive: BackupArchive, table: Manifest.Table
    ) throws -> (created: Int, existing: Int, needReset: [String]) {
        var created = 0
        var existing = 0
        var needReset: [String] = []
        var scanner = LineScanner()
        var lines: [[UInt8]] = []
        try ArchiveVerifier.checkDataFile(archive, table, validateLines: false) { chunk in
            scanner.feed(chunk) { lines.append(Array($0)) }
            for line in lines {
                let result = try createUser(line)
                switch result {
                case .existed: existing += 1
                case .created(let resetName):
                    created += 1
                    if let resetName { needReset.append(resetName) }
                }
            }
            lines.removeAll()
        }
        return (created, existing, needReset)
    }

    private enum Outcome {
        case existed
        /// The user's email or id when no password hash could be carried over.
        case created(String?)
    }

    private func createUser(_ line: [UInt8]) throws -> Outcome {
        let table = TableName(schema: "auth", name: "users")
        return try line.withUnsafeBytes { bytes -> Outcome in
            guard let members = JSONScanner.members(bytes, in: 0..<bytes.count) else {
                throw ArchiveError(.damaged, "an auth.users line is not a JSON object")
            }
            let fields = Self.fields(bytes, members)
            func raw(_ name: String) -> String? {
                guard let range = fields[name] else { return nil }
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
                return text == "null" ? nil : text
            }
            func string(_ name: String) -> String? {
                fields[name].flatMap { JSONScanner.decodeString(UnsafeRawBufferPointer(rebasing: bytes[$0])) }
            }
            guard let id = string("id") else { throw ArchiveError(.damaged, "an auth.users line has no id") }
            let lookup: RESTResponse
            do {
                lookup = try client.get("admin/users/\(id)", table: table)
                _ = lookup
                return .existed
            } catch let error as RESTError where error.status == 404 {
                // Not there: create it below.
            }
            var body: [String] = ["\"id\":\(raw("id")!)"]
            if let email = raw("email") { body.append("\"email\":\(email)") }
            if let phone = raw("phone"), phone != "\"\"" { body.append("\"phone\":\(phone)") }
            body.append("\"email_confirm\":\(raw("email_confirmed_at") != nil)")
            body.append("\"phone_confirm\":\(raw("phone_confirmed_at") != nil)")
            if let metadata = raw("raw_user_meta_data") { body.append("\"user_metadata\":\(metadata)") }
            if let metadata = raw("raw_app_meta_data") { body.append("\"app_metadata\":\(metadata)") }
            let hash = raw("encrypted_password").flatMap { $0 == "\"\"" ? nil : $0 }
            if let hash { body.append("\"password_hash\":\(hash)") }
            do {
                _ = try client.post(
                    "admin/users", body: Array(("{" + body.joined(separator: ",") + "}").utf8), table: table)
            } catch let error as RESTError where error.status == 422 {
                // A create retried after its response was cut finds its own user: made by us.
                guard (try? client.get("admin/users/\(id)", table: table)) != nil else { throw error }
            }
            return .created(hash == nil ? (string("email") ?? string("phone") ?? id) : nil)
        }
    }
}
