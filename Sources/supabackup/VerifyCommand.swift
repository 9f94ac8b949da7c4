import ArgumentParser
import Foundation
import SupabackupKit

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every file of a backup against its manifest, without a database.",
        discussion: """
            Checks size, SHA-256, zstd integrity, row count, and that each line is a JSON object. With --deep, \
            also that primary keys are unique and every foreign key between backed-up tables resolves. \
            In object storage (s3://), compares the listed sizes without downloading unless --read-data \
            (or --deep) is given. An encrypted backup without --identity: every stored byte against the \
            size and SHA-256 in manifest.json (no key needed); with --identity, everything above. Exit 3 \
            on damage.
            """)

    @Argument(help: "The backup's name, or latest.")
    var name: String

    @OptionGroup var location: LocationOptions

    @OptionGroup var storage: StorageOptions

    @OptionGroup(title: "Encryption (age)") var keys: IdentityOptions

    @Flag(help: "Also check primary-key uniqueness and foreign-key references inside the archive.")
    var deep = false

    @Flag(
        name: .customLong("read-data"),
        help: "Download and check every byte (the default for local folders; object storage lists sizes).")
    var readData = false

    @Flag(help: "One JSON object on stdout.")
    var json = false

    struct Output: Encodable {
        struct File: Encodable {
            var file: String
            var bytes: Int64
            var problem: String?
        }
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
        /// Encrypted backups verified without the key: the stored files.
        var files: [File]?
        var problems: [String]
        var findings: [DeepVerifier.Finding]?
    }

    func run() throws {
        try storage.apply()
        try Terminal.run {
            let directory = try location.existing()
            let location = try StorageLocation.open(directory)
            let name = try BackupArchive.resolve(name, in: location)
            let stored = try BackupArchive.inspect(name: name, in: location)
            let identities = try keys.resolve()
            if case .sealed(let sealed) = stored, identities.isEmpty {
                guard !deep else {
                    throw ArchiveError(
                        .identityNeeded, "backup \(name) is encrypted: --deep reads its rows, give --identity FILE")
                }
                try verifySealed(sealed, in: location)
                return
            }
            let archive = try BackupArchive.open(stored: stored, name: name, in: location, identities: identities)
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
                        files: nil, problems: report.allProblems, findings: findings))
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
                    + (archive.manifest.storage.map { ", \($0.objects.count) Storage objects" } ?? "")
                    + (deep ? "; keys unique and references resolve" : "")
                    + (listingOnly ? " (sizes from the listing; --read-data reads every byte)" : ""))
        }
    }

    private func verifySealed(_ sealed: SealedManifest, in location: any BackupStorage) throws {
        let readAll = !location.isRemote || readData
        let report = ArchiveVerifier.verifySealed(sealed, name: name, in: location, readData: readAll)
        if json {
            try JSONOutput.print(
                Output(
                    name: name, intact: report.isIntact, tables: [],
                    files: report.files.map { .init(file: $0.file, bytes: $0.bytes, problem: $0.problem) },
                    problems: report.allProblems, findings: nil))
            if !report.isIntact { throw ExitCode(ExitStatus.damaged) }
            return
        }
        for check in report.files where check.problem == nil {
            print("ok \(check.file): \(formatBytes(check.bytes))")
        }
        for problem in report.allProblems { Terminal.stderr("supabackup: damaged: \(problem)") }
        guard report.isIntact else {
            Terminal.stderr(
                "supabackup: error: backup \(name) is damaged (\(report.allProblems.count) problems)")
            throw ExitCode(ExitStatus.damaged)
        }
        print(
            "backup \(name) is intact: \(report.files.count) encrypted files, "
                + (readAll ? "every byte matches its SHA-256" : "sizes from the listing; --read-data reads every byte")
                + " (--identity also checks rows and lines)")
    }
}
