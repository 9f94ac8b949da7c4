import ArgumentParser
import Foundation
import SupabackupKit

struct CatObjectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat-object",
        abstract: "Write one Storage object's bytes from a backup to stdout (or a file).",
        discussion: "The sibling of cat for files backed up with --with-storage; checks the SHA-256 as it streams.")

    @Argument(help: "The backup's name, or latest.")
    var name: String

    @Argument(help: "The object: BUCKET/KEY (the bucket's id, then the object's key).")
    var object: String

    @OptionGroup var location: LocationOptions

    @Option(name: .shortAndLong, help: ArgumentHelp("Write to this new file instead of stdout.", valueName: "file"))
    var output: String?

    @OptionGroup var storage: StorageOptions

    @OptionGroup(title: "Encryption (age)") var keys: IdentityOptions

    func run() throws {
        try storage.apply()
        try Terminal.run {
            let directory = try location.existing()
            let archive = try BackupArchive.open(name: name, in: directory, identities: try keys.resolve())
            let entry = try archive.storageObject(named: object)
            guard let output else {
                try Terminal.streamToStdout { write in try archive.readObject(entry, to: write) }
                return
            }
            // Written beside the target and renamed when complete and checked: never a partial file
            // under the name, and a write failure (disk full) is an error, not a quiet stop.
            guard !FileManager.default.fileExists(atPath: output) else {
                throw UsageError("\(output) exists; not overwritten")
            }
            let partial = output + ".partial"
            guard FileManager.default.createFile(atPath: partial, contents: nil),
                let file = FileHandle(forWritingAtPath: partial)
            else { throw UsageError("cannot create \(partial)") }
            do {
                try archive.readObject(entry) { try file.write(contentsOf: Data($0)) }
                try file.close()
                try FileManager.default.moveItem(atPath: partial, toPath: output)
            } catch {
                try? file.close()
                try? FileManager.default.removeItem(atPath: partial)
                throw error
            }
        }
    }
}
