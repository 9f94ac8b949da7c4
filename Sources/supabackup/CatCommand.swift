import ArgumentParser
import Foundation
import SupabackupKit

struct CatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "Write a table's rows as NDJSON to stdout (for jq, grep, or loading elsewhere).",
        discussion: "Decompresses as it streams; checks the file's SHA-256 first.")

    @Argument(help: "The backup's name.")
    var name: String

    @Argument(help: "The table: name or schema.name.")
    var table: String

    @Option(name: .customLong("dir"), help: ArgumentHelp("Backups folder.", valueName: "dir"))
    var directory = "backups"

    @OptionGroup var storage: StorageOptions

    @OptionGroup(title: "Encryption (age)") var keys: IdentityOptions

    func run() throws {
        try storage.apply()
        try Terminal.run {
            let archive = try BackupArchive.open(name: name, in: directory, identities: try keys.resolve())
            let filter = try TableFilter(parsing: table)
            let matches = archive.manifest.tables.filter { filter.matches($0.tableName) }
            guard let entry = matches.first else { throw UsageError("backup \(name) has no table \(filter)") }
            guard matches.count == 1 else {
                throw UsageError(
                    "\(filter) is ambiguous: \(matches.map(\.tableName.description).joined(separator: ", ")); give schema.name"
                )
            }
            try Terminal.streamToStdout { write in try archive.readRows(of: entry, write) }
        }
    }
}
