import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One HTTP response, body fully read (pages and batches are bounded by the client's limits).
struct RESTResponse {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]
}

/// Talks to PostgREST: authentication headers, retries with backoff, and errors that say what
/// to fix. Calls block the calling thread (never call from an event loop).
final class PostgRESTClient {
    let settings: RESTSettings
    private let http: OwnedHTTPClient
    private let logger: Logger
    static let userAgent = "supabackup/\(Supabackup.version)"

    init(settings: RESTSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        var configuration = HTTPClient.Configuration(
            timeout: .init(connect: .seconds(10), read: .seconds(settings.requestTimeout)))
        configuration.decompression = .enabled(limit: .ratio(100))
        // Our own retry loop decides what is worth retrying; a refused connection is not.
        configuration.connectionPool.retryConnectionEstablishment = false
        http = OwnedHTTPClient(configuration: configuration)
    }

    /// Shuts the HTTP client down once, however many owners call it.
    func shutdown() { http.shutdown() }

    /// Settles where PostgREST answers. A project URL puts it at `<url>/rest/v1` behind the
    /// gateway (hosted, `supabase start`, self-hosted); when that is 404 and `<url>/` itself
    /// serves PostgREST's OpenAPI document, it is a bare PostgREST without a gateway.
    static func resolve(_ settings: RESTSettings, logger: Logger) throws -> RESTSettings {
        guard let fallback = settings.fallbackRoot else { return settings }
        let accept = [("Accept", "application/openapi+json")]
        let gateway = PostgRESTClient(settings: settings, logger: logger)
        defer { gateway.shutdown() }
        do {
            _ = try gateway.get("", headers: accept)
            return settings
        } catch let error as RESTError where error.status == 404 {
            var bare = settings
            bare.root = fallback
            bare.fallbackRoot = nil
            let direct = PostgRESTClient(settings: bare, logger: logger)
            defer { direct.shutdown() }
            // PostgREST's document starts with its Swagger version.
            guard let response = try? direct.get("", headers: accept),
                String(decoding: response.body.prefix(64), as: UTF8.self).contains("\"swagger\"")
            else { throw error }
            logger.notice(
                "\(settings.root.absoluteString) answers 404 and \(fallback.absoluteString) serves PostgREST itself: using it as the REST root"
            )
            return bare
        }
    }

    /// Whether a relation PostgREST lists (with `post`, like a table) is a view. A view has no
    /// system columns: selecting `ctid` from it fails with 42703 (undefined column), from a
    /// table it succeeds. Any other refusal keeps it a table, so no rows are ever left out.
    func isView(_ table: TableName) throws -> Bool {
        do {
            _ = try get(
                Self.percentEncode(table.name), query: [("select", "ctid"), ("limit", "0")],
                headers: [("Accept-Profile", table.schema)], table: table)
            return false
        } catch let error as RESTError where error.code == "42703" {
            return true
        } catch let error as RESTError where error.status == 400 {
            logger.debug(
                "cannot tell whether \(table) is a view; taking it for a table", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// `GET root/path?query`, retried on transient failures.
    func get(
        _ path: String, query: [(String, String)] = [], headers: [(String, String)] = [], table: TableName? = nil
    ) throws -> RESTResponse {
        try send(.GET, path, query: query, headers: headers, body: nil, table: table)
    }

    func post(
        _ path: String, query: [(String, String)] = [], headers: [(String, String)] = [], body: [UInt8],
        table: TableName? = nil
    ) throws -> RESTResponse {
        try send(
            .POST, path, query: query, headers: headers + [("Content-Type", "application/json")], body: body,
            table: table)
    }

    static func url(root: URL, path: String, query: [(String, String)]) -> String {
        var text = root.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        text += "/" + path
        if !query.isEmpty {
            text += "?" + query.map { percentEncode($0.0) + "=" + percentEncode($0.1) }.joined(separator: "&")
        }
        return text
    }

    /// Everything but RFC 3986 unreserved characters is encoded: PostgREST decodes the query
    /// first, and `+` (a space in query strings) and `;` (a separator) must not survive raw.
    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let unreserved =
                (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57)
                || byte == 45 || byte == 46 || byte == 95 || byte == 126
            if unreserved {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    private func send(
        _ method: HTTPMethod, _ path: String, query: [(String, String)], headers: [(String, String)], body: [UInt8]?,
        table: TableName?
    ) throws -> RESTResponse {
        let url = Self.url(root: settings.root, path: path, query: query)
        let retry = settings.retry
        return try retry.perform(
            path: path, logger: logger,
            fetch: {
                Result { try HTTPClient.Request(url: url, method: method) }.flatMap { request in
                    var request = request
                    request.headers.add(name: "User-Agent", value: Self.userAgent)
                    for (name, value) in settings.key.headers + headers {
                        request.headers.add(name: name, value: value)
                    }
                    if let body { request.body = .bytes(body) }
                    return http.fetch(request, timeout: .seconds(settings.requestTimeout))
                }
            },
            wait: { response, attempt in
                Self.retryable(response.status) ? retryAfter(response) ?? retry.delay(attempt) : nil
            },
            failure: { response, attempts in
                Self.error(for: response, table: table, root: settings.root, attempts: attempts)
            },
            unreachable: { error, attempts in
                RESTError(
                    status: nil, code: nil,
                    message: RetryPolicy.unreachableMessage(settings.root, error, attempts: attempts), details: nil,
                    advice: nil, table: table)
            })
    }

    private func retryAfter(_ response: RESTResponse) -> Double? {
        guard let value = response.headers.first(name: "Retry-After"), let seconds = Double(value) else { return nil }
        return min(seconds, settings.retry.maxDelay)
    }

    static func retryable(_ status: Int) -> Bool {
        [408, 429, 502, 503, 504, 520].contains(status)
    }

    /// PostgREST's and the gateway's errors, turned into what the user should fix.
    static func error(for response: RESTResponse, table: TableName?, root: URL, attempts: Int) -> RESTError {
        var code: String?
        var message = "HTTP \(response.status)"
        var details: String?
        var hint: String?
        if let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] {
            code = object["code"] as? String
            message = (object["message"] as? String) ?? (object["msg"] as? String) ?? message
            details = object["details"] as? String
            hint = object["hint"] as? String
        }
        var advice: String?
        switch response.status {
        case 401:
            advice = "the API key was rejected: use the project's service_role key or a secret key (sb_secret_...)"
        case 403:
            advice = "the key's role lacks the privilege: use the service_role key or a secret key"
        case 404 where table == nil:
            advice =
                "no PostgREST API at \(root.absoluteString): give the project URL (https://<ref>.supabase.co, http://127.0.0.1:54321 for supabase start) or the PostgREST root"
        case 404:
            advice =
                "the table is not exposed by the REST API (grants to service_role, or the schema cache needs a reload: NOTIFY pgrst, 'reload schema')"
        case 406 where code == "PGRST106":
            advice =
                "add the schema to the API's exposed schemas (Supabase: Settings > API > Exposed schemas)"
                + (hint.map { " — \($0)" } ?? "")
        default:
            if attempts > 1 { advice = "gave up after \(attempts) attempts" }
        }
        return RESTError(
            status: response.status, code: code, message: message, details: details, advice: advice, table: table)
    }
}
