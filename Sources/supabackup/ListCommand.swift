import ArgumentParser
import Foundation
import SupabackupKit

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the backups in a folder, newest first.")

    @OptionGroup var location: LocationOptions

    @OptionGroup var storage: StorageOptions

    @Flag(help: "One JSON array on stdout.")
    var json = false

    func run() throws {
        try storage.apply()
        try Terminal.run {
            let directory = try location.existing()
            let backups = try BackupListing.list(in: directory)
            for backup in backups where backup.readableByOthers {
                Terminal.stderr(
                    "supabackup: warning: \(backup.name) can be read by other users (chmod -R go-rwx \(directory)/\(backup.name))"
                )
            }
            if json {
                let encoder = JSONEncoder()
                encoder.keyEncodingStrategy = .convertToSnakeCase
                encoder.dateEncodingStrategy = .iso8601
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(backups), as: UTF8.self))
            } else if backups.isEmpty {
                Terminal.stderr("supabackup: no backups in \(directory)")
            } else {
                print(Self.render(backups))
            }
        }
    }

    static func render(_ backups: [BackupSummary]) -> String {
        var rows = [["NAME", "TIME (UTC)", "MODE", "TABLES", "ROWS", "SIZE"]]
        let formatter = ISO8601DateFormatter()
        for backup in backups {
            if let problem = backup.problem {
                rows.append([backup.name, formatter.string(from: backup.time), "damaged: \(problem)", "", "", ""])
                continue
            }
            rows.append([
                backup.name, formatter.string(from: backup.time), backup.encrypted ? "encrypted" : backup.mode ?? "?",
                backup.tables.map(String.init) ?? "",
                backup.rows.map(String.init) ?? "", backup.bytes.map(formatBytes) ?? "",
            ])
        }
        let widths = (0..<6).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
