import ArgumentParser
import Foundation
import SupabackupKit

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up tables into a new folder DIR/NAME (NAME: the UTC start time).",
        discussion: "Prints the backup's NAME as the last line on stdout; progress goes to stderr."
    )

    @OptionGroup var connection: ConnectionOptions

    @OptionGroup var location: LocationOptions

    @OptionGroup var storage: StorageOptions

    @OptionGroup(title: "Encryption (age)") var encryption: RecipientOptions

    @OptionGroup(title: "Supabase Storage") var files: StorageFilesOptions

    @Option(
        name: [.customLong("schema"), .customShort("n")],
        help: ArgumentHelp("Schema to back up (repeatable; default: public).", valueName: "s"))
    var schemas: [String] = []

    @Option(
        name: [.customLong("table"), .customShort("t")],
        help: ArgumentHelp("Only this table: name or schema.name (repeatable).", valueName: "t"))
    var tables: [String] = []

    @Option(
        name: [.customLong("exclude-table"), .customShort("T")],
        help: ArgumentHelp("Skip this table (repeatable).", valueName: "t"))
    var excludeTables: [String] = []

    @Flag(
        name: .customLong("with-auth"),
        help: "Also back up Supabase Auth's users, identities and MFA factors.")
    var withAuth = false

    @Option(name: .customLong("compression-level"), help: "zstd level, 1 (fast; the default) to 22 (smallest, slow).")
    var compressionLevel: Int32 = BackupOptions.defaultCompressionLevel

    @Option(
        name: [.customLong("jobs"), .customShort("j")],
        help: ArgumentHelp(
            "Connections reading at once in one snapshot (direct mode): tables in parallel, large tables in block ranges.",
            valueName: "n"))
    var jobs = 4

    @Option(
        name: .customLong("split-tables-larger-than"),
        help: ArgumentHelp(
            "With --jobs > 1, read tables larger than this on disk in block ranges (kB, MB, GB).", valueName: "size"))
    var splitSize = "16MB"

    @Flag(
        name: .customLong("allow-empty"),
        help: "Write a backup even when it selects no table (otherwise an error: nothing is written).")
    var allowEmpty = false

    @Flag(help: "After a successful backup, prune DIR with the --keep-* rules (default: keep 30 days).")
    var prune = false

    @OptionGroup var retention: RetentionOptions

    @OptionGroup var output: OutputOptions

    @Flag(help: "One JSON object on stdout instead of the name.")
    var json = false

    func validate() throws {
        if !prune
            && !RetentionPolicy(
                keepDays: retention.keepDays, keepLast: retention.keepLast, keepDaily: retention.keepDaily,
                keepWeekly: retention.keepWeekly, keepMonthly: retention.keepMonthly
            ).isEmpty
        {
            throw ValidationError("--keep-* options apply with --prune")
        }
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64") }
        guard let split = ByteSize.parse(splitSize), split > 0 else {
            throw ValidationError("--split-tables-larger-than: \(splitSize) is not a size like 64MB, 512kB or 1GB")
        }
        guard (1...22).contains(compressionLevel) else {
            throw ValidationError("--compression-level must be between 1 and 22")
        }
    }

    func run() throws {
        try storage.apply()
        try Terminal.run {
            let directory = location.directory
            let options = BackupOptions(
                transport: try connection.backupTransport(), outputDirectory: directory,
                schemas: schemas.isEmpty ? ["public"] : schemas, tables: try parseTables(tables),
                excludeTables: try parseTables(excludeTables), compressionLevel: compressionLevel, withAuth: withAuth)
            let logger = output.makeLogger("supabackup.backup")
            var engineOptions = options
            engineOptions.jobs = jobs
            engineOptions.allowEmpty = allowEmpty
            engineOptions.recipients = try encryption.resolve()
            engineOptions.storage = try files.selection(connection, jobs: jobs)
            engineOptions.splitBytes = ByteSize.parse(splitSize) ?? BackupOptions.defaultSplitBytes
            if !output.quiet && isatty(STDERR_FILENO) == 1 { engineOptions.progress = Terminal.showProgress }
            let result = try BackupEngine(options: engineOptions, logger: logger).run()
            let manifest = result.manifest
            if !output.quiet {
                let ratio = manifest.totalBytes > 0 ? Double(result.rawBytes) / Double(manifest.totalBytes) : 0
                let seconds = max(result.seconds, 0.001)
                Terminal.stderr(
                    "supabackup: backed up \(manifest.tables.count) tables, \(manifest.totalRows) rows, "
                        + "\(formatBytes(result.rawBytes)) raw -> \(formatBytes(manifest.totalBytes)) compressed "
                        + "(\(String(format: "%.1f", ratio))x) in \(String(format: "%.1f", result.seconds)) s "
                        + "(\(Int(Double(manifest.totalRows) / seconds)) rows/s, \(formatBytes(Int64(Double(result.rawBytes) / seconds)))/s), "
                        + "\(manifest.warnings.count) warnings, mode \(manifest.mode), "
                        + (engineOptions.recipients.isEmpty
                            ? ""
                            : "encrypted to \(engineOptions.recipients.count) recipient\(engineOptions.recipients.count == 1 ? "" : "s"), ")
                        + "to \(result.path)")
                if let section = manifest.storage {
                    let (downloaded, reused) = (section.downloaded, section.reused)
                    Terminal.stderr(
                        "supabackup: storage: \(section.buckets.count) buckets, \(section.objects.count) objects, "
                            + "\(formatBytes(section.size)): \(downloaded.count) downloaded (\(formatBytes(downloaded.size))), "
                            + "\(reused.count) unchanged taken from the previous backup (\(formatBytes(reused.size)))")
                }
                for warning in manifest.warnings { Terminal.stderr("supabackup: warning: \(warning)") }
            }
            if prune {
                let pruned = try Pruner.prune(in: directory, policy: retention.policy, dryRun: false)
                if !output.quiet {
                    Terminal.stderr(
                        "supabackup: pruned \(directory): \(pruned.backups.filter(\.keep).count) kept, \(pruned.removed.count) removed"
                            + (pruned.removed.isEmpty ? "" : " (\(pruned.removed.joined(separator: ", ")))"))
                }
            }
            if json {
                try JSONOutput.print(BackupJSON(result))
            } else {
                print(result.name)
            }
        }
    }
}

/// `backup --json`.
struct BackupJSON: Encodable {
    struct Table: Encodable {
        var table: String
        var rows: Int64
        var bytes: Int64
    }
    var name: String
    var path: String
    var mode: String
    var consistentSnapshot: Bool
    var tables: [Table]
    var rows: Int64
    var rawBytes: Int64
    var bytes: Int64
    var seconds: Double
    var warnings: [String]
    var storage: StorageJSON?

    struct StorageJSON: Encodable {
        var buckets: Int
        var objects: Int
        var downloaded: Int
        var downloadedBytes: Int64
        var reused: Int
        var reusedBytes: Int64
        var missing: [String]
    }

    init(_ result: BackupResult) {
        name = result.name
        path = result.path
        mode = result.manifest.mode.rawValue
        consistentSnapshot = result.manifest.consistentSnapshot
        tables = result.manifest.tables.map { Table(table: $0.tableName.description, rows: $0.rows, bytes: $0.bytes) }
        rows = result.manifest.totalRows
        rawBytes = result.rawBytes
        bytes = result.manifest.totalBytes
        seconds = result.seconds
        warnings = result.manifest.warnings
        if let section = result.manifest.storage {
            storage = StorageJSON(
                buckets: section.buckets.count, objects: section.objects.count, downloaded: section.downloaded.count,
                downloadedBytes: section.downloaded.size, reused: section.reused.count,
                reusedBytes: section.reused.size, missing: section.missing)
        }
    }
}
