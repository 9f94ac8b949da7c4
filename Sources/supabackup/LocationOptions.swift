import ArgumentParser
import Foundation
import SupabackupKit

/// Where backups live, the same option on every command: `--dir` (`--out`, backup's first
/// spelling, still works), else `SUPABACKUP_DIR`, else `./backups`.
struct LocationOptions: ParsableArguments {
    static let environmentVariable = "SUPABACKUP_DIR"

    @Option(
        name: [.customLong("dir"), .customLong("out")],
        help: ArgumentHelp(
            "Where the backups are: a folder or s3://bucket/prefix (default: $SUPABACKUP_DIR, else ./backups).",
            valueName: "dir"))
    var value: String?

    var directory: String {
        if let value { return value }
        if let set = ProcessInfo.processInfo.environment[Self.environmentVariable], !set.isEmpty { return set }
        return "backups"
    }

    /// The location to read backups from. A local folder that does not exist is an error on
    /// every command that reads (only backup creates it).
    func existing() throws -> String {
        let directory = self.directory
        if !StorageLocation.isObjectStorage(directory) && !FileManager.default.fileExists(atPath: directory) {
            throw UsageError(
                "no backups at \(directory): the folder does not exist (name the backups location with --dir or \(Self.environmentVariable))",
                code: .unknownName)
        }
        return directory
    }
}
