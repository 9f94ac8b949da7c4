import Crypto
import Foundation
import NIOHTTP1
import SupabackupKit

/// The Storage API of a Supabase project for tests, at `/storage/v1` beside the PostgREST test
/// server, written from shared/storage-api-subset.md: bucket routes, both listings (v1 with its
/// case-insensitive matching, folder entries and 1500 cap; list-v2 with keyset cursors, or a 400
/// FeatureNotEnabled / 404 where a project lacks it), authenticated downloads with Range, info,
/// raw-body uploads with key validation and bucket limits, every 4xx as HTTP 400 with the real
/// code in the body, and faults. Rows live in the test database (`sql/fixtures/supabase/
/// storage.sql`), bytes in files named by version under `root`.
public final class StorageTestAPI: @unchecked Sendable {
    // @unchecked: options are fixed at init; counters and `vanishing` are guarded by `lock`.
    public enum ListV2: Sendable {
        case available
        /// A hosted project whose storage schema lacks the search-v2 migration.
        case featureNotEnabled
        /// A server older than v1.19.0.
        case notFound
    }

    public enum FaultKind: Sendable {
        case status500
        /// Headers and half of the body, then the connection closes.
        case dropMidBody
        case slow(TimeInterval)
        /// HTTP 400 with body statusCode "503" (LockTimeout): retryable by the body.
        case lockTimeout
        /// HTTP 400 with body statusCode "403" (a revoked key): not retryable.
        case accessDenied
        /// The request is read (an upload's body included), then the connection closes unanswered.
        case dropConnection
    }

    public struct Fault: Sendable {
        /// `METHOD /route-prefix` (after `/storage/v1`), e.g. `GET /object/authenticated/`.
        public var route: String
        public var every: Int
        public var kind: FaultKind
        public var limit: Int?
        public init(route: String, every: Int, kind: FaultKind, limit: Int? = nil) {
            self.route = route
            self.every = every
            self.kind = kind
            self.limit = limit
        }
    }

    public struct Options: Sendable {
        public var listV2 = ListV2.available
        public var faults: [Fault] = []
        /// The v1 listing as before v1.34: `_` and `%` in a prefix are ILIKE wildcards, and
        /// folders that differ only in case are listed once each.
        public var legacyV1 = false
        /// `/object/info` as before v1.7.0: headers only, no JSON body (no id, no user metadata).
        public var infoHeadersOnly = false
        /// The project's global upload limit (Free: 50 MB).
        public var globalFileSizeLimit: Int64 = 500_000_000
        public init() {}
    }

    public struct Counters: Sendable, Equatable {
        public var downloads = 0
        public var downloadedBytes: Int64 = 0
        public var uploads = 0
        public var uploadedBytes: Int64 = 0
    }

    public var options: Options {
        get { lock.withLock { _options } }
        set { lock.withLock { _options = newValue } }
    }
    public let root: String
    private var _options: Options
    private let lock = NSLock()
    private var counts = Counters()
    private var matched: [Int: Int] = [:]
    private var injected: [Int: Int] = [:]
    private var vanishing: Set<String> = []

    public var counters: Counters { lock.withLock { counts } }
    /// Faults injected so far, per entry of `options.faults`.
    public var injectedFaults: [Int] { lock.withLock { _options.faults.indices.map { injected[$0, default: 0] } } }
    public func resetCounters() { lock.withLock { counts = Counters() } }
    /// The object `bucket/name` is deleted when its download starts, as if removed mid-backup.
    public func vanishOnDownload(_ bucket: String, _ name: String) {
        lock.withLock { _ = vanishing.insert(bucket + "/" + name) }
    }

    init(root: String, options: Options) {
        self.root = root
        self._options = options
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    struct StorageFailure: Error {
        var statusCode: String
        var error: String
        var message: String
        var code: String
        /// The HTTP status: 400 for every 4xx, as the real server answers.
        var http: Int { statusCode.hasPrefix("4") ? 400 : Int(statusCode) ?? 500 }

        static func noBucket() -> Self {
            .init(statusCode: "404", error: "Bucket not found", message: "Bucket not found", code: "NoSuchBucket")
        }
        static func noKey() -> Self {
            .init(statusCode: "404", error: "not_found", message: "Object not found", code: "NoSuchKey")
        }
        static func invalidKey(_ key: String) -> Self {
            .init(statusCode: "400", error: "InvalidKey", message: "Invalid key: \(key)", code: "InvalidKey")
        }
    }

    typealias Reply = TestHTTPHandler.Reply

    static func reply(_ failure: StorageFailure) -> Reply {
        let body: [String: String] = [
            "statusCode": failure.statusCode, "error": failure.error, "message": failure.message, "code": failure.code,
        ]
        return jsonReply(failure.http, try! JSONSerialization.data(withJSONObject: body))
    }

    static func jsonReply(_ status: Int, _ data: Data) -> Reply {
        .response(status: status, headers: [("Content-Type", "application/json; charset=utf-8")], body: Array(data))
    }

    static func jsonReply(_ status: Int, text: String) -> Reply {
        .response(
            status: status, headers: [("Content-Type", "application/json; charset=utf-8")], body: Array(text.utf8))
    }

    /// Which injected fault, if any, this request gets.
    private func fault(for method: HTTPMethod, _ path: String) -> FaultKind? {
        lock.withLock {
            for (index, fault) in _options.faults.enumerated() where "\(method.rawValue) \(path)".hasPrefix(fault.route)
            {
                matched[index, default: 0] += 1
                guard fault.every > 0, matched[index]! % fault.every == 0 else { continue }
                if let limit = fault.limit, injected[index, default: 0] >= limit { continue }
                injected[index, default: 0] += 1
                return fault.kind
            }
            return nil
        }
    }

    /// Handles `path` (after `/storage/v1`). `anon`: the request runs as the anon role, so row
    /// level security hides what policies do not grant.
    func handle(
        _ request: TestHTTPHandler.Request, path: String, query: [(String, String)], anon: Bool,
        withConnection: ((PostgresConnection) throws -> Reply) throws -> Reply
    ) -> Reply {
        let injected = fault(for: request.method, path)
        switch injected {
        case .status500?:
            return Self.reply(
                .init(statusCode: "500", error: "internal", message: "Internal Server Error", code: "InternalError"))
        case .lockTimeout?:
            return Self.reply(
                .init(statusCode: "503", error: "LockTimeout", message: "Resource Locked, timeout", code: "LockTimeout")
            )
        case .dropConnection?:
            return .drop
        case .accessDenied?:
            return Self.reply(
                .init(statusCode: "403", error: "Unauthorized", message: "jwt expired", code: "AccessDenied"))
        case .slow(let seconds)?:
            Thread.sleep(forTimeInterval: seconds)
        default: break
        }
        do {
            let reply = try withConnection { connection in
                try connection.execute("BEGIN")
                do {
                    if anon { try connection.execute("SET LOCAL ROLE anon") }
                    let reply = try self.route(request, path: path, query: query, connection)
                    try connection.execute("COMMIT")
                    return reply
                } catch {
                    try? connection.execute("ROLLBACK")
                    throw error
                }
            }
            if case .dropMidBody? = injected, case .response(let status, let headers, let body) = reply {
                return .truncated(status: status, headers: headers, body: body, sent: body.count / 2)
            }
            return reply
        } catch let failure as StorageFailure {
            return Self.reply(failure)
        } catch let error as PostgresError {
            if error.sqlState == "42501" {
                return Self.reply(
                    .init(statusCode: "403", error: "Unauthorized", message: error.message, code: "AccessDenied"))
            }
            return Self.reply(
                .init(statusCode: "500", error: "internal", message: error.message, code: "InternalError"))
        } catch {
            return Self.reply(.init(statusCode: "500", error: "internal", message: "\(error)", code: "InternalError"))
        }
    }

    private func route(
        _ request: TestHTTPHandler.Request, path: String, query: [(String, String)], _ db: PostgresConnection
    ) throws -> Reply {
        let method = request.method
        func rest(after prefix: String) -> String? {
            guard path.hasPrefix(prefix) else { return nil }
            return String(path.dropFirst(prefix.count))
        }
        if path == "/bucket" || path == "/bucket/" {
            if method == .GET { return try listBuckets(db) }
            if method == .POST { return try createBucket(request.body, db) }
        }
        if let id = rest(after: "/bucket/").flatMap({ $0.removingPercentEncoding }) {
            if method == .GET { return try bucket(id, db) }
            if method == .PUT { return try updateBucket(id, request.body, db) }
        }
        if method == .POST, let bucket = rest(after: "/object/list-v2/").flatMap({ $0.removingPercentEncoding }) {
            switch options.listV2 {
            case .available: return try listV2(bucket, request.body, db)
            case .featureNotEnabled:
                throw StorageFailure(
                    statusCode: "400", error: "FeatureNotEnabled",
                    message: "This feature is not available for your tenant",
                    code: "FeatureNotEnabled")
            case .notFound:
                return Self.jsonReply(
                    404,
                    text:
                        #"{"message":"Route POST:/object/list-v2/\#(bucket) not found","error":"Not Found","statusCode":404}"#
                )
            }
        }
        if method == .POST, let bucket = rest(after: "/object/list/").flatMap({ $0.removingPercentEncoding }) {
            return try listV1(bucket, request.body, db)
        }
        for prefix in ["/object/info/authenticated/", "/object/info/"] where method == .GET {
            if let (bucket, key) = rest(after: prefix).flatMap(Self.bucketAndKey) { return try info(bucket, key, db) }
        }
        if method == .GET, let (bucket, key) = rest(after: "/object/authenticated/").flatMap(Self.bucketAndKey) {
            return try download(bucket, key, headers: request.headers, db)
        }
        if method == .POST || method == .PUT, let (bucket, key) = rest(after: "/object/").flatMap(Self.bucketAndKey) {
            let upsert = method == .PUT || request.headers.first(name: "x-upsert") == "true"
            return try upload(bucket, key, request, upsert: upsert, db)
        }
        if method == .DELETE, let (bucket, key) = rest(after: "/object/").flatMap(Self.bucketAndKey) {
            _ = try existingBucket(bucket, db)
            let version = try db.query(
                "DELETE FROM storage.objects WHERE bucket_id = $1 AND name = $2 RETURNING version", [bucket, key]
            ).rows.first
            guard let version else { throw StorageFailure.noKey() }
            if let version = version[0] { try? FileManager.default.removeItem(atPath: file(version)) }
            return Self.jsonReply(200, text: #"{"message":"Successfully deleted"}"#)
        }
        return Self.jsonReply(
            404,
            text: #"{"message":"Route \#(method.rawValue):\#(path) not found","error":"Not Found","statusCode":404}"#)
    }

    /// `bucket/key...`, each part percent-decoded (the router decodes `%2F` to `/` as well).
    static func bucketAndKey(_ rest: String) -> (String, String)? {
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        guard let bucket = String(rest[..<slash]).removingPercentEncoding,
            let key = String(rest[rest.index(after: slash)...]).removingPercentEncoding, !key.isEmpty
        else { return nil }
        return (bucket, key)
    }

    private func file(_ version: String) -> String { root + "/" + version }

    // MARK: - Buckets

    private static let bucketJSON = """
        json_build_object('id', id, 'name', name, 'owner', owner, 'public', public,
          'file_size_limit', file_size_limit, 'allowed_mime_types', allowed_mime_types,
          'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'updated_at', to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
        """

    private func listBuckets(_ db: PostgresConnection) throws -> Reply {
        let text = try db.query(
            "SELECT coalesce(json_agg((\(Self.bucketJSON)::jsonb || '{\"type\":\"STANDARD\"}')::json), '[]')::text FROM storage.buckets WHERE type = 'STANDARD'"
        ).scalar
        return Self.jsonReply(200, text: text ?? "[]")
    }

    private func bucket(_ id: String, _ db: PostgresConnection) throws -> Reply {
        guard let text = try db.query("SELECT \(Self.bucketJSON)::text FROM storage.buckets WHERE id = $1", [id]).scalar
        else { throw StorageFailure.noBucket() }
        return Self.jsonReply(200, text: text)
    }

    private func existingBucket(_ id: String, _ db: PostgresConnection) throws -> (limit: Int64?, mimeTypes: [String]?)
    {
        guard
            let row = try db.query(
                "SELECT file_size_limit::text, array_to_json(allowed_mime_types)::text FROM storage.buckets WHERE id = $1",
                [id]
            ).rows.first
        else { throw StorageFailure.noBucket() }
        let types = row[1].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String] }
        return (row[0].flatMap { Int64($0) }, types)
    }

    static let bucketNameCharacters = Set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_!.*'() &$=@;:+,?-")

    private func bucketSettings(_ object: [String: Any]) throws -> (Bool?, String??, String??) {
        let isPublic = object["public"] as? Bool
        var limit: String??
        if let value = object["file_size_limit"] {
            if value is NSNull {
                limit = .some(nil)
            } else if let number = value as? NSNumber {
                limit = .some(number.stringValue)
            } else if let text = value as? String {
                limit = .some(try Self.parseSize(text))
            }
        }
        if case .some(.some(let bytes)) = limit, let value = Int64(bytes), value > options.globalFileSizeLimit {
            throw StorageFailure(
                statusCode: "413", error: "Payload too large", message: "The object exceeded the maximum allowed size",
                code: "EntityTooLarge")
        }
        var types: String??
        if let value = object["allowed_mime_types"] {
            if let list = value as? [String] {
                types = .some(String(data: try JSONSerialization.data(withJSONObject: list), encoding: .utf8))
            } else {
                types = .some(nil)
            }
        }
        return (isPublic, limit, types)
    }

    static func parseSize(_ text: String) throws -> String {
        let units: [(String, Int64)] = [("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1000), ("B", 1)]
        for (unit, factor) in units where text.uppercased().hasSuffix(unit) {
            if let number = Double(text.dropLast(unit.count).trimmingCharacters(in: .whitespaces)) {
                return String(Int64(number * Double(factor)))
            }
        }
        if let number = Int64(text) { return String(number) }
        throw StorageFailure(
            statusCode: "400", error: "Invalid", message: "Invalid file size format", code: "InvalidRequest")
    }

    private func createBucket(_ body: [UInt8], _ db: PostgresConnection) throws -> Reply {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            let name = object["name"] as? String
        else {
            return Self.jsonReply(
                400,
                text: #"{"statusCode":400,"error":"Bad Request","message":"body must have required property 'name'"}"#)
        }
        let id = object["id"] as? String ?? name
        guard !name.isEmpty, name.count <= 100, name.allSatisfy({ Self.bucketNameCharacters.contains($0) }),
            name.trimmingCharacters(in: .whitespaces) == name
        else {
            throw StorageFailure(
                statusCode: "400", error: "Invalid Input", message: "Bucket name invalid", code: "InvalidBucketName")
        }
        let (isPublic, limit, types) = try bucketSettings(object)
        do {
            try db.execute("SAVEPOINT create_bucket")
            _ = try db.query(
                """
                INSERT INTO storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
                VALUES ($1, $2, $3::boolean, $4::bigint,
                  CASE WHEN json_typeof($5::json) = 'array' THEN ARRAY(SELECT json_array_elements_text($5::json)) END)
                """, [id, name, (isPublic ?? false) ? "true" : "false", limit ?? nil, (types ?? nil) ?? "null"])
        } catch let error as PostgresError where error.sqlState == "23505" {
            try db.execute("ROLLBACK TO SAVEPOINT create_bucket")
            throw StorageFailure(
                statusCode: "409", error: "Duplicate", message: "The resource already exists",
                code: "BucketAlreadyExists")
        }
        return Self.jsonReply(200, try JSONSerialization.data(withJSONObject: ["name": name]))
    }

    private func updateBucket(_ id: String, _ body: [UInt8], _ db: PostgresConnection) throws -> Reply {
        _ = try existingBucket(id, db)
        let object = (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]) ?? [:]
        let (isPublic, limit, types) = try bucketSettings(object)
        if let isPublic {
            _ = try db.query(
                "UPDATE storage.buckets SET public = $2::boolean WHERE id = $1", [id, isPublic ? "true" : "false"])
        }
        if let limit {
            _ = try db.query("UPDATE storage.buckets SET file_size_limit = $2::bigint WHERE id = $1", [id, limit])
        }
        if let types {
            let types = types ?? "null"
            _ = try db.query(
                """
                UPDATE storage.buckets SET allowed_mime_types =
                  CASE WHEN json_typeof($2::json) = 'array' THEN ARRAY(SELECT json_array_elements_text($2::json)) END
                WHERE id = $1
                """, [id, types])
        }
        return Self.jsonReply(200, text: #"{"message":"Successfully updated"}"#)
    }

    // MARK: - Listing

    private static let objectJSON = objectJSON(name: "name")

    static func objectJSON(name: String) -> String {
        """
        json_build_object('id', id, 'name', \(name), 'metadata', metadata,
          'updated_at', to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'last_accessed_at', to_char(last_accessed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
        """
    }

    /// list-v2 without a delimiter: full keys, `name LIKE prefix%` (case-sensitive), C order, keyset cursor.
    private func listV2(_ bucket: String, _ body: [UInt8], _ db: PostgresConnection) throws -> Reply {
        _ = try existingBucket(bucket, db)
        let object = (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]) ?? [:]
        let prefix = object["prefix"] as? String ?? ""
        let limit = min(max((object["limit"] as? Int) ?? 1000, 1), 1000)
        var after = ""
        if let cursor = object["cursor"] as? String, let data = Data(base64Encoded: cursor),
            let text = String(data: data, encoding: .utf8), text.hasPrefix("l:")
        {
            after = String(text.dropFirst(2))
        }
        let rows = try db.query(
            """
            SELECT name, \(Self.objectJSON)::text FROM storage.objects
            WHERE bucket_id = $1 AND starts_with(name, $2) AND name COLLATE "C" > $3
            ORDER BY name COLLATE "C" LIMIT $4::int
            """, [bucket, prefix, after, String(limit + 1)]
        ).rows
        let page = rows.prefix(limit)
        var text = #"{"hasNext":\#(rows.count > limit ? "true" : "false"),"#
        if rows.count > limit, let last = page.last?[0] {
            let cursor = Data(("l:" + last).utf8).base64EncodedString()
            text += #""nextCursor":"\#(cursor)","nextCursorKey":\#(SQL.jsonString(last)),"#
        }
        text += #""folders":[],"objects":["# + page.map { $0[1] ?? "null" }.joined(separator: ",") + "]}"
        return Self.jsonReply(200, text: text)
    }

    /// The v1 listing as since v1.34: one level, case-insensitive prefix and search, folders as
    /// null-id entries (case twins shown once), `lower(name)` order, limit capped at 1500.
    private func listV1(_ bucket: String, _ body: [UInt8], _ db: PostgresConnection) throws -> Reply {
        _ = try existingBucket(bucket, db)
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            var prefix = object["prefix"] as? String
        else {
            return Self.jsonReply(
                400,
                text: #"{"statusCode":400,"error":"Bad Request","message":"body must have required property 'prefix'"}"#
            )
        }
        if !prefix.isEmpty && !prefix.hasSuffix("/") { prefix += "/" }
        let search = object["search"] as? String ?? ""
        let limit = min((object["limit"] as? Int) ?? 100, 1500)
        let offset = (object["offset"] as? Int) ?? 0
        let rows = try db.query(
            """
            SELECT name, \(Self.objectJSON(name: "substr(name, $3::int + 1)"))::text FROM storage.objects
            WHERE bucket_id = $1 AND lower(name) LIKE $2
            """,
            [
                bucket, (options.legacyV1 ? prefix.lowercased() : Self.likeEscape(prefix.lowercased())) + "%",
                String(prefix.unicodeScalars.count),
            ]
        ).rows
        let skip = prefix.unicodeScalars.count
        var entries: [(sort: String, json: String)] = []
        var folders = Set<String>()
        for row in rows {
            guard let name = row[0], options.legacyV1 || name.lowercased().hasPrefix((prefix + search).lowercased())
            else { continue }
            let relative = String(String.UnicodeScalarView(name.unicodeScalars.dropFirst(skip)))
            if let slash = relative.firstIndex(of: "/") {
                let folder = String(relative[..<slash])
                if folders.insert(options.legacyV1 ? folder : folder.lowercased()).inserted {
                    entries.append(
                        (
                            folder.lowercased(),
                            #"{"name":\#(SQL.jsonString(folder)),"id":null,"updated_at":null,"created_at":null,"last_accessed_at":null,"metadata":null}"#
                        ))
                }
            } else {
                entries.append((relative.lowercased(), row[1] ?? "{}"))
            }
        }
        entries.sort { Array($0.sort.utf8).lexicographicallyPrecedes(Array($1.sort.utf8)) }
        let page = entries.dropFirst(offset).prefix(max(limit, 0))
        return Self.jsonReply(200, text: "[" + page.map(\.json).joined(separator: ",") + "]")
    }

    static func likeEscape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
    }

    // MARK: - Objects

    private func row(_ bucket: String, _ key: String, _ db: PostgresConnection) throws -> [String: Any] {
        _ = try existingBucket(bucket, db)
        guard
            let text = try db.query(
                """
                SELECT json_build_object('id', id, 'version', version, 'metadata', metadata, 'user_metadata', user_metadata,
                  'updated_at', to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                  'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))::text
                FROM storage.objects WHERE bucket_id = $1 AND name = $2
                """, [bucket, key]
            ).scalar,
            let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        else { throw StorageFailure.noKey() }
        return object
    }

    private func info(_ bucket: String, _ key: String, _ db: PostgresConnection) throws -> Reply {
        let object = try row(bucket, key, db)
        let metadata = object["metadata"] as? [String: Any] ?? [:]
        if options.infoHeadersOnly {
            return .response(
                status: 200,
                headers: [
                    ("Content-Type", metadata["mimetype"] as? String ?? "application/octet-stream"),
                    ("ETag", metadata["eTag"] as? String ?? ""),
                    ("Cache-Control", metadata["cacheControl"] as? String ?? "no-cache"),
                    ("Last-Modified", metadata["lastModified"] as? String ?? ""),
                ], body: [])
        }
        let body: [String: Any] = [
            "id": object["id"] ?? NSNull(), "name": key, "version": object["version"] ?? NSNull(), "bucket_id": bucket,
            "size": metadata["size"] ?? NSNull(), "content_type": metadata["mimetype"] ?? NSNull(),
            "cache_control": metadata["cacheControl"] ?? NSNull(), "etag": metadata["eTag"] ?? NSNull(),
            "metadata": object["user_metadata"] ?? NSNull(), "last_modified": object["updated_at"] ?? NSNull(),
            "created_at": object["created_at"] ?? NSNull(),
        ]
        return Self.jsonReply(200, try JSONSerialization.data(withJSONObject: body))
    }

    private func download(_ bucket: String, _ key: String, headers: HTTPHeaders, _ db: PostgresConnection) throws
        -> Reply
    {
        let vanish = lock.withLock { vanishing.remove(bucket + "/" + key) != nil }
        if vanish {
            if let version = try db.query(
                "DELETE FROM storage.objects WHERE bucket_id = $1 AND name = $2 RETURNING version", [bucket, key]
            ).scalar {
                try? FileManager.default.removeItem(atPath: file(version))
            }
        }
        let object = try row(bucket, key, db)
        guard let version = object["version"] as? String, let data = FileManager.default.contents(atPath: file(version))
        else {
            throw StorageFailure(
                statusCode: "404", error: "Not found", message: "The resource was not found", code: "NoSuchKey")
        }
        let metadata = object["metadata"] as? [String: Any] ?? [:]
        var type = metadata["mimetype"] as? String ?? "application/octet-stream"
        if type.hasPrefix("text/html") { type = "text/plain" }
        var out: [(String, String)] = [
            ("Content-Type", type), ("ETag", metadata["eTag"] as? String ?? ""),
            ("Last-Modified", metadata["lastModified"] as? String ?? ""),
            ("Cache-Control", metadata["cacheControl"] as? String ?? "no-cache"), ("Accept-Ranges", "bytes"),
            ("X-Robots-Tag", "none"),
        ]
        var bytes = [UInt8](data)
        var status = 200
        if let range = headers.first(name: "Range"), range.hasPrefix("bytes=") {
            let parts = range.dropFirst(6).split(separator: "-", omittingEmptySubsequences: false)
            let total = bytes.count
            if parts.count == 2, let start = Int(parts[0]), start < total {
                let end = min(Int(parts[1]) ?? (total - 1), total - 1)
                bytes = Array(bytes[start...end])
                status = 206
                out.append(("Content-Range", "bytes \(start)-\(end)/\(total)"))
            } else {
                return .response(status: 416, headers: [("Content-Range", "bytes */\(total)")], body: [])
            }
        }
        lock.withLock {
            counts.downloads += status == 200 || out.contains { $0.1.hasPrefix("bytes 0-") } ? 1 : 0
            counts.downloadedBytes += Int64(bytes.count)
        }
        return .response(status: status, headers: out, body: bytes)
    }

    /// The characters `isValidKey` accepts on every write path.
    static let keyCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/!-.*'() &$@=;:+,?")

    private func upload(
        _ bucket: String, _ key: String, _ request: TestHTTPHandler.Request, upsert: Bool, _ db: PostgresConnection
    ) throws -> Reply {
        guard key.allSatisfy({ Self.keyCharacters.contains($0) }) else { throw StorageFailure.invalidKey(key) }
        let (bucketLimit, mimeTypes) = try existingBucket(bucket, db)
        let contentType = request.headers.first(name: "Content-Type") ?? "application/octet-stream"
        guard !contentType.hasPrefix("multipart/form-data") else {
            throw StorageFailure(
                statusCode: "400", error: "Invalid", message: "form uploads are not in this test server",
                code: "InvalidRequest")
        }
        let limit = min(bucketLimit ?? .max, options.globalFileSizeLimit)
        if Int64(request.body.count) > limit {
            throw StorageFailure(
                statusCode: "413", error: "Payload too large", message: "The object exceeded the maximum allowed size",
                code: "EntityTooLarge")
        }
        if let mimeTypes, !mimeTypes.isEmpty {
            let allowed = mimeTypes.contains { allowed in
                allowed.hasSuffix("/*") ? contentType.hasPrefix(String(allowed.dropLast())) : allowed == contentType
            }
            guard allowed else {
                throw StorageFailure(
                    statusCode: "415", error: "invalid_mime_type", message: "mime type \(contentType) is not supported",
                    code: "InvalidMimeType")
            }
        }
        let cacheControl = request.headers.first(name: "Cache-Control") ?? "no-cache"
        var userMetadata = "{}"
        if let header = request.headers.first(name: "x-metadata") {
            if let data = Data(base64Encoded: header), (try? JSONSerialization.jsonObject(with: data)) is [String: Any]
            {
                userMetadata = String(decoding: data, as: UTF8.self)
            }
        }
        let existing = try db.query(
            "SELECT version FROM storage.objects WHERE bucket_id = $1 AND name = $2 FOR UPDATE", [bucket, key]
        ).rows.first
        if existing != nil && !upsert {
            throw StorageFailure(
                statusCode: "409", error: "Duplicate", message: "The resource already exists", code: "KeyAlreadyExists")
        }
        let version = UUID().uuidString.lowercased()
        guard FileManager.default.createFile(atPath: file(version), contents: Data(request.body)) else {
            throw StorageFailure(statusCode: "500", error: "internal", message: "cannot store", code: "InternalError")
        }
        let etag = "\"" + Insecure.MD5.hash(data: request.body).map { String(format: "%02x", $0) }.joined() + "\""
        let metadata: [String: Any] = [
            "eTag": etag, "size": request.body.count, "mimetype": contentType, "cacheControl": cacheControl,
            "lastModified": Self.httpDate(Date()), "contentLength": request.body.count, "httpStatusCode": 200,
        ]
        let metadataText = String(decoding: try JSONSerialization.data(withJSONObject: metadata), as: UTF8.self)
        let id = try db.query(
            """
            INSERT INTO storage.objects (bucket_id, name, metadata, user_metadata, version)
            VALUES ($1, $2, $3::jsonb, $4::jsonb, $5)
            ON CONFLICT (bucket_id, name) DO UPDATE SET metadata = EXCLUDED.metadata,
              user_metadata = EXCLUDED.user_metadata, version = EXCLUDED.version
            RETURNING id
            """, [bucket, key, metadataText, userMetadata, version]
        ).scalar
        if let old = existing?[0] { try? FileManager.default.removeItem(atPath: file(old)) }
        lock.withLock {
            counts.uploads += 1
            counts.uploadedBytes += Int64(request.body.count)
        }
        let body = ["Id": id ?? "", "Key": bucket + "/" + key]
        return Self.jsonReply(200, try JSONSerialization.data(withJSONObject: body))
    }

    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}

extension PostgRESTTestServer {
    /// Sends one Storage API request with the service key, as a client would, without HTTP.
    @discardableResult
    public func storageRequest(
        _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8] = []
    ) -> (status: Int, body: String) {
        var fields = HTTPHeaders()
        for (name, value) in headers { fields.add(name: name, value: value) }
        let request = TestHTTPHandler.Request(method: method, uri: path, headers: fields, body: body)
        let reply = storage.handle(request, path: path, query: [], anon: false) { body in
            try self.withConnection(body)
        }
        guard case .response(let status, _, let bytes) = reply else { return (0, "") }
        return (status, String(decoding: bytes, as: UTF8.self))
    }

    /// `POST /bucket`.
    public func createBucket(
        _ name: String, public isPublic: Bool = false, fileSizeLimit: Int64? = nil, allowedMimeTypes: [String]? = nil
    ) throws {
        var object: [String: Any] = ["name": name, "public": isPublic]
        if let fileSizeLimit { object["file_size_limit"] = fileSizeLimit }
        if let allowedMimeTypes { object["allowed_mime_types"] = allowedMimeTypes }
        let reply = storageRequest(
            .POST, "/bucket", headers: [("Content-Type", "application/json")],
            body: Array(try JSONSerialization.data(withJSONObject: object)))
        guard reply.status == 200 else {
            throw TestEnvironmentError(description: "create bucket \(name): \(reply.body)")
        }
    }

    /// Uploads through the API (raw body, upserting), with its checks.
    public func upload(
        _ bucket: String, _ key: String, _ bytes: [UInt8], contentType: String = "application/octet-stream",
        cacheControl: String? = nil, userMetadata: String? = nil
    ) throws {
        var headers = [("Content-Type", contentType), ("x-upsert", "true")]
        if let cacheControl { headers.append(("Cache-Control", cacheControl)) }
        if let userMetadata { headers.append(("x-metadata", Data(userMetadata.utf8).base64EncodedString())) }
        let path =
            "/object/"
            + ([bucket] + key.split(separator: "/", omittingEmptySubsequences: false).map(String.init))
            .map { $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0 }.joined(separator: "/")
        let reply = storageRequest(.POST, path, headers: headers, body: bytes)
        guard reply.status == 200 else { throw TestEnvironmentError(description: "upload \(key): \(reply.body)") }
    }

    /// An object made by SQL, as apps that insert into storage.objects do: any name, no API checks.
    public func insertObject(
        _ bucket: String, _ key: String, _ bytes: [UInt8], contentType: String = "application/octet-stream",
        on connection: PostgresConnection
    ) throws {
        let version = UUID().uuidString.lowercased()
        _ = FileManager.default.createFile(atPath: storage.root + "/" + version, contents: Data(bytes))
        let etag = "\"" + Insecure.MD5.hash(data: bytes).map { String(format: "%02x", $0) }.joined() + "\""
        let metadata: [String: Any] = [
            "eTag": etag, "size": bytes.count, "mimetype": contentType, "cacheControl": "no-cache",
            "lastModified": StorageTestAPI.httpDate(Date()), "contentLength": bytes.count, "httpStatusCode": 200,
        ]
        _ = try connection.query(
            "INSERT INTO storage.objects (bucket_id, name, metadata, user_metadata, version) VALUES ($1, $2, $3::jsonb, '{}', $4)",
            [
                bucket, key, String(decoding: try JSONSerialization.data(withJSONObject: metadata), as: UTF8.self),
                version,
            ])
    }

    /// Every object as `bucket/name` -> size, type, cache control, user metadata and SHA-256 of
    /// the bytes on disk: what a restore must reproduce.
    public func storageContents(_ connection: PostgresConnection) throws -> [String: String] {
        var result: [String: String] = [:]
        let rows = try connection.query(
            """
            SELECT bucket_id || '/' || name, metadata->>'size', metadata->>'mimetype', metadata->>'cacheControl',
                   coalesce(user_metadata::text, '{}'), version FROM storage.objects
            """
        ).rows
        for row in rows {
            let bytes = FileManager.default.contents(atPath: storage.root + "/" + (row[5] ?? "")) ?? Data()
            let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            result[row[0]!] = [row[1], row[2], row[3], row[4]].map { $0 ?? "-" }.joined(separator: "|") + "|" + digest
        }
        return result
    }

    /// Buckets as `id|name|public|limit|types`.
    public func storageBuckets(_ connection: PostgresConnection) throws -> [String] {
        try connection.query(
            "SELECT id || '|' || name || '|' || public || '|' || coalesce(file_size_limit::text, '-') || '|' || coalesce(allowed_mime_types::text, '-') FROM storage.buckets ORDER BY id"
        ).rows.map { $0[0] ?? "" }
    }
}
