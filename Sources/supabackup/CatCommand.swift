import ArgumentParser
import Foundation
import SupabackupKit

struct CatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "Write a table's rows as NDJSON, or the backup's schema.sql, to stdout.",
        discussion:
            "Decompresses (and decrypts) as it streams; checks the file's SHA-256 first. `cat NAME --schema` prints schema.sql, which psql can apply."
    )

    @Argument(help: "The backup's name, or latest.")
    var name: String

    @Argument(help: "The table: name or schema.name.")
    var table: String?

    @Flag(name: .customLong("schema"), help: "Print the backup's schema.sql instead of a table's rows.")
    var schema = false

    @OptionGroup var location: LocationOptions

    @OptionGroup var storage: StorageOptions

    @OptionGroup(title: "Encryption (age)") var keys: IdentityOptions

    func validate() throws {
        if schema == (table != nil) {
            throw ValidationError(schema ? "give a table or --schema, not both" : "give a table, or --schema")
        }
    }

    func run() throws {
        try storage.apply()
        try Terminal.run {
            let directory = try location.existing()
            let archive = try BackupArchive.open(name: name, in: directory, identities: try keys.resolve())
            guard let table else {
                guard let text = try archive.schemaText() else {
                    throw UsageError(
                        "backup \(name) has no schema.sql (it was made over REST, which cannot see definitions)",
                        code: .notSupported)
                }
                try Terminal.streamToStdout { write in try Data(text.utf8).withUnsafeBytes { try write($0) } }
                return
            }
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
