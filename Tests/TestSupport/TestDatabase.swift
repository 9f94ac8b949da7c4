import Foundation
import Logging
import SupabackupKit

/// The test server is missing or unreachable. Tests fail with this; they never skip.
public struct TestEnvironmentError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// The throwaway PostgreSQL that scripts/test.sh starts (`SUPABACKUP_TEST_DATABASE_URL`).
public enum TestServer {
    public static func url(database: String = "postgres") throws -> String {
        guard let base = ProcessInfo.processInfo.environment["SUPABACKUP_TEST_DATABASE_URL"], !base.isEmpty else {
            throw TestEnvironmentError(
                description:
                    "SUPABACKUP_TEST_DATABASE_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL"
            )
        }
        guard let slash = base.range(of: "/", options: .backwards),
            slash.lowerBound > base.index(base.startIndex, offsetBy: 12)
        else {
            return base
        }
        return String(base[..<slash.upperBound]) + database
    }

    public static func connect(database: String = "postgres") throws -> PostgresConnection {
        do {
            return try PostgresConnection(conninfo: try url(database: database))
        } catch let error as PostgresError {
            throw TestEnvironmentError(description: "cannot reach the test PostgreSQL: \(error)")
        }
    }
}

/// A fresh database on the test server, dropped on deinit.
public final class TestDatabase {
    public let name: String
    public let url: String
    public let connection: PostgresConnection

    public init(_ label: String) throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        name = "t_\(label.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "_" })_\(suffix)"
        let admin = try TestServer.connect()
        defer { admin.close() }
        try admin.execute("CREATE DATABASE \(SQL.quoteIdentifier(name))")
        url = try TestServer.url(database: name)
        connection = try PostgresConnection(conninfo: url)
        try connection.execute("SET client_min_messages = warning")
    }

    deinit {
        connection.close()
        if let admin = try? TestServer.connect() {
            try? admin.execute("DROP DATABASE IF EXISTS \(SQL.quoteIdentifier(name)) WITH (FORCE)")
            admin.close()
        }
    }

    public func execute(_ sql: String) throws { try connection.execute(sql) }

    public func scalar(_ sql: String) throws -> String? { try connection.query(sql).scalar }

    public func rows(_ sql: String) throws -> [[String?]] { try connection.query(sql).rows }

    /// Row count and a digest of every row's text, independent of physical order.
    public func digest(_ table: String) throws -> String {
        try scalar(
            "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '-') FROM \(table) t"
        ) ?? ""
    }

    /// Runs a SQL file from the repository's sql/ folder.
    public func run(sqlFile relativePath: String) throws {
        let sql = try String(contentsOfFile: Repository.sqlDirectory + "/" + relativePath, encoding: .utf8)
        try execute(sql)
    }
}

public enum Repository {
    public static var sqlDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["SUPABACKUP_SQL_DIR"] { return dir }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("sql").path
    }
}

/// A temporary directory removed on deinit.
public final class TemporaryDirectory {
    public let path: String

    public init() throws {
        path = NSTemporaryDirectory() + "supabackup-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

/// A logger that discards everything, for engines under test.
public let silentLogger = Logger(label: "supabackup.test") { _ in SwiftLogNoOpLogHandler() }

/// A logger that keeps every message at warning level and above, for tests that check what an
/// engine warned about.
public final class WarningLog: @unchecked Sendable {
    // @unchecked: `messages` is only touched under `lock`.
    private let lock = NSLock()
    private var stored: [String] = []

    public init() {}

    public var messages: [String] { lock.withLock { stored } }

    public var logger: Logger {
        Logger(label: "supabackup.test") { _ in Handler(log: self) }
    }

    struct Handler: LogHandler {
        let log: WarningLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .warning
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(
            level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
            function: String, line: UInt
        ) {
            log.lock.withLock { log.stored.append(message.description) }
        }
    }
}
