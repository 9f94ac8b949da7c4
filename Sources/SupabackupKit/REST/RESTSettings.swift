import Foundation

/// How to reach a project's REST API. The key is never shown: `description` leaves it out.
public struct RESTSettings: Sendable, CustomStringConvertible {
    /// The PostgREST root, e.g. `https://ref.supabase.co/rest/v1`.
    public var root: URL
    public var key: APIKey
    /// Rows asked for per page; the server may cap it lower (db-max-rows).
    public var pageSize: Int = 1000
    /// Bytes of JSON per restore request.
    public var batchBytes: Int = 1 << 20
    public var retry = RetryPolicy()
    /// Seconds one request may take.
    public var requestTimeout: Int64 = 60

    /// Where PostgREST may sit instead when `root` answers 404: the URL as given, for a bare
    /// PostgREST serving its API at `/` without a gateway. Nil when the URL named `/rest/v1`.
    public var fallbackRoot: URL?

    /// - Parameters:
    ///   - url: a project URL (`https://<ref>.supabase.co`, `http://127.0.0.1:54321`,
    ///     `https://supabase.example.com`): PostgREST is at `<url>/rest/v1`, as supabase-js
    ///     assumes; or a URL ending in `/rest/v1`, the PostgREST root used as given.
    public init(url: String, key: APIKey) throws {
        guard let parsed = URL(string: url.trimmingCharacters(in: .whitespaces)),
            let scheme = parsed.scheme?.lowercased(),
            scheme == "https" || scheme == "http", let host = parsed.host, !host.isEmpty
        else {
            throw UsageError("invalid REST URL '\(url)': give the project URL, e.g. https://<ref>.supabase.co")
        }
        guard parsed.user == nil && parsed.password == nil && parsed.query == nil else {
            throw UsageError(
                "the REST URL must not carry credentials or a query; pass the key through SUPABASE_SERVICE_ROLE_KEY")
        }
        var text = parsed.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        if text.hasSuffix("/rest/v1") {
            root = URL(string: text)!
        } else {
            root = URL(string: text + "/rest/v1")!
            fallbackRoot = URL(string: text)!
        }
        self.key = key
    }

    /// The Auth API beside PostgREST (`<project URL>/auth/v1`), nil for a bare PostgREST.
    public var authRoot: URL? { sibling("auth/v1") }

    /// The Storage API beside PostgREST (`<project URL>/storage/v1`), nil for a bare PostgREST.
    public var storageRoot: URL? { sibling("storage/v1") }

    private func sibling(_ path: String) -> URL? {
        var text = root.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        guard text.hasSuffix("/rest/v1") else { return nil }
        return URL(string: String(text.dropLast("rest/v1".count)) + path)
    }

    public var description: String { root.absoluteString }
}

/// Exponential backoff with full jitter.
public struct RetryPolicy: Sendable {
    public var attempts = 8
    public var baseDelay = 0.25
    public var maxDelay = 15.0

    public init(attempts: Int = 8, baseDelay: Double = 0.25, maxDelay: Double = 15.0) {
        self.attempts = attempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// Seconds to wait before attempt `attempt` (1-based retry count).
    func delay(_ attempt: Int) -> Double {
        let cap = min(maxDelay, baseDelay * pow(2, Double(attempt - 1)))
        return Double.random(in: (cap / 2)...cap)
    }
}

/// A Supabase API key. Its kind decides the headers and whether a backup may use it.
public struct APIKey: Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// `sb_secret_...`: sent as `apikey` only.
        case secret
        /// `sb_publishable_...`: subject to RLS.
        case publishable
        /// A JWT; `role` is its role claim (`service_role`, `anon`, ...), nil if unreadable.
        case jwt(role: String?)
        case unknown
    }

    let value: String
    public let kind: Kind

    public init(_ value: String) throws {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw UsageError("the service key is empty") }
        guard !trimmed.contains(where: { $0.isWhitespace || $0.asciiValue == nil || $0.asciiValue! < 0x20 }) else {
            throw UsageError("the service key contains spaces or non-ASCII characters; check the key file")
        }
        self.value = trimmed
        if trimmed.hasPrefix("sb_secret_") {
            kind = .secret
        } else if trimmed.hasPrefix("sb_publishable_") {
            kind = .publishable
        } else if trimmed.split(separator: ".").count == 3 {
            kind = .jwt(role: Self.jwtRole(trimmed))
        } else {
            kind = .unknown
        }
    }

    /// Refuses keys that row level security would silently restrict.
    public func requireServiceLevel() throws {
        switch kind {
        case .publishable:
            throw UsageError(
                "this is a publishable key: row level security would hide rows and the backup would be silently partial; use the secret key (sb_secret_...) or the service_role key"
            )
        case .jwt(let role?) where role != "service_role" && role != "supabase_admin":
            throw UsageError(
                "this key has role '\(role)': row level security would hide rows and the backup would be silently partial; use the service_role key"
            )
        default:
            return
        }
    }

    /// Headers carrying the key, as Supabase's gateway expects for its kind.
    var headers: [(String, String)] {
        switch kind {
        case .secret, .publishable: return [("apikey", value)]
        case .jwt, .unknown: return [("apikey", value), ("Authorization", "Bearer \(value)")]
        }
    }

    public var description: String { "API key (\(kind))" }

    private static func jwtRole(_ token: String) -> String? {
        let parts = token.split(separator: ".")
        var payload = String(parts[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while payload.count % 4 != 0 { payload += "=" }
        guard let data = Data(base64Encoded: payload),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["role"] as? String
    }
}
