/// An error from the PostgreSQL server or from libpq.
///
/// `description` carries the server's message, its detail (which names the offending key for
/// constraint violations) and the SQLSTATE. It never carries the connection string.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let raw: String
        public static let connectionFailed = Code(raw: "connection failed")
        /// The connection string itself cannot be parsed: a usage error, not a failure.
        public static let invalidConnectionString = Code(raw: "invalid connection string")
        public static let server = Code(raw: "server error")
        public static let connectionLost = Code(raw: "connection lost")
        public static let protocolViolation = Code(raw: "unexpected response")
        public var description: String { raw }
    }

    public var code: Code
    public var message: String
    /// The five-character SQLSTATE, when the server sent one.
    public var sqlState: String?
    public var detail: String?
    public var hint: String?
    /// The object the server names in the error's structured fields (never parsed from the
    /// message, which follows the server's lc_messages).
    public var schema: String?
    public var table: String?
    public var column: String?
    public var constraint: String?
    /// For a failed connection: the address libpq tried last, and whether a server there asked
    /// for a password.
    public var attempted: (host: String, port: String)?
    public var passwordRequested = false

    public init(
        code: Code, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil,
        schema: String? = nil, table: String? = nil, column: String? = nil, constraint: String? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.schema = schema
        self.table = table
        self.column = column
        self.constraint = constraint
    }

    public var description: String {
        var text = message
        if let detail, !detail.isEmpty { text += " (\(detail))" }
        if let sqlState { text += " [SQLSTATE \(sqlState)]" }
        return text
    }

    /// For a failed connection: whether a server answered at all (it asked for a password, or
    /// something listens at its address: a TCP probe of up to three seconds). False means the
    /// database could not be reached (refused, no route, unknown host); true that a server
    /// refused (password, role, database, pg_hba).
    public func serverAnswered() -> Bool {
        passwordRequested || attempted.map { TCPProbe.listens(host: $0.host, port: $0.port) } ?? false
    }

    /// True for errors after which the connection can no longer be used.
    public var isConnectionFailure: Bool {
        code == .connectionFailed || code == .connectionLost
            || sqlState.map { $0.hasPrefix("08") || $0 == "57P01" || $0 == "57P02" || $0 == "57P03" } ?? false
    }
}
