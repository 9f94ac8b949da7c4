import ArgumentParser
import Foundation
import SupabackupKit

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every file of a backup against its manifest, without a database.",
        discussion: "Checks size, SHA-256, zstd integrity, row count, and that each line is a JSON object. Exit 3 on damage.")

    @Argument(help: "The backup's name.")
    var name: String

    @Option(name: .customLong("dir"), help: ArgumentHelp("Backups folder.", valueName: "dir"))
    var directory = "backups"

    func run() throws {
        try Terminal.run {
            let archive = try BackupArchive.open(name: name, in: directory)
            let report = ArchiveVerifier.verify(archive)
            for check in report.tables where check.problem == nil {
                print("ok \(check.table): \(check.rows) rows, \(formatBytes(check.bytes))")
            }
            guard report.isIntact else {
                for problem in report.allProblems { Terminal.stderr("supabackup: damaged: \(problem)") }
                Terminal.stderr("supabackup: error: backup \(name) is damaged (\(report.allProblems.count) problems)")
                throw ExitCode(ExitCodes.damaged)
            }
            print("backup \(name) is intact: \(report.tables.count) tables, \(archive.manifest.totalRows) rows")
        }
    }
}
