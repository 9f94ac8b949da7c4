import Foundation
import NIOHTTP1
import SupabackupKit

/// A PostgREST-compatible server for tests, backed by the real test PostgreSQL, implementing
/// the subset in shared/postgrest-subset.md: OpenAPI root, select/order/limit/offset, filters
/// and `or=(...)` trees with quoting, a silent max-rows cap, Content-Range, upserts with
/// `columns`/`on_conflict`, RPC calls, PostgREST-shaped errors, the gateway's 401s, and faults.
public final class PostgRESTTestServer: @unchecked Sendable {
    // @unchecked: configuration is immutable; counters and the pool are guarded by `lock`.
    public enum Fault: Sendable {
        case status503
        case drop
        /// 401 with an expired-JWT body, as when a key is revoked mid-backup.
        case unauthorized
    }

    public struct Options: Sendable {
        public var serviceKey = "test-service-key"
        public var anonKey = "test-anon-key"
        /// db-max-rows: every read is capped to this many rows, silently.
        public var maxRows: Int? = 1000
        public var exposedSchemas = ["public"]
        /// PostgREST v14.8+ writes int32/int64 for integer types.
        public var integerFormatsAsInt32 = false
        /// Inject `fault` on every Nth request after `faultAfter` requests (0: never).
        public var faultEvery = 0
        public var faultAfter = 0
        public var fault = Fault.status503
        /// Stop injecting after this many faults (nil: forever).
        public var faultLimit: Int?
        public var delay: TimeInterval = 0
        /// True: behind a gateway like Supabase's (hosted, `supabase start`, self-hosted), REST
        /// at `/rest/v1`, Auth at `/auth/v1`, the gateway's 404 elsewhere. False: a bare
        /// PostgREST serving its API at `/`, with no Auth.
        public var gateway = true
        /// The Storage API at `/storage/v1` (behind the gateway only).
        public var storage = StorageTestAPI.Options()
        /// Where the Storage API keeps object bytes; nil: a temporary folder removed on stop.
        public var storageRoot: String?
        public init() {}
    }

    public let options: Options
    private let databaseURL: String
    private var server: TestHTTPServer!
    private let lock = NSLock()
    private var idle: [PostgresConnection] = []
    private var requests = 0
    private var faults = 0
    /// The project's Storage API (rows in the test database, bytes under its root).
    public let storage: StorageTestAPI
    private let ownsStorageRoot: Bool

    /// The project URL users put in SUPABASE_URL: `http://127.0.0.1:PORT`.
    public var url: String { "http://127.0.0.1:\(server.port)" }
    /// Where PostgREST itself answers: `<url>/rest/v1` behind the gateway, else `<url>`.
    public var restRoot: String { options.gateway ? url + "/rest/v1" : url }
    public var requestCount: Int { lock.withLock { requests } }
    public var faultCount: Int { lock.withLock { faults } }

    public init(databaseURL: String, options: Options = Options()) throws {
        self.databaseURL = databaseURL
        self.options = options
        ownsStorageRoot = options.storageRoot == nil
        storage = StorageTestAPI(
            root: options.storageRoot ?? NSTemporaryDirectory() + "storage-test-api-" + UUID().uuidString,
            options: options.storage)
        server = try TestHTTPServer { [unowned self] request in self.handle(request) }
    }

    deinit { stop() }

    public func stop() {
        server?.stop()
        if ownsStorageRoot { try? FileManager.default.removeItem(atPath: storage.root) }
        lock.withLock {
            for connection in idle { connection.close() }
            idle.removeAll()
        }
    }

    // MARK: - Requests

    struct Failure: Error {
        var status: Int
        var body: [String: String?]
    }

    private func handle(_ request: TestHTTPHandler.Request) -> TestHTTPHandler.Reply {
        let (number, injected) = lock.withLock { () -> (Int, Bool) in
            requests += 1
            let n = requests
            let due =
                options.faultEvery > 0 && n > options.faultAfter && (n - options.faultAfter) % options.faultEvery == 0
                && (options.faultLimit.map { faults < $0 } ?? true)
            if due { faults += 1 }
            return (n, due)
        }
        _ = number
        if options.delay > 0 { Thread.sleep(forTimeInterval: options.delay) }
        guard let apikey = request.headers.first(name: "apikey") else {
            return json(
                401,
                [
                    "message": "No API key found in request",
                    "hint": "No `apikey` request header or url param was found.",
                ])
        }
        guard apikey == options.serviceKey || apikey == options.anonKey else {
            return json(
                401,
                ["message": "Invalid API key", "hint": "Double check your Supabase `anon` or `service_role` API key."])
        }
        if injected {
            switch options.fault {
            case .drop: return .drop
            case .status503:
                return json(
                    503,
                    [
                        "code": "PGRST002", "details": nil, "hint": nil,
                        "message": "Could not query the database for the schema cache. Retrying.",
                    ])
            case .unauthorized:
                return json(
                    401, ["code": "PGRST303", "details": nil, "hint": nil, "message": "JWT expired"],
                    headers: [("WWW-Authenticate", "Bearer error=\"invalid_token\", error_description=\"JWT expired\"")]
                )
            }
        }
        let anon = apikey == options.anonKey
        let (path, query) = Self.split(request.uri)
        if path.hasPrefix("/storage/v1/") && options.gateway {
            // Storage reads only Authorization; the gateway puts the service role there for a
            // secret key sent without one (or as `Bearer sb_...`).
            var role = apikey
            if let authorization = request.headers.first(name: "Authorization") {
                let token = authorization.hasPrefix("Bearer ") ? String(authorization.dropFirst(7)) : authorization
                if token.hasPrefix("sb_") {
                    // The gateway takes a Bearer sb_ value only when it is the apikey itself.
                    guard token == apikey else {
                        return json(
                            401,
                            [
                                "message": "Invalid API key",
                                "hint": "The Authorization header does not match the apikey.",
                            ])
                    }
                } else {
                    guard token == options.serviceKey || token == options.anonKey else {
                        return StorageTestAPI.reply(
                            .init(
                                statusCode: "403", error: "Unauthorized", message: "Invalid Compact JWS",
                                code: "AccessDenied"))
                    }
                    role = token
                }
            }
            return storage.handle(
                request, path: String(path.dropFirst("/storage/v1".count)), query: query,
                anon: role != options.serviceKey, withConnection: { body in try self.withConnection(body) })
        }
        if path.hasPrefix("/auth/v1/") && options.gateway {
            guard !anon else {
                return json(403, ["code": "403", "error_code": "not_admin", "msg": "User not allowed"])
            }
            do {
                return try withConnection { try authAdmin(request.method, path, query: query, body: request.body, $0) }
            } catch let error as PostgresError {
                return json(422, ["code": "422", "msg": error.message])
            } catch {
                return json(500, ["msg": "\(error)"])
            }
        }
        let route: String
        if !options.gateway {
            // A bare PostgREST: one path segment names a relation; anything deeper is PGRST125.
            guard path.split(separator: "/").count <= 1 || path.hasPrefix("/rpc/") else {
                return json(
                    404,
                    [
                        "code": "PGRST125", "details": nil, "hint": nil,
                        "message": "Invalid path specified in request URL",
                    ])
            }
            route = path
        } else if path == "/rest/v1" || path.hasPrefix("/rest/v1/") {
            route = String(path.dropFirst("/rest/v1".count))
        } else {
            return json(404, ["message": "no Route matched with those values"])
        }
        let write = request.method == .POST
        let schema = request.headers.first(name: write ? "Content-Profile" : "Accept-Profile") ?? "public"
        guard options.exposedSchemas.contains(schema) else {
            return json(406, ["code": "PGRST106", "details": nil, "hint": nil, "message": "Invalid schema: \(schema)"])
        }
        do {
            return try withConnection { connection in
                try connection.execute("BEGIN")
                do {
                    if anon {
                        try connection.execute(
                            "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN SET LOCAL ROLE anon; END IF; END $$"
                        )
                    }
                    let reply: TestHTTPHandler.Reply
                    if route == "" || route == "/" {
                        guard request.method == .GET else {
                            throw Failure(status: 405, body: ["message": "method not allowed"])
                        }
                        if anon { throw Failure(status: 401, body: ["message": "Invalid API key"]) }
                        reply = .response(
                            status: 200, headers: [("Content-Type", "application/openapi+json; charset=utf-8")],
                            body: Array(try openAPI(schema, connection).utf8))
                    } else if route.hasPrefix("/rpc/") {
                        reply = try rpc(
                            String(route.dropFirst(5)).removingPercentEncoding ?? "", schema: schema,
                            body: request.body, connection)
                    } else {
                        let table = String(route.dropFirst()).removingPercentEncoding ?? ""
                        guard try relationExists(schema, table, connection) else {
                            throw Failure(
                                status: 404,
                                body: [
                                    "code": "PGRST205", "details": nil,
                                    "hint": nil,
                                    "message": "Could not find the table '\(schema).\(table)' in the schema cache",
                                ])
                        }
                        if write {
                            reply = try upsert(
                                schema, table, query: query, headers: request.headers, body: request.body, connection)
                        } else {
                            reply = try read(schema, table, query: query, headers: request.headers, connection)
                        }
                    }
                    try connection.execute("COMMIT")
                    return reply
                } catch {
                    try? connection.execute("ROLLBACK")
                    throw error
                }
            }
        } catch let failure as Failure {
            return json(failure.status, failure.body)
        } catch let error as PostgresError {
            return json(
                Self.status(for: error, anon: anon),
                [
                    "code": error.sqlState, "details": error.detail, "hint": error.hint, "message": error.message,
                ])
        } catch {
            return json(500, ["message": "\(error)"])
        }
    }

    static func status(for error: PostgresError, anon: Bool) -> Int {
        switch error.sqlState ?? "" {
        case "23505", "23503": return 409
        case "42501": return anon ? 401 : 403
        case "42P01": return 404
        case "57014", "21000": return 500
        case let state where state.hasPrefix("08") || state.hasPrefix("57P"): return 503
        default: return 400
        }
    }

    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let connection =
            try lock.withLock { idle.popLast() }
            ?? {
                let connection = try PostgresConnection(conninfo: databaseURL)
                try connection.execute(
                    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET client_min_messages = warning"
                )
                return connection
            }()
        do {
            let result = try body(connection)
            lock.withLock { idle.append(connection) }
            return result
        } catch let error as PostgresError where error.isConnectionFailure {
            connection.close()
            throw error
        } catch {
            lock.withLock { idle.append(connection) }
            throw error
        }
    }

    func json(_ status: Int, _ object: [String: String?], headers: [(String, String)] = [])
        -> TestHTTPHandler.Reply
    {
        // PostgREST writes compact JSON with sorted keys.
        let body =
            "{"
            + object.keys.sorted().map { key in
                SQL.jsonString(key) + ":" + (object[key]!.map { SQL.jsonString($0) } ?? "null")
            }.joined(separator: ",") + "}"
        return .response(
            status: status, headers: [("Content-Type", "application/json; charset=utf-8")] + headers,
            body: Array(body.utf8))
    }

    static func split(_ uri: String) -> (String, [(String, String)]) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, []) }
        let path = String(uri[..<mark])
        var query: [(String, String)] = []
        // `;` separates parameters like `&`; `+` is a space.
        for part in uri[uri.index(after: mark)...].split(whereSeparator: { $0 == "&" || $0 == ";" }) {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
            }
            query.append((decode(pieces[0]), pieces.count > 1 ? decode(pieces[1]) : ""))
        }
        return (path, query)
    }

    private func relationExists(_ schema: String, _ table: String, _ connection: PostgresConnection) throws -> Bool {
        try connection.query(
            """
            SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
            """, [schema, table]
        ).rows.count == 1
    }

    // MARK: - Reading

    private func read(
        _ schema: String, _ table: String, query: [(String, String)], headers: HTTPHeaders,
        _ connection: PostgresConnection
    ) throws -> TestHTTPHandler.Reply {
        var select = "*"
        var order: [String] = []
        var limit: Int?
        var offset = 0
        var conditions: [String] = []
        var parameters: [String?] = []
        for (key, value) in query {
            switch key {
            case "select": select = value
            case "order": order = try value.split(separator: ",").map { try Self.orderItem(String($0)) }
            case "limit": limit = Int(value)
            case "offset": offset = Int(value) ?? 0
            case "or", "and":
                var parser = LogicParser(text: value)
                conditions.append(try parser.tree(key, parameters: &parameters))
            case "not.or", "not.and":
                var parser = LogicParser(text: value)
                conditions.append("NOT " + (try parser.tree(String(key.dropFirst(4)), parameters: &parameters)))
            default:
                conditions.append(
                    try LogicParser.condition(field: key, operation: value, topLevel: true, parameters: &parameters))
            }
        }
        if let cap = options.maxRows { limit = min(limit ?? cap, cap) }
        let columns = try Self.selectList(select)
        var sql = "SELECT \(columns) FROM \(TableName(schema: schema, name: table).quoted)"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        if !order.isEmpty { sql += " ORDER BY " + order.joined(separator: ", ") }
        if let limit { sql += " LIMIT \(limit)" }
        if offset > 0 { sql += " OFFSET \(offset)" }
        let result = try connection.query(
            "SELECT coalesce(json_agg(_postgrest_t), '[]')::text, count(*) FROM (\(sql)) _postgrest_t", parameters)
        let body = result.rows.first?[0] ?? "[]"
        let count = Int(result.rows.first?[1] ?? "0") ?? 0
        var total = "*"
        var status = 200
        if (headers.first(name: "Prefer") ?? "").contains("count=exact") {
            var countSQL = "SELECT count(*) FROM \(TableName(schema: schema, name: table).quoted)"
            if !conditions.isEmpty { countSQL += " WHERE " + conditions.joined(separator: " AND ") }
            let exact = Int(try connection.query(countSQL, parameters).scalar ?? "0") ?? 0
            total = String(exact)
            if count < exact { status = 206 }
        }
        let range = count == 0 ? "*/\(total)" : "\(offset)-\(offset + count - 1)/\(total)"
        return .response(
            status: status, headers: [("Content-Type", "application/json; charset=utf-8"), ("Content-Range", range)],
            body: Array(body.utf8))
    }

    static func selectList(_ select: String) throws -> String {
        if select == "*" || select.isEmpty { return "*" }
        var items: [String] = []
        for raw in splitTopLevel(select) {
            var item = raw
            var cast: String?
            if let range = item.range(of: "::", options: .backwards), !item[range.upperBound...].contains("\"") {
                cast = String(item[range.upperBound...])
                item = String(item[..<range.lowerBound])
            }
            let name = try unquoteField(item)
            if let cast {
                guard cast.range(of: "^[a-z_][a-z0-9_ ]*(\\[\\])?$", options: .regularExpression) != nil else {
                    throw Failure(status: 400, body: ["code": "PGRST100", "message": "invalid cast \(cast)"])
                }
                items.append("\(SQL.quoteIdentifier(name))::\(cast) AS \(SQL.quoteIdentifier(name))")
            } else if name == "*" {
                items.append("*")
            } else {
                items.append(SQL.quoteIdentifier(name))
            }
        }
        return items.joined(separator: ", ")
    }

    static func orderItem(_ text: String) throws -> String {
        var parts = splitOutsideQuotes(text, by: ".")
        guard let first = parts.first else {
            throw Failure(status: 400, body: ["code": "PGRST100", "message": "bad order"])
        }
        parts.removeFirst()
        var sql = SQL.quoteIdentifier(try unquoteField(first))
        for modifier in parts {
            switch modifier {
            case "asc": sql += " ASC"
            case "desc": sql += " DESC"
            case "nullsfirst": sql += " NULLS FIRST"
            case "nullslast": sql += " NULLS LAST"
            default:
                throw Failure(status: 400, body: ["code": "PGRST100", "message": "bad order modifier \(modifier)"])
            }
        }
        return sql
    }

    static func unquoteField(_ text: String) throws -> String {
        guard text.hasPrefix("\"") else { return text }
        guard text.count >= 2, text.hasSuffix("\"") else {
            throw Failure(status: 400, body: ["code": "PGRST100", "message": "unterminated quote in \(text)"])
        }
        var out = ""
        var escaped = false
        for c in text.dropFirst().dropLast() {
            if escaped {
                out.append(c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        return out
    }

    static func splitTopLevel(_ text: String) -> [String] {
        splitOutsideQuotes(text, by: ",")
    }

    static func splitOutsideQuotes(_ text: String, by separator: Character) -> [String] {
        var parts: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for c in text {
            if escaped {
                current.append(c)
                escaped = false
                continue
            }
            if quoted && c == "\\" {
                current.append(c)
                escaped = true
                continue
            }
            if c == "\"" { quoted.toggle() }
            if c == separator && !quoted {
                parts.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        parts.append(current)
        return parts
    }

    // MARK: - Writing

    private func upsert(
        _ schema: String, _ table: String, query: [(String, String)], headers: HTTPHeaders, body: [UInt8],
        _ connection: PostgresConnection
    ) throws -> TestHTTPHandler.Reply {
        let prefer = headers[canonicalForm: "Prefer"].map(String.init).joined(separator: ",")
        let name = TableName(schema: schema, name: table)
        let types = Dictionary(
            uniqueKeysWithValues: try connection.query(
                """
                SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
                WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
                """, [name.quoted]
            ).rows.map { ($0[0]!, $0[1]!) })
        var columns: [String]
        if let list = query.first(where: { $0.0 == "columns" })?.1 {
            columns = try Self.splitTopLevel(list).map(Self.unquoteField)
        } else {
            guard let objects = try? JSONSerialization.jsonObject(with: Data(body)) as? [[String: Any]],
                let first = objects.first
            else {
                throw Failure(
                    status: 400,
                    body: ["code": "PGRST102", "details": nil, "hint": nil, "message": "Empty or invalid json"])
            }
            columns = first.keys.sorted()
        }
        for column in columns where types[column] == nil {
            throw Failure(
                status: 400,
                body: [
                    "code": "PGRST204", "details": nil, "hint": nil,
                    "message": "Could not find the '\(column)' column of '\(table)' in the schema cache",
                ])
        }
        let definition = columns.map { "\(SQL.quoteIdentifier($0)) \(types[$0]!)" }.joined(separator: ", ")
        let list = columns.map(SQL.quoteIdentifier).joined(separator: ", ")
        var sql =
            "INSERT INTO \(name.quoted) AS t (\(list)) SELECT \(list) FROM json_to_recordset($1::json) AS x(\(definition))"
        if prefer.contains("resolution=") {
            var conflict: [String]
            if let list = query.first(where: { $0.0 == "on_conflict" })?.1 {
                conflict = try Self.splitTopLevel(list).map(Self.unquoteField)
            } else {
                conflict = try connection.query(
                    """
                    SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                    WHERE i.indrelid = $1::regclass AND i.indisprimary
                    """, [name.quoted]
                ).rows.map { $0[0]! }
            }
            sql += " ON CONFLICT (" + conflict.map(SQL.quoteIdentifier).joined(separator: ", ") + ")"
            if prefer.contains("resolution=ignore-duplicates") {
                sql += " DO NOTHING"
            } else {
                sql +=
                    " DO UPDATE SET "
                    + columns.map { "\(SQL.quoteIdentifier($0)) = EXCLUDED.\(SQL.quoteIdentifier($0))" }
                    .joined(separator: ", ")
            }
        }
        let payload = String(decoding: body, as: UTF8.self)
        // Partitioned tables have no xmax to tell inserts from updates: report them as inserted.
        let partitioned =
            try connection.query("SELECT relkind = 'p' FROM pg_class WHERE oid = $1::regclass", [name.quoted]).scalar
            == "t"
        let inserted =
            try connection.query(
                "WITH w AS (\(sql) RETURNING \(partitioned ? "true" : "(t.xmax = 0)") AS inserted) SELECT count(*) FILTER (WHERE inserted) FROM w",
                [payload.hasPrefix("[") ? payload : "[" + payload + "]"]
            ).scalar ?? "0"
        let status = prefer.contains("resolution=merge-duplicates") && inserted == "0" ? 200 : 201
        return .response(status: status, headers: [], body: [])
    }

    private func rpc(_ function: String, schema: String, body: [UInt8], _ connection: PostgresConnection) throws
        -> TestHTTPHandler.Reply
    {
        let exists =
            try connection.query(
                "SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = $2",
                [schema, function]
            ).rows.count > 0
        guard exists else {
            throw Failure(
                status: 404,
                body: [
                    "code": "PGRST202", "details": nil, "hint": nil,
                    "message": "Could not find the function \(schema).\(function) in the schema cache",
                ])
        }
        let arguments =
            (try? JSONSerialization.jsonObject(with: Data(body.isEmpty ? Array("{}".utf8) : body)) as? [String: Any])
            ?? [:]
        let names = arguments.keys.sorted()
        let values: [String?] = names.map { name in
            switch arguments[name] {
            case let string as String: return string
            case let number as NSNumber: return number.stringValue
            case is NSNull, nil: return nil
            default: return "\(arguments[name]!)"
            }
        }
        let call = names.enumerated().map { "\(SQL.quoteIdentifier($1)) => $\($0 + 1)" }.joined(separator: ", ")
        let result = try connection.query(
            "SELECT to_json(\(SQL.quoteIdentifier(schema)).\(SQL.quoteIdentifier(function))(\(call)))::text", values)
        return .response(
            status: 200, headers: [("Content-Type", "application/json")], body: Array((result.scalar ?? "null").utf8))
    }

    // MARK: - Auth admin API

    /// `GET /auth/v1/admin/users?page=&per_page=`, `GET .../users/{id}`, `POST .../users`, like
    /// Supabase Auth: users with their identities, never a password hash.
    private func authAdmin(
        _ method: HTTPMethod, _ path: String, query: [(String, String)], body: [UInt8], _ connection: PostgresConnection
    ) throws -> TestHTTPHandler.Reply {
        let userJSON = """
            SELECT json_build_object('id', u.id, 'aud', u.aud, 'role', u.role, 'email', u.email, 'phone', coalesce(u.phone, ''),
              'email_confirmed_at', u.email_confirmed_at, 'phone_confirmed_at', u.phone_confirmed_at, 'confirmed_at', u.confirmed_at,
              'last_sign_in_at', u.last_sign_in_at, 'app_metadata', u.raw_app_meta_data, 'user_metadata', u.raw_user_meta_data,
              'identities', (SELECT coalesce(json_agg(json_build_object('identity_id', i.id, 'id', i.provider_id, 'user_id', i.user_id,
                  'identity_data', i.identity_data, 'provider', i.provider, 'last_sign_in_at', i.last_sign_in_at,
                  'created_at', i.created_at, 'updated_at', i.updated_at, 'email', i.email) ORDER BY i.id), '[]')
                FROM auth.identities i WHERE i.user_id = u.id),
              'created_at', u.created_at, 'updated_at', u.updated_at, 'is_anonymous', u.is_anonymous)
            FROM auth.users u
            """
        let parts = path.split(separator: "/").map(String.init)  // auth, v1, admin, users, [id]
        guard parts.count >= 4, parts[2] == "admin", parts[3] == "users" else {
            return json(404, ["code": "404", "msg": "not found"])
        }
        if method == .GET && parts.count == 5 {
            guard let user = try connection.query(userJSON + " WHERE u.id::text = $1", [parts[4]]).scalar else {
                return json(404, ["code": "404", "error_code": "user_not_found", "msg": "User not found"])
            }
            return .response(status: 200, headers: [("Content-Type", "application/json")], body: Array(user.utf8))
        }
        if method == .GET {
            let page = max(1, Int(query.first { $0.0 == "page" }?.1 ?? "1") ?? 1)
            let perPage = min(1000, max(1, Int(query.first { $0.0 == "per_page" }?.1 ?? "50") ?? 50))
            let users =
                try connection.query(
                    "SELECT coalesce(json_agg(x.j), '[]')::text FROM (\(userJSON) ORDER BY u.created_at, u.id LIMIT \(perPage) OFFSET \((page - 1) * perPage)) x(j)"
                ).scalar ?? "[]"
            return .response(
                status: 200, headers: [("Content-Type", "application/json")],
                body: Array("{\"users\":\(users),\"aud\":\"authenticated\"}".utf8))
        }
        guard method == .POST, parts.count == 4,
            let user = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
        else { return json(400, ["code": "400", "msg": "bad request"]) }
        func text(_ key: String) -> String? { user[key] as? String }
        func jsonText(_ key: String) -> String? {
            guard let value = user[key], let data = try? JSONSerialization.data(withJSONObject: value) else {
                return nil
            }
            return String(decoding: data, as: UTF8.self)
        }
        let id = text("id") ?? UUID().uuidString.lowercased()
        try connection.execute("BEGIN")
        do {
            _ = try connection.query(
                """
                INSERT INTO auth.users (instance_id, id, aud, role, email, phone, encrypted_password, email_confirmed_at,
                  phone_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
                VALUES ('00000000-0000-0000-0000-000000000000', $1::uuid, 'authenticated', 'authenticated', $2, $3, $4,
                  CASE WHEN $5::boolean THEN now() END, CASE WHEN $6::boolean THEN now() END,
                  coalesce($7::jsonb, '{"provider": "email", "providers": ["email"]}'), coalesce($8::jsonb, '{}'), now(), now())
                """,
                [
                    id, text("email"), text("phone"), text("password_hash"),
                    String(user["email_confirm"] as? Bool ?? false),
                    String(user["phone_confirm"] as? Bool ?? false), jsonText("app_metadata"),
                    jsonText("user_metadata"),
                ])
            if let email = text("email") {
                _ = try connection.query(
                    """
                    INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
                    VALUES ($1::text, $1::uuid, jsonb_build_object('sub', $1::text, 'email', $2::text), 'email', now(), now())
                    """, [id, email])
            }
            try connection.execute("COMMIT")
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
        let created = try connection.query(userJSON + " WHERE u.id::text = $1", [id]).scalar ?? "{}"
        return .response(status: 200, headers: [("Content-Type", "application/json")], body: Array(created.utf8))
    }

    // MARK: - OpenAPI

    private func openAPI(_ schema: String, _ connection: PostgresConnection) throws -> String {
        try connection.execute("SET LOCAL search_path = pg_catalog")
        let relations = try connection.query(
            """
            SELECT c.oid::text, c.relname, c.relkind::text, pg_relation_is_updatable(c.oid::regclass, true) & 8 = 8
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition ORDER BY c.relname
            """, [schema]
        ).rows
        var paths: [String] = []
        var definitions: [String] = []
        for relation in relations {
            let (oid, name, kind) = (relation[0]!, relation[1]!, relation[2]!)
            // PostgREST lists an insertable view exactly like a table.
            let operations =
                kind == "r" || kind == "p" || relation[3] == "t"
                ? "{\"get\":{},\"post\":{},\"patch\":{},\"delete\":{}}" : "{\"get\":{}}"
            paths.append(SQL.jsonString("/" + name) + ":" + operations)
            let columns = try connection.query(
                """
                SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  CASE WHEN a.attgenerated = '' AND a.attidentity = '' AND d.adbin IS NOT NULL
                       AND pg_get_expr(d.adbin, d.adrelid) NOT LIKE 'nextval(%' THEN pg_get_expr(d.adbin, d.adrelid) END,
                  EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = a.attrelid AND k.contype = 'p' AND a.attnum = ANY(k.conkey))
                  OR EXISTS (SELECT 1 FROM pg_rewrite w JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
                             JOIN pg_constraint k ON k.conrelid = d.refobjid AND k.contype = 'p'
                             JOIN pg_attribute ba ON ba.attrelid = k.conrelid AND ba.attnum = ANY(k.conkey) AND ba.attnum = d.refobjsubid
                             WHERE w.ev_class = a.attrelid AND ba.attname = a.attname),
                  (SELECT rc.relname || '.' || ra.attname FROM pg_constraint f
                     JOIN pg_class rc ON rc.oid = f.confrelid
                     JOIN pg_attribute ra ON ra.attrelid = f.confrelid AND ra.attnum = f.confkey[1]
                   WHERE f.conrelid = a.attrelid AND f.contype = 'f' AND f.conkey = ARRAY[a.attnum]
                     AND rc.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = a.attrelid) LIMIT 1),
                  t.typcategory::text, coalesce(et.typname, '')
                FROM pg_attribute a
                JOIN pg_type t ON t.oid = a.atttypid
                LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
                LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
                """, [oid]
            ).rows
            var required: [String] = []
            var properties: [String] = []
            for column in columns {
                let columnName = column[0]!
                var format = column[1]!
                if column[2] == "t" { required.append(SQL.jsonString(columnName)) }
                if options.integerFormatsAsInt32 {
                    format = ["smallint": "int32", "integer": "int32", "bigint": "int64"][format] ?? format
                }
                var fields: [String] = []
                var notes: [String] = []
                if column[4] == "t" { notes.append("This is a Primary Key.<pk/>") }
                if let reference = column[5] {
                    let parts = reference.split(separator: ".", maxSplits: 1).map(String.init)
                    notes.append(
                        "This is a Foreign Key to `\(reference)`.<fk table='\(parts[0])' column='\(parts[1])'/>")
                }
                if let defaultValue = column[3] { fields.append("\"default\":" + SQL.jsonString(defaultValue)) }
                if !notes.isEmpty {
                    fields.append("\"description\":" + SQL.jsonString("Note:\n" + notes.joined(separator: "\n")))
                }
                fields.append("\"format\":" + SQL.jsonString(format))
                let base = column[1]!
                let category = column[6]!
                if base == "json" || base == "jsonb" {
                    // PostgREST gives json and jsonb no type.
                } else if category == "A" {
                    fields.append("\"items\":{\"type\":\"string\"},\"type\":\"array\"")
                } else if category == "N" {
                    let integer = ["smallint", "integer", "bigint"].contains(base)
                    fields.append("\"type\":\"\(integer ? "integer" : "number")\"")
                } else if category == "B" {
                    fields.append("\"type\":\"boolean\"")
                } else {
                    fields.append("\"type\":\"string\"")
                }
                properties.append(SQL.jsonString(columnName) + ":{" + fields.joined(separator: ",") + "}")
            }
            definitions.append(
                SQL.jsonString(name) + ":{\"required\":[" + required.joined(separator: ",") + "],\"properties\":{"
                    + properties.joined(separator: ",") + "},\"type\":\"object\"}")
        }
        return "{\"swagger\":\"2.0\",\"info\":{\"title\":\"test\",\"version\":\"14\"},\"paths\":{\"/\":{\"get\":{}},"
            + paths.joined(separator: ",") + "},\"definitions\":{" + definitions.joined(separator: ",") + "}}"
    }
}

/// Parses PostgREST logic trees (`(a.gt.1,and(a.eq.1,b.gt."x,y"))`) into SQL with parameters.
struct LogicParser {
    private var chars: [Character]
    private var index = 0

    init(text: String) {
        chars = Array(text)
    }

    mutating func tree(_ operation: String, parameters: inout [String?]) throws -> String {
        guard peek() == "(" else { throw bad("expected ( after \(operation)") }
        index += 1
        var terms: [String] = []
        while true {
            terms.append(try term(parameters: &parameters))
            guard let c = peek() else { throw bad("unterminated \(operation)") }
            index += 1
            if c == ")" { break }
            guard c == "," else { throw bad("expected , or )") }
        }
        return "(" + terms.joined(separator: operation == "or" ? " OR " : " AND ") + ")"
    }

    private mutating func term(parameters: inout [String?]) throws -> String {
        var negate = false
        if startsWith("not.") {
            negate = true
            index += 4
        }
        for logic in ["and", "or"] where startsWith(logic + "(") {
            index += logic.count
            let sql = try tree(logic, parameters: &parameters)
            return negate ? "NOT " + sql : sql
        }
        // field.op.value
        let field = try readField()
        guard peek() == "." else { throw bad("expected . after field") }
        index += 1
        var operation = ""
        while let c = peek(), c != "." {
            operation.append(c)
            index += 1
        }
        index += 1
        let value: String
        if operation == "in" {
            guard peek() == "(" else { throw bad("in needs a list") }
            var depth = 0
            var text = ""
            var quoted = false
            while let c = peek() {
                index += 1
                text.append(c)
                if c == "\"" { quoted.toggle() }
                if !quoted && c == "(" { depth += 1 }
                if !quoted && c == ")" {
                    depth -= 1
                    if depth == 0 { break }
                }
            }
            value = text
        } else {
            value = try readValue()
        }
        let sql = try Self.condition(
            field: field, operation: (negate ? "not." : "") + operation + "." + value, topLevel: false,
            parameters: &parameters)
        return sql
    }

    private mutating func readField() throws -> String {
        if peek() == "\"" { return try readQuoted() }
        var text = ""
        while let c = peek(), c != "." {
            text.append(c)
            index += 1
        }
        return text
    }

    private mutating func readValue() throws -> String {
        if peek() == "\"" { return "\"" + (try readQuoted()).replacingOccurrences(of: "\"", with: "\u{0}") + "\"" }
        var text = ""
        if peek() == "{" {
            while let c = peek() {
                text.append(c)
                index += 1
                if c == "}" { break }
            }
            return text
        }
        while let c = peek(), c != ",", c != ")" {
            text.append(c)
            index += 1
        }
        return text
    }

    private mutating func readQuoted() throws -> String {
        index += 1
        var text = ""
        while let c = peek() {
            index += 1
            if c == "\\" {
                if let next = peek() {
                    text.append(next)
                    index += 1
                }
                continue
            }
            if c == "\"" {
                // A quoted value must be followed directly by , or ) (or . after a field).
                return text
            }
            text.append(c)
        }
        throw bad("unterminated quote")
    }

    private func peek() -> Character? { index < chars.count ? chars[index] : nil }

    private func startsWith(_ prefix: String) -> Bool {
        let p = Array(prefix)
        return index + p.count <= chars.count && Array(chars[index..<(index + p.count)]) == p
    }

    private func bad(_ message: String) -> Error {
        PostgRESTTestServer.Failure(
            status: 400,
            body: [
                "code": "PGRST100", "details": nil, "hint": nil,
                "message": "\"failed to parse logic tree\" (\(message))",
            ])
    }

    /// `field` and `op.value` (optionally `not.op.value`) as SQL. At the top level quotes are
    /// literal characters; inside trees a quoted value was unwrapped by the parser (marked).
    static func condition(field: String, operation: String, topLevel: Bool, parameters: inout [String?]) throws
        -> String
    {
        var rest = Substring(operation)
        var negate = false
        if rest.hasPrefix("not.") {
            negate = true
            rest = rest.dropFirst(4)
        }
        guard let dot = rest.firstIndex(of: ".") else {
            throw PostgRESTTestServer.Failure(
                status: 400, body: ["code": "PGRST100", "message": "bad filter \(operation)"])
        }
        let op = String(rest[..<dot])
        var value = String(rest[rest.index(after: dot)...])
        if !topLevel, value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
            value = String(value.dropFirst().dropLast()).replacingOccurrences(of: "\u{0}", with: "\"")
        }
        let column = SQL.quoteIdentifier(try PostgRESTTestServer.unquoteField(field))
        let sql: String
        func parameter(_ text: String) -> String {
            parameters.append(text)
            return "$\(parameters.count)"
        }
        switch op {
        case "eq": sql = "\(column) = \(parameter(value))"
        case "neq": sql = "\(column) <> \(parameter(value))"
        case "gt": sql = "\(column) > \(parameter(value))"
        case "gte": sql = "\(column) >= \(parameter(value))"
        case "lt": sql = "\(column) < \(parameter(value))"
        case "lte": sql = "\(column) <= \(parameter(value))"
        case "is":
            switch value.lowercased() {
            case "null": sql = "\(column) IS NULL"
            case "true": sql = "\(column) IS TRUE"
            case "false": sql = "\(column) IS FALSE"
            default:
                throw PostgRESTTestServer.Failure(status: 400, body: ["code": "PGRST100", "message": "bad is value"])
            }
        case "in":
            guard value.hasPrefix("("), value.hasSuffix(")") else {
                throw PostgRESTTestServer.Failure(status: 400, body: ["code": "PGRST100", "message": "bad in list"])
            }
            let items = PostgRESTTestServer.splitTopLevel(String(value.dropFirst().dropLast())).map { item -> String in
                item.hasPrefix("\"") ? ((try? PostgRESTTestServer.unquoteField(item)) ?? item) : item
            }
            sql = "\(column) IN (" + items.map { parameter($0) }.joined(separator: ", ") + ")"
        default:
            throw PostgRESTTestServer.Failure(
                status: 400, body: ["code": "PGRST100", "message": "unknown operator \(op)"])
        }
        return negate ? "NOT (\(sql))" : sql
    }
}
