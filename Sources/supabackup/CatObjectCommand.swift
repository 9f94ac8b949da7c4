import ArgumentParser
import Foundation
import SupabackupKit

struct CatObjectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat-object",
        abstract: "Write one Storage object's bytes from a backup to stdout (or a file).",
        discussion: "The sibling of cat for files backed up with --with-storage; checks the SHA-256 as it streams.")

    @Argument(help: "The backup's name.")
    var name: String

    @Argument(help: "The object: BUCKET/KEY (the bucket's id, then the object's key).")
    var object: String

    @Option(name: .customLong("dir"), help: ArgumentHelp("Backups folder.", valueName: "dir"))
    var directory = "backups"

    @Option(name: .shortAndLong, help: ArgumentHelp("Write to this new file instead of stdout.", valueName: "file"))
    var output: String?

    @OptionGroup var storage: StorageOptions

    @OptionGroup(title: "Encryption (age)") var keys: IdentityOptions

    func run() throws {
        try storage.apply()
        try Terminal.run {
            let archive = try BackupArchive.open(name: name, in: directory, identities: try keys.resolve())
            let entry = try archive.storageObject(named: object)
            var sink = FileHandle.standardOutput
            var path: String?
            if let output {
                guard FileManager.default.createFile(atPath: output + ".partial", contents: nil),
                    let handle = FileHandle(forWritingAtPath: output + ".partial")
                else { throw UsageError("cannot create \(output)") }
                guard !FileManager.default.fileExists(atPath: output) else {
                    try? FileManager.default.removeItem(atPath: output + ".partial")
                    throw UsageError("\(output) exists; not overwritten")
                }
                sink = handle
                path = output
            }
            struct OutputClosed: Error {}
            do {
                try archive.readObject(entry) { chunk in
                    do { try sink.write(contentsOf: Data(chunk)) } catch { throw OutputClosed() }
                }
            } catch is OutputClosed {
                if let path { try? FileManager.default.removeItem(atPath: path + ".partial") }
                return
            } catch {
                if let path { try? FileManager.default.removeItem(atPath: path + ".partial") }
                throw error
            }
            if let path {
                try sink.close()
                try FileManager.default.moveItem(atPath: path + ".partial", toPath: path)
            }
        }
    }
}
