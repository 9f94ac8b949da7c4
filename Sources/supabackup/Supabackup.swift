import ArgumentParser
import Foundation
import Logging
import SupabackupKit

#if canImport(Glibc)
    import Glibc
#endif

@main
struct SupabackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "supabackup",
        abstract: "Back up a Supabase or PostgreSQL database table by table, and restore it.",
        discussion: """
            Exit codes: 0 success; 1 failure (database, network, files; a failed restore changed \
            nothing); 2 partial (restore --with-storage: some files could not be written back, \
            listed on stderr); 3 damaged or unreadable archive; 4 encrypted and no identity given opens it; \
            64 usage error (bad arguments or URL, unknown table or backup, no restore target, nothing to back \
            up, no --identity for an encrypted archive); 130/143 interrupted by SIGINT/SIGTERM.
            """,
        version: Supabackup.version,
        subcommands: [
            BackupCommand.self, RestoreCommand.self, ListCommand.self, VerifyCommand.self, PruneCommand.self,
            CatCommand.self, CatObjectCommand.self, KeygenCommand.self,
        ]
    )

    /// ArgumentParser's main, except that a bad argument is one line like every other error
    /// (`supabackup: error: ...`, exit 64) instead of three starting `Error:`.
    static func main() {
        do {
            do {
                try EnvironmentFile.load()
            } catch let error as EnvironmentFile.Malformed {
                throw UsageError("\(EnvironmentFile.variable): \(error.description)")
            }
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            // Help, --version and our own exit codes (their line is already printed) as usual.
            if error is ExitCode || code == .success { exit(withError: error) }
            var text = message(for: error)
            if text.hasPrefix("Error: ") { text.removeFirst("Error: ".count) }
            let command = CommandLine.arguments.dropFirst().first { !$0.hasPrefix("-") }.map { " \($0)" } ?? ""
            let help =
                configuration.subcommands.contains { $0.configuration.commandName == command.dropFirst().description }
                ? "supabackup\(command) --help" : "supabackup --help"
            Terminal.stderr(
                "supabackup: error: \(text.split(separator: "\n").joined(separator: " ")) (see \(help))")
            Foundation.exit(code.rawValue)
        }
    }
}

enum TransportMode: String, ExpressibleByArgument, CaseIterable {
    case auto, direct, rest
}

/// How to reach the database: a libpq connection string, or the project's REST API.
struct ConnectionOptions: ParsableArguments {
    @Option(
        name: [.customLong("db-url"), .customShort("d")],
        help: ArgumentHelp(
            "libpq URI or conninfo string (default: $DATABASE_URL, else the PG* variables and ~/.pgpass).",
            valueName: "url"))
    var databaseURL: String?

    @Option(
        name: .customLong("rest-url"),
        help: ArgumentHelp(
            "Project URL, REST at <url>/rest/v1 (https://<ref>.supabase.co, http://127.0.0.1:54321, https://supabase.example.com), or a URL ending in /rest/v1 (default: $SUPABASE_URL).",
            valueName: "url"))
    var restURL: String?

    @Option(
        name: .customLong("service-key-file"),
        help: ArgumentHelp(
            "File holding the service_role or secret key (otherwise the key is read from $SUPABASE_SERVICE_ROLE_KEY).",
            valueName: "file"))
    var serviceKeyFile: String?

    @Option(
        help:
            "auto: direct when a database URL is set, REST when only REST settings are; direct, then REST if it fails, when both are."
    )
    var mode: TransportMode = .auto

    @Option(name: .customLong("page-size"), help: "REST mode: rows per request.")
    var pageSize = 1000

    func validate() throws {
        guard pageSize >= 1 && pageSize <= 100_000 else {
            throw ValidationError("--page-size must be between 1 and 100000")
        }
    }

    private var environment: [String: String] { ProcessInfo.processInfo.environment }

    func connectionString() throws -> ConnectionString {
        try ConnectionString(databaseURL ?? environment["DATABASE_URL"] ?? "")
    }

    /// REST settings, or nil when no REST URL is configured.
    func restSettings(required: Bool, purpose: String = "REST mode") throws -> RESTSettings? {
        guard let url = restURL ?? environment["SUPABASE_URL"], !url.isEmpty else {
            if required { throw UsageError("REST mode needs --rest-url or SUPABASE_URL") }
            return nil
        }
        let key: String
        if let file = serviceKeyFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw UsageError("cannot read the service key file \(file)")
            }
            key = text
        } else if let value = environment["SUPABASE_SERVICE_ROLE_KEY"], !value.isEmpty {
            key = value
        } else {
            throw UsageError(
                "\(purpose) needs the service_role or secret key: set SUPABASE_SERVICE_ROLE_KEY or use --service-key-file"
            )
        }
        var settings = try RESTSettings(url: url, key: try APIKey(key))
        settings.pageSize = pageSize
        return settings
    }

    func backupTransport() throws -> BackupTransport {
        let hasDatabaseURL = databaseURL != nil || environment["DATABASE_URL"] != nil
        switch mode {
        case .direct:
            return .direct(try connectionString())
        case .rest:
            return .rest(try restSettings(required: true)!)
        case .auto:
            let rest = try restSettings(required: false)
            switch (hasDatabaseURL, rest) {
            case (true, let rest?): return .directThenREST(try connectionString(), rest)
            case (false, let rest?): return .rest(rest)
            default: return .direct(try connectionString())
            }
        }
    }

    /// Where a restore writes: only what the command line names, as pg_restore writes nowhere
    /// without `-d` and restic needs `--target`: `--db-url` or `--rest-url`, or `--mode direct|rest`
    /// to take the one in DATABASE_URL (or PG*) or SUPABASE_URL on purpose. The environment alone
    /// never chooses it: a DATABASE_URL set for backups often points at the live source.
    func restoreTarget() throws -> RestoreTarget {
        switch (mode, databaseURL, restURL) {
        case (.direct, _, _), (.auto, _?, nil): return .direct(try connectionString())
        case (.rest, _, _), (.auto, nil, _?): return .rest(try restSettings(required: true)!)
        case (.auto, _?, _?):
            throw UsageError("restore writes to one target: give --db-url or --rest-url, not both (or add --mode)")
        case (.auto, nil, nil):
            var message =
                "restore writes only where the command line says: give --db-url URL (the password from PGPASSWORD or ~/.pgpass) or --rest-url URL"
            let fromEnvironment = ["DATABASE_URL", "SUPABASE_URL"].filter { environment[$0] != nil }
            if !fromEnvironment.isEmpty {
                message +=
                    "; \(fromEnvironment.joined(separator: " and ")) alone does not choose a restore target (--mode direct or --mode rest takes it on purpose)"
            }
            throw UsageError(message)
        }
    }
}

struct OutputOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Only errors on stderr.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "More detail (restore: a line per object, table and sequence).")
    var verbose = false

    func makeLogger(_ label: String) -> Logger {
        // On a terminal the progress line and the summary read as sentences; the key=value event
        // lines (one per table) are for logs, or for --verbose.
        let level: Logger.Level = quiet ? .error : verbose ? .debug : isatty(STDERR_FILENO) == 1 ? .notice : .info
        var logger = Logger(label: label) { _ in StderrLogHandler() }
        logger.logLevel = level
        return logger
    }
}

/// One compact line per event on stderr: `supabackup: message key=value ...`.
struct StderrLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = "supabackup: "
        if event.level >= .warning { line += "\(event.level): " }
        line += "\(event.message)"
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in all.keys.sorted() { line += " \(key)=\(all[key]!)" }
        Terminal.stderr(line)
    }
}

enum Terminal {
    /// Streams what `produce` writes to stdout; a reader that went away (`| head`) ends it
    /// quietly, as cat does.
    static func streamToStdout(_ produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        struct OutputClosed: Error {}
        let out = FileHandle.standardOutput
        do {
            try produce { chunk in
                do { try out.write(contentsOf: Data(chunk)) } catch { throw OutputClosed() }
            }
        } catch is OutputClosed {
            return
        }
    }

    /// On a terminal, clears a progress line first.
    static let clear = isatty(STDERR_FILENO) == 1 ? "\r\u{1B}[K" : ""

    static func stderr(_ line: String) {
        FileHandle.standardError.write(Data((clear + line + "\n").utf8))
    }

    /// One self-overwriting line: table, rows (of the estimate), bytes, rate, ETA.
    @Sendable static func showProgress(_ progress: BackupProgress) {
        let rate = progress.seconds > 0 ? Double(progress.rows) / progress.seconds : 0
        var line = "\(progress.table): \(progress.rows)"
        if progress.estimatedRows > 0 {
            let percent = min(100, Int(Double(progress.rows) * 100 / Double(progress.estimatedRows)))
            line += "/~\(progress.estimatedRows) rows (\(percent)%)"
        } else {
            line += " rows"
        }
        line += ", \(formatBytes(progress.rawBytes)), \(Int(rate)) rows/s"
        if progress.estimatedRows > progress.rows && rate > 0 {
            line += ", ETA \(Int(Double(progress.estimatedRows - progress.rows) / rate)) s"
        }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
    }

    /// SIGINT/SIGTERM remove the partial folder of a running backup, then exit 130/143.
    /// SIGXFSZ is ignored so a file-size limit shows as a write error, not a crash.
    nonisolated(unsafe) static var signalSources: [DispatchSourceSignal] = []
    /// Set once a signal handler runs: errors that follow (readers losing their files) are its
    /// doing, and the handler is about to exit with the signal's code.
    static let interrupted = LockedValue(false)

    static func installSignalHandlers() {
        signal(SIGXFSZ, SIG_IGN)
        for (number, code) in [(SIGINT, ExitStatus.interrupted), (SIGTERM, ExitStatus.terminated)] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                interrupted.withLock { $0 = true }
                let removed = ActiveBackups.shared.removeAll()
                let name = number == SIGINT ? "SIGINT" : "SIGTERM"
                stderr(
                    "supabackup: error: interrupted by \(name)"
                        + (removed.isEmpty ? "" : "; removed the unfinished backup"))
                exit(code)
            }
            source.resume()
            signalSources.append(source)
        }
    }

    /// Runs a command body, turning library errors into one line on stderr and an exit code.
    static func run(_ body: () throws -> Void) throws {
        installSignalHandlers()
        #if canImport(Glibc)
            // Buffers of 1 MiB and more (upload parts, read ranges) are mapped and unmapped, not
            // kept in per-thread arenas: glibc's moving threshold otherwise let a backup to object
            // storage peak at 118 MB instead of 79.
            // mallopt is declared in malloc.h, which the Glibc module leaves out: found by name.
            if let symbol = dlsym(nil, "mallopt") {
                typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
                let mMmapThreshold: Int32 = -3
                _ = unsafeBitCast(symbol, to: Mallopt.self)(mMmapThreshold, 1 << 20)
            }
        #endif
        do {
            try body()
        } catch let error as ExitCode {
            throw error
        } catch {
            while interrupted.withLock({ $0 }) { Thread.sleep(forTimeInterval: 1) }
            let (message, code) = describe(error)
            stderr("supabackup: error: " + message.replacingOccurrences(of: "\n", with: " "))
            throw ExitCode(code)
        }
    }

    static func describe(_ error: Error) -> (String, Int32) {
        let message = (error as? UsageError)?.message ?? "\(error)"
        return (message, ExitStatus.code(for: error))
    }
}

func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}

func parseTables(_ values: [String]) throws -> [TableFilter] {
    try values.map { try TableFilter(parsing: $0) }
}

/// A value guarded by a lock, shared with signal handlers' dispatch queues.
final class LockedValue<Value>: @unchecked Sendable {
    // @unchecked: `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
