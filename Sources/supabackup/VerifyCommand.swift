import ArgumentParser
import Foundation
import SupabackupKit

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every file of a backup against its manifest, without a database.",
        discussion: """
            Checks size, SHA-256, zstd integrity, row count, and that each line is a JSON object. With --deep,
            also that primary keys are unique and every foreign key between backed-up tables resolves.
            In object storage (s3://), compares the listed sizes without downloading unless --read-data
            (or --deep) is given. Exit 3 on damage.
            """)

    @Argument(help: "The backup's name.")
    var name: String

    @Option(name: .customLong("dir"), help: ArgumentHelp("Backups folder.", valueName: "dir"))
    var directory = "backups"

    @OptionGroup var storage: StorageOptions

    @Flag(help: "Also check primary-key uniqueness and foreign-key references inside the archive.")
    var deep = false

    @Flag(
        name: .customLong("read-data"),
        help: "Download and check every byte (the default for local folders; object storage lists sizes).")
    var readData = false

    @Flag(help: "One JSON object on stdout.")
    var json = false

    struct Output: Encodable {
        struct Table: Encodable {
            var table: String
            var file: String
            var rows: Int64
            var bytes: Int64
            var problem: String?
        }
        var name: String
        var intact: Bool
        var tables: [Table]
        var problems: [String]
        var findings: [DeepVerifier.Finding]?
    }

    func run() throws {
        try storage.apply()
        try Terminal.run {
            let archive = try BackupArchive.open(name: name, in: directory)
            let listingOnly = archive.storage.isRemote && !readData && !deep
            let report = listingOnly ? ArchiveVerifier.verifyListing(archive) : ArchiveVerifier.verify(archive)
            let findings = deep && report.isIntact ? try DeepVerifier.check(archive) : nil
            let intact = report.isIntact && (findings?.isEmpty ?? true)
            if json {
                try JSONOutput.print(
                    Output(
                        name: name, intact: intact,
                        tables: report.tables.map {
                            .init(
                                table: $0.table.description, file: $0.file, rows: $0.rows, bytes: $0.bytes,
                                problem: $0.problem)
                        },
                        problems: report.allProblems, findings: findings))
                if !intact { throw ExitCode(ExitStatus.damaged) }
                return
            }
            for check in report.tables where check.problem == nil {
                print("ok \(check.table): \(check.rows) rows, \(formatBytes(check.bytes))")
            }
            for problem in report.allProblems { Terminal.stderr("supabackup: damaged: \(problem)") }
            for finding in findings ?? [] {
                Terminal.stderr("supabackup: \(finding.kind): \(finding.table): \(finding.message)")
            }
            guard intact else {
                let count = report.allProblems.count + (findings?.count ?? 0)
                Terminal.stderr("supabackup: error: backup \(name) is damaged or inconsistent (\(count) problems)")
                throw ExitCode(ExitStatus.damaged)
            }
            print(
                "backup \(name) is intact: \(report.tables.count) tables, \(archive.manifest.totalRows) rows"
                    + (deep ? "; keys unique and references resolve" : "")
                    + (listingOnly ? " (sizes from the listing; --read-data reads every byte)" : ""))
        }
    }
}
