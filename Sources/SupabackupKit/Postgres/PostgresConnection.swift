import CLibpq
import Foundation

/// One libpq connection (`PGconn`), used from one thread at a time.
///
/// libpq calls block; callers run them on their own thread, never on Swift's cooperative pool.
/// `close()` is the normal way to end it; `deinit` frees the handle as a safety net.
public final class PostgresConnection {
    private var handle: OpaquePointer?

    /// Connects with a libpq URI or conninfo string. An empty string uses libpq's defaults:
    /// the `PG*` environment variables and `~/.pgpass`.
    public init(conninfo: String) throws {
        let conn = PQconnectdb(conninfo)
        guard let conn else {
            throw PostgresError(code: .connectionFailed, message: "could not allocate a connection")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = Self.trimmed(PQerrorMessage(conn))
            var error = PostgresError(code: .connectionFailed, message: message)
            error.attempted = (
                PQhost(conn).map { String(cString: $0) } ?? "", PQport(conn).map { String(cString: $0) } ?? ""
            )
            error.passwordRequested = PQconnectionUsedPassword(conn) == 1
            PQfinish(conn)
            throw error
        }
        // libpq prints NOTICEs to stderr by default; the library never prints.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
        handle = conn
    }

    deinit {
        if let handle { PQfinish(handle) }
    }

    public func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    /// The socket, for `ConnectionInterrupt` (-1 when closed).
    var socket: Int32 { handle.map { PQsocket($0) } ?? -1 }

    private func conn() throws -> OpaquePointer {
        guard let handle else {
            throw PostgresError(code: .connectionLost, message: "the connection is closed")
        }
        return handle
    }

    /// Where the connection went, for the manifest and messages (never a password).
    public var host: String { handle.flatMap { PQhost($0) }.map { String(cString: $0) } ?? "" }
    public var port: String { handle.flatMap { PQport($0) }.map { String(cString: $0) } ?? "" }
    public var database: String { handle.flatMap { PQdb($0) }.map { String(cString: $0) } ?? "" }

    /// Where this connection is, for errors about what was not found there.
    public func location(_ connectionString: ConnectionString) -> String {
        var text = "database \(SQL.displayIdentifier(database)) on \(host):\(port)"
        if !connectionString.namesDatabase {
            text +=
                "; the URL names no database, so libpq used the user's name: add /DBNAME to the URL (Supabase: /postgres)"
        }
        return text
    }
    /// `server_version_num`, from the connection's startup (no round trip).
    public var serverVersion: Int { handle.map { Int(PQserverVersion($0)) } ?? 0 }
    public var user: String { handle.flatMap { PQuser($0) }.map { String(cString: $0) } ?? "" }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws {
        let result = PQexec(try conn(), sql)
        defer { PQclear(result) }
        try check(result, expecting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK])
    }

    /// Runs a query with text parameters (`$1`, `$2`, ...) and returns every row as text.
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> QueryResult {
        let conn = try conn()
        let result = withCStrings(parameters) { pointers in
            PQexecParams(conn, sql, Int32(parameters.count), nil, pointers, nil, nil, 0)
        }
        defer { PQclear(result) }
        try check(result, expecting: [PGRES_TUPLES_OK, PGRES_COMMAND_OK])
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var columns: [String] = []
        for c in 0..<columnCount {
            columns.append(String(cString: PQfname(result, Int32(c))))
        }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<rowCount {
            var row: [String?] = []
            row.reserveCapacity(columnCount)
            for c in 0..<columnCount {
                if PQgetisnull(result, Int32(r), Int32(c)) == 1 {
                    row.append(nil)
                } else {
                    row.append(String(cString: PQgetvalue(result, Int32(r), Int32(c))))
                }
            }
            rows.append(row)
        }
        return QueryResult(columns: columns, rows: rows)
    }

    /// Runs `COPY ... TO STDOUT` and hands each data row (one CopyData message) to `body`.
    ///
    /// The buffer is only valid inside `body`. If `body` throws, the connection is closed,
    /// because libpq offers no way to stop a COPY OUT short of that.
    /// - Returns: the number of rows received.
    @discardableResult
    public func copyOut(_ sql: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        let conn = try conn()
        let start = PQexec(conn, sql)
        defer { PQclear(start) }
        try check(start, expecting: [PGRES_COPY_OUT])
        var rows = 0
        while true {
            var buffer: UnsafeMutablePointer<CChar>? = nil
            let length = PQgetCopyData(conn, &buffer, 0)
            if length > 0, let buffer {
                defer { PQfreemem(buffer) }
                do {
                    try body(UnsafeRawBufferPointer(start: buffer, count: Int(length)))
                } catch {
                    close()
                    throw error
                }
                rows += 1
            } else if length == -1 {
                break
            } else {
                throw connectionError(default: "COPY failed")
            }
        }
        try drainResults(conn)
        return rows
    }

    /// Runs `COPY ... FROM STDIN`; `body` sends data through the writer it is given.
    ///
    /// If `body` throws, the COPY is ended with an error so the server discards it, and the
    /// error is rethrown.
    public func copyIn(_ sql: String, _ body: (CopyInWriter) throws -> Void) throws {
        let conn = try conn()
        let start = PQexec(conn, sql)
        defer { PQclear(start) }
        try check(start, expecting: [PGRES_COPY_IN])
        let writer = CopyInWriter(conn: conn)
        do {
            try body(writer)
        } catch {
            _ = PQputCopyEnd(conn, "aborted by client")
            try? drainResults(conn)
            throw error
        }
        guard PQputCopyEnd(conn, nil) == 1 else {
            throw connectionError(default: "could not end COPY")
        }
        try drainResults(conn)
    }

    /// Reads results until libpq has none left, throwing the first error.
    private func drainResults(_ conn: OpaquePointer) throws {
        var firstError: PostgresError?
        while let result = PQgetResult(conn) {
            defer { PQclear(result) }
            if firstError == nil {
                do { try check(result, expecting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK]) } catch let error
                    as PostgresError
                {
                    firstError = error
                }
            }
        }
        if let firstError { throw firstError }
    }

    private func check(_ result: OpaquePointer?, expecting: [ExecStatusType]) throws {
        guard let result else {
            throw connectionError(default: "no response from the server")
        }
        let status = PQresultStatus(result)
        if expecting.contains(status) { return }
        if status == PGRES_FATAL_ERROR || status == PGRES_NONFATAL_ERROR {
            throw Self.error(from: result, connection: handle)
        }
        throw PostgresError(
            code: .protocolViolation,
            message: "unexpected result status \(String(cString: PQresStatus(status)))"
        )
    }

    fileprivate func connectionError(default message: String) -> PostgresError {
        let text = handle.map { Self.trimmed(PQerrorMessage($0)) } ?? ""
        let lost = handle.map { PQstatus($0) != CONNECTION_OK } ?? true
        return PostgresError(code: lost ? .connectionLost : .server, message: text.isEmpty ? message : text)
    }

    static func error(from result: OpaquePointer, connection: OpaquePointer?) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: value)
        }
        let primary = field("M") ?? trimmed(PQresultErrorMessage(result))
        let lost = connection.map { PQstatus($0) != CONNECTION_OK } ?? false
        return PostgresError(
            code: lost ? .connectionLost : .server,
            message: primary.isEmpty ? "server closed the connection unexpectedly" : primary,
            sqlState: field("C"),
            detail: field("D"),
            hint: field("H"),
            schema: field("s"),
            table: field("t"),
            column: field("c"),
            constraint: field("n")
        )
    }

    static func trimmed(_ text: UnsafePointer<CChar>?) -> String {
        guard let text else { return "" }
        var message = String(cString: text)
        while message.last?.isWhitespace == true { message.removeLast() }
        // libpq prefixes multi-line messages; keep one line for the user.
        return message.split(separator: "\n")
            .map { $0.replacingOccurrences(of: "FATAL:  ", with: "").trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .joined(separator: "; ")
    }
}

/// Sends COPY data for `PostgresConnection.copyIn`.
public struct CopyInWriter {
    fileprivate let conn: OpaquePointer

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        let sent = PQputCopyData(conn, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        guard sent == 1 else {
            let text = PostgresConnection.trimmed(PQerrorMessage(conn))
            throw PostgresError(code: .connectionLost, message: text.isEmpty ? "could not send COPY data" : text)
        }
    }
}

/// Rows of a query, every value as PostgreSQL's text output.
public struct QueryResult: Sendable {
    public var columns: [String]
    public var rows: [[String?]]

    public var isEmpty: Bool { rows.isEmpty }
    /// The first column of the first row.
    public var scalar: String? { rows.first?.first ?? nil }
}

private func withCStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let duplicated: [UnsafeMutablePointer<CChar>?] = strings.map { $0.flatMap { strdup($0) } }
    defer { for pointer in duplicated { free(pointer) } }
    return body(duplicated.map { $0.map { UnsafePointer($0) } })
}

extension PostgresConnection {
    /// A query's rows decoded into `T` by column name (snake_case names to camelCase
    /// properties) through one `json_agg`: a catalog of another shape is an error naming the
    /// row type, never a crash on a missing column.
    func decode<T: Decodable>(_ type: T.Type, _ sql: String, _ parameters: [String?] = []) throws -> [T] {
        let json = try query("SELECT coalesce(json_agg(q), '[]')::text FROM (\(sql)) q", parameters).scalar ?? "[]"
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode([T].self, from: Data(json.utf8))
        } catch {
            throw InternalError("the catalog answered in an unexpected shape for \(T.self): \(error)")
        }
    }
}

/// Lets another thread end a connection's blocking wait: a worker queued in a transaction-mode
/// pooler for a server connection that will not come while the backup's own connections hold
/// the pool. Attached only while the connection's owner knows it is open, so a socket number
/// is never shut down after it was closed and reused.
final class ConnectionInterrupt: @unchecked Sendable {
    // @unchecked: `socket` and `interrupted` are only touched under `lock`.
    private let lock = NSLock()
    private var socket: Int32 = -1
    private var interrupted = false

    /// Watches `connection`; throws when `interrupt()` came first.
    func attach(_ connection: PostgresConnection) throws {
        try lock.withLock {
            guard !interrupted else {
                throw PostgresError(code: .connectionLost, message: "interrupted before it could start")
            }
            socket = connection.socket
        }
    }

    /// Stops watching (before the owner closes the connection).
    func detach() { lock.withLock { socket = -1 } }

    /// Ends the attached connection's wait (its call fails as a lost connection), and any later
    /// `attach`.
    func interrupt() {
        lock.withLock {
            interrupted = true
            if socket >= 0 { _ = shutdown(socket, Int32(SHUT_RDWR)) }
        }
    }
}
