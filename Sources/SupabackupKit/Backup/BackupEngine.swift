import Foundation
import Logging

/// Which transport a backup reads through.
public enum BackupTransport: Sendable {
    case direct(ConnectionString)
    case rest(RESTSettings)
    /// Direct first; if the connection fails, say why and use REST.
    case directThenREST(ConnectionString, RESTSettings)
}

public struct BackupOptions: Sendable {
    public var transport: BackupTransport
    /// The backups folder; the backup becomes `outputDirectory/NAME`.
    public var outputDirectory: String
    public var schemas: [String]
    public var tables: [TableFilter]
    public var excludeTables: [TableFilter]
    public var compressionLevel: Int32
    /// Also back up the Auth tables users need to log in (`Platform.authTables`).
    public var withAuth = false
    /// A backup that selects no table is written (with a warning) instead of refused.
    public var allowEmpty = false
    /// Called a few times a second while a table is read (for a terminal progress line).
    public var progress: (@Sendable (BackupProgress) -> Void)?
    /// Connections reading at once (direct mode): tables in parallel, and tables larger than
    /// `splitBytes` in block ranges, all in one snapshot.
    public var jobs = 1
    public static let defaultSplitBytes: Int64 = 16 << 20
    /// zstd level 1: measured on seven table shapes (docs/BENCHMARKS.md), it used 30-55% less CPU
    /// than level 3 and gave smaller files on six of them (8% larger on the narrow one).
    public static let defaultCompressionLevel: Int32 = 1
    public var splitBytes = BackupOptions.defaultSplitBytes
    /// At most this many block ranges per table.
    static let maxParts = 256
    /// Encrypt every file to these age recipients; empty: store plain.
    public var recipients: [AgeRecipient] = []
    /// Also back up these Storage buckets and their objects (through the Storage API).
    public var storage: StorageSelection?

    public init(
        transport: BackupTransport, outputDirectory: String = "backups", schemas: [String] = ["public"],
        tables: [TableFilter] = [], excludeTables: [TableFilter] = [],
        compressionLevel: Int32 = BackupOptions.defaultCompressionLevel,
        withAuth: Bool = false
    ) {
        self.withAuth = withAuth
        self.transport = transport
        self.outputDirectory = outputDirectory
        self.schemas = schemas
        self.tables = tables
        self.excludeTables = excludeTables
        self.compressionLevel = compressionLevel
    }

    /// A direct-mode backup.
    public init(
        connection: ConnectionString, outputDirectory: String = "backups", schemas: [String] = ["public"],
        tables: [TableFilter] = [], excludeTables: [TableFilter] = [],
        compressionLevel: Int32 = BackupOptions.defaultCompressionLevel
    ) {
        self.init(
            transport: .direct(connection), outputDirectory: outputDirectory, schemas: schemas, tables: tables,
            excludeTables: excludeTables, compressionLevel: compressionLevel)
    }
}

/// Where a backup is, for progress displays.
public struct BackupProgress: Sendable {
    public var table: TableName
    public var rows: Int64
    public var rawBytes: Int64
    /// The planner's estimate (`pg_class.reltuples`), 0 when unknown (REST).
    public var estimatedRows: Int64
    public var seconds: Double
}

public struct BackupResult: Sendable {
    public var name: String
    public var path: String
    public var manifest: Manifest
    /// Uncompressed NDJSON bytes written.
    public var rawBytes: Int64 = 0
    public var seconds: Double = 0
}

/// Backs up tables from a source (direct or REST) into a new archive.
///
/// The backup is written into a hidden `.NAME.partial` folder and renamed to `NAME` only after
/// the manifest is on disk; any error removes the partial folder.
public struct BackupEngine {
    public var options: BackupOptions
    public var logger: Logger

    public init(options: BackupOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public func run(now: Date = Date()) throws -> BackupResult {
        guard !options.schemas.isEmpty else { throw UsageError("no schema to back up") }
        var notes: [String] = []
        let source = try makeSource(notes: &notes)
        let selected = try source.prepare(try selectTables(source, notes: &notes))

        let folder = try PartialBackupFolder(
            in: options.outputDirectory, startingAt: now, recipients: options.recipients)
        do {
            var schemaFile: Manifest.FileEntry?
            var schemaWarnings: [String] = []
            var sequences: [Manifest.Sequence] = []
            // The leader reads the catalog while the workers (if any) already read rows.
            let (entries, rawBytes) = try readTables(selected, from: source, into: folder) {
                // Like pg_dump -t: naming tables captures them and what they need, not their schemas.
                let scope = options.tables.isEmpty ? options.schemas : []
                if let schema = try source.schemaScript(for: selected, schemas: scope) {
                    schemaFile = try folder.writeFile(
                        BackupArchive.schemaFile, contents: Data(schema.script.render().utf8))
                    schemaWarnings = schema.warnings
                }
                sequences = try source.sequences(feeding: selected)
            }
            let (origin, serverVersion) = try source.source()
            try source.finish()
            // Files after rows, with the snapshot released: downloads can take long, and holding
            // a transaction open on the project's database meanwhile would block its vacuum.
            var warnings = notes + source.warnings + schemaWarnings
            var files: (section: Manifest.StorageSection, warnings: [String])?
            if let selection = options.storage {
                files = try StorageBackup(selection: selection, folder: folder, logger: logger).run()
                warnings += files?.warnings ?? []
            }
            var manifest = Manifest(
                format: Manifest.formatName, formatVersion: Manifest.plainFormatVersion,
                toolVersion: Supabackup.version, name: folder.name, startedAt: BackupName.iso8601(folder.startedAt),
                finishedAt: BackupName.iso8601(Date()), mode: source.mode, source: origin,
                serverVersion: serverVersion, consistentSnapshot: source.consistentSnapshot, schemas: options.schemas,
                tables: entries, restoreOrder: RestoreOrder(manifestTables: entries).order, sequences: sequences,
                warnings: warnings, foreignKeysComplete: source.foreignKeysComplete ? nil : false,
                authPasswordHashes: selected.contains { $0.name.schema == "auth" } && !source.authPasswordHashes
                    ? false : nil,
                schemaFile: schemaFile)
            manifest.storage = files?.section
            let path = try folder.publish(manifest)
            logger.info("backup complete", metadata: ["name": "\(folder.name)", "tables": "\(manifest.tables.count)"])
            return BackupResult(
                name: folder.name, path: path, manifest: manifest, rawBytes: rawBytes,
                seconds: Date().timeIntervalSince(now))
        } catch {
            folder.discard()
            throw error
        }
    }

    private func makeSource(notes: inout [String]) throws -> any BackupSource {
        switch options.transport {
        case .direct(let connection):
            return try DirectBackupSource(connection: connection, exportSnapshot: options.jobs > 1)
        case .rest(let settings):
            return try RESTBackupSource(settings: settings, logger: logger)
        case .directThenREST(let connection, let settings):
            do {
                return try DirectBackupSource(connection: connection, exportSnapshot: options.jobs > 1)
            } catch let error as PostgresError where error.code == .connectionFailed && !error.serverAnswered() {
                // Only a database that cannot be reached at all (the IPv6-only direct host from an
                // IPv4 network); a server that refused (password, role, database) is an error.
                let note =
                    "the database could not be reached (\(connection.redact(error.message))); backed up over REST instead: no snapshot, no schema.sql, no password hashes"
                logger.warning("\(note)")
                notes.append(note)
                return try RESTBackupSource(settings: settings, logger: logger)
            } catch var error as PostgresError where error.code == .connectionFailed {
                error.message +=
                    " (the server answered, so this is not backed up over REST instead: fix the database URL, or choose --mode rest)"
                throw error
            }
        }
    }

    private func selectTables(_ source: any BackupSource, notes: inout [String]) throws -> [SourceTable] {
        var schemas = options.schemas
        if options.withAuth && !schemas.contains("auth") { schemas.append("auth") }
        let all = try source.tables(in: schemas, filters: options.tables)
        if options.withAuth && !all.contains(where: { $0.name == TableName(schema: "auth", name: "users") }) {
            throw UsageError(
                "--with-auth: this database has no auth.users table (is it a Supabase project?)", code: .unknownName)
        }
        // Platform internals only when named with --table (schema included).
        let candidates = all.filter { table in
            let named = options.tables.contains { $0.schema == table.name.schema && $0.matches(table.name) }
            if Platform.isInternal(table.name) && !named { return false }
            return schemas.contains(table.name.schema) || options.tables.contains { $0.matches(table.name) }
        }
        let names: [TableName]
        do {
            names = try options.tables.select(from: candidates.map(\.name), excluding: options.excludeTables)
        } catch let error as UsageError {
            throw UsageError("\(error.message) (looked in \(source.location))", code: error.errorCode)
        }
        let wanted = Set(names)
        let selected = candidates.filter { wanted.contains($0.name) }
        if selected.isEmpty {
            // An empty backup in a daily job would age the real ones out: refused unless asked for.
            let message = "no tables to back up in \(schemas.joined(separator: ", ")) (looked in \(source.location))"
            guard options.allowEmpty else {
                throw UsageError(
                    message + "; nothing was written (--allow-empty writes an empty backup)", code: .unknownName)
            }
            logger.warning("\(message)")
            notes.append(message)
        }
        return selected
    }

    private func readTables(
        _ tables: [SourceTable], from source: any BackupSource, into folder: PartialBackupFolder,
        leaderFirst: () throws -> Void
    ) throws -> (entries: [Manifest.Table], rawBytes: Int64) {
        let files = folder.dataFileNames(for: tables.map(\.name))
        var slices: [[TableSlice?]] = tables.map { _ in [nil] }
        var order = Array(tables.indices)
        let parallel = source as? any ParallelBackupSource
        let layout = options.jobs > 1 && tables.count > 0 ? try parallel?.parallelLayout(of: tables) : nil
        if let reason = parallel?.sharingFailure {
            logger.warning(
                "cannot share the snapshot with more connections; reading with one", metadata: ["reason": "\(reason)"])
        }
        if let layout {
            // Largest first, so the last items to finish are small ones.
            order.sort { (layout[$0].bytes, $1) > (layout[$1].bytes, $0) }
            for index in tables.indices where layout[index].bytes > options.splitBytes {
                let split =
                    layout[index].leaves.map { leaves in
                        leaves.flatMap { leaf in
                            slice(bytes: leaf.bytes, blocks: leaf.blocks).map {
                                TableSlice(leaf: leaf.name, blocks: $0)
                            }
                        }
                    }
                    ?? slice(bytes: layout[index].bytes, blocks: layout[index].splittableBlocks).map {
                        TableSlice(blocks: $0)
                    }
                if split.count > 1 && split.count <= BackupOptions.maxParts { slices[index] = split }
            }
        }
        let scheduler = TableReadScheduler(
            tables: tables, files: files, slices: slices, order: order, folder: folder,
            level: options.compressionLevel, progress: options.progress, logger: logger)
        let workers = layout == nil ? 0 : min(options.jobs - 1, slices.reduce(0) { $0 + $1.count } - 1)
        let reader = SendableBox(parallel)
        return try scheduler.run(leader: source, workers: max(workers, 0), leaderFirst: leaderFirst) { interrupt in
            guard let source = reader.value else {
                throw InternalError("worker readers need a source that shares its snapshot")
            }
            return try source.makeReader(interrupt: interrupt)
        }
    }
}

extension BackupEngine {
    /// Block ranges of about `splitBytes` each, or one whole read (nil) for a table that is
    /// small or cannot be read by blocks.
    fileprivate func slice(bytes: Int64, blocks: Int64?) -> [BlockRange?] {
        guard let blocks, bytes > options.splitBytes else { return [nil] }
        let count = Int(min((bytes + options.splitBytes - 1) / options.splitBytes, Int64(BackupOptions.maxParts)))
        let ranges = BlockRange.split(blocks: blocks, into: count)
        return ranges.count > 1 ? ranges : [nil]
    }
}

/// A failure while backing up one table.
public struct BackupError: Error, CustomStringConvertible, Sendable {
    public var table: TableName
    public var underlying: PostgresError

    public var description: String {
        if underlying.sqlState == "42501" {
            return
                "table \(table): \(underlying.message); the role needs SELECT on it and must bypass row level security (BYPASSRLS or table owner)"
        }
        return "table \(table): \(underlying)"
    }
}

/// Hands a value to other threads that only use what is fixed before they start (the source's
/// `makeReader()` reads the exported snapshot and connection string).
struct SendableBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
