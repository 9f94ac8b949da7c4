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

    @Option(name: .customLong("out"), help: ArgumentHelp("Backups folder.", valueName: "dir"))
    var directory = "backups"

    @Option(name: .customLong("schema"), help: ArgumentHelp("Schema to back up (repeatable; default: public).", valueName: "s"))
    var schemas: [String] = []

    @Option(name: .customLong("table"), help: ArgumentHelp("Only this table: name or schema.name (repeatable).", valueName: "t"))
    var tables: [String] = []

    @Option(name: .customLong("exclude-table"), help: ArgumentHelp("Skip this table (repeatable).", valueName: "t"))
    var excludeTables: [String] = []

    @Flag(
        name: .customLong("with-auth"),
        help: "Also back up Supabase Auth's users, identities and MFA factors (direct mode).")
    var withAuth = false

    @Option(name: .customLong("compression-level"), help: "zstd level, 1 (fast) to 19 (small).")
    var compressionLevel: Int32 = 3

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (1...22).contains(compressionLevel) else {
            throw ValidationError("--compression-level must be between 1 and 22")
        }
    }

    func run() throws {
        try Terminal.run {
            let options = BackupOptions(
                transport: try connection.backupTransport(), outputDirectory: directory,
                schemas: schemas.isEmpty ? ["public"] : schemas, tables: try parseTables(tables),
                excludeTables: try parseTables(excludeTables), compressionLevel: compressionLevel, withAuth: withAuth)
            let logger = output.makeLogger("supabackup.backup")
            let result = try BackupEngine(options: options, logger: logger).run()
            let manifest = result.manifest
            if !output.quiet {
                Terminal.stderr(
                    "supabackup: backed up \(manifest.tables.count) tables, \(manifest.totalRows) rows, "
                        + "\(formatBytes(manifest.totalBytes)) to \(result.path)")
            }
            print(result.name)
        }
    }
}
