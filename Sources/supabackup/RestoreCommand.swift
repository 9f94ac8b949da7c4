import ArgumentParser
import Foundation
import SupabackupKit

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup into a database: upserts in foreign-key order, in one transaction.",
        discussion: """
            Without NAME, lists the backups in DIR and restores nothing. NAME must be a backup folder \
            directly inside DIR. Rows whose primary key exists are updated to the backup's values, \
            others inserted; rows only in the target stay. Triggers fire unless --disable-triggers.
            """
    )

    @Argument(help: "The backup's name, as printed by backup and list, or latest.")
    var name: String?

    @OptionGroup var connection: ConnectionOptions

    @OptionGroup var location: LocationOptions

    @OptionGroup var storage: StorageOptions

    @OptionGroup(title: "Encryption (age)") var keys: IdentityOptions

    @OptionGroup(title: "Supabase Storage") var files: StorageFilesOptions

    @Option(
        name: [.customLong("jobs"), .customShort("j")],
        help: ArgumentHelp(
            "Connections a restore into a fresh target loads tables and builds indexes over, like pg_restore -j (each table then commits on its own; see README), and Storage files uploaded at once. (default: 1 for tables, 4 for files)",
            valueName: "n"))
    var jobs: Int?

    @Option(
        name: [.customLong("table"), .customShort("t")],
        help: ArgumentHelp("Only this table: name or schema.name (repeatable).", valueName: "t"))
    var tables: [String] = []

    @Flag(name: .customLong("dry-run"), help: "Check the archive and the target and print the plan; write nothing.")
    var dryRun = false

    @Flag(
        name: .customLong("disable-triggers"),
        help: "Load with session_replication_role = replica: user triggers and foreign-key checks do not fire.")
    var disableTriggers = false

    @Flag(
        name: .customLong("create-schema"),
        help:
            "Create what the target lacks of the backup's schema.sql (tables, views, functions, types, indexes, policies, triggers, grants, ...) in the same transaction."
    )
    var createSchema = false

    @Flag(
        name: .customLong("schema-only"),
        help: "Create the backup's schema.sql objects and load no rows (like pg_restore --schema-only).")
    var schemaOnly = false

    @Flag(name: .customLong("with-auth"), help: "Also restore the backup's Auth users, identities and MFA factors.")
    var withAuth = false

    @OptionGroup var output: OutputOptions

    @Flag(help: "One JSON object on stdout.")
    var json = false

    func validate() throws {
        if let jobs, !(1...64).contains(jobs) { throw ValidationError("--jobs must be between 1 and 64") }
    }

    func run() throws {
        try storage.apply()
        try Terminal.run {
            let directory = try location.existing()
            guard let given = name else {
                let backups = try BackupListing.list(in: directory)
                if backups.isEmpty {
                    Terminal.stderr("supabackup: no backups in \(directory); nothing restored")
                } else {
                    print(ListCommand.render(backups))
                    Terminal.stderr(
                        "supabackup: nothing restored; pick one: supabackup restore \(backups[0].name) --dir \(directory)"
                    )
                }
                throw ExitCode(ExitStatus.usage)
            }
            // `latest` is said as the backup it names, before anything is announced.
            let name = try BackupArchive.resolve(given, in: try StorageLocation.open(directory))
            var options = RestoreOptions(
                target: try connection.restoreTarget(), directory: directory, name: name,
                tables: try parseTables(tables), dryRun: dryRun, disableTriggers: disableTriggers)
            options.createSchema = createSchema || schemaOnly
            options.schemaOnly = schemaOnly
            options.identities = try keys.resolve()
            options.withAuth = withAuth
            options.storage = try files.selection(connection, jobs: jobs ?? 4)
            options.jobs = jobs ?? 1
            if !output.quiet {
                let verb = dryRun ? "checking \(name) against" : "restoring \(name) into"
                // Said once, before anything is written (a Storage restore opens the target twice).
                let said = LockedValue(false)
                options.announce = { target in
                    let first = said.withLock { said in
                        defer { said = true }
                        return !said
                    }
                    if first { Terminal.stderr("supabackup: \(verb) \(target)") }
                }
            }
            if !output.quiet && !json && isatty(STDERR_FILENO) == 1 {
                options.progress = { table, position, count in
                    FileHandle.standardError.write(Data("\r\u{1B}[Krestoring \(table) (\(position)/\(count))".utf8))
                }
            }
            let result = try RestoreEngine(options: options, logger: output.makeLogger("supabackup.restore")).run()
            if options.progress != nil { FileHandle.standardError.write(Data(Terminal.clear.utf8)) }
            if !output.quiet {
                if result.storageNotRequested > 0 {
                    Terminal.stderr(
                        "supabackup: note: this backup also holds \(result.storageNotRequested) Storage objects; add --with-storage to restore them"
                    )
                }
                for warning in result.plan.warnings { Terminal.stderr("supabackup: warning: \(warning)") }
                if !result.leftOut.isEmpty && tables.isEmpty {
                    Terminal.stderr(
                        "supabackup: note: left out \(result.leftOut.count) of the backup's tables: "
                            + result.leftOut.joined(separator: ", "))
                }
                for grant in result.schemaSkipped {
                    Terminal.stderr("supabackup: warning: schema.sql: skipped \(grant)")
                }
            }
            // Objects the target would not take: named, with why, even with --quiet.
            for object in result.storage?.unwritable ?? [] {
                Terminal.stderr(
                    "supabackup: not restored: \(object.bucket)/\(BackupName.printable(object.name)): \(object.reason)")
            }
            try report(result)
            if let unwritable = result.storage?.unwritable, !unwritable.isEmpty {
                if !output.quiet && !json {
                    Terminal.stderr(
                        "supabackup: partial restore: \(unwritable.count) Storage objects could not be written back (listed above); everything else was restored"
                    )
                }
                throw ExitCode(ExitStatus.partial)
            }
        }
    }

    /// What the restore did, on stdout (and its warnings on stderr), as the flags ask.
    private func report(_ result: RestoreResult) throws {
        if json {
            try JSONOutput.print(RestoreJSON(result))
            return
        }
        if result.dryRun {
            // The plan is what a dry run is for: printed even with --quiet.
            for object in result.schemaCreated where output.verbose { print("would create \(object)") }
            print("plan for restoring \(result.name) into \(result.target) (dry run, nothing written):")
            if let (objects, bytes) = result.storagePlanned {
                print(
                    "0. storage: \(objects) objects, \(formatBytes(bytes)) (uploaded first; identical ones skipped)"
                )
            }
            for (index, step) in result.plan.steps.enumerated() {
                print("\(index + 1). \(step.table): \(step.rows) rows, \(step.method)")
            }
            if result.rehearsed {
                print(
                    "rehearsed: every row written and every check run (constraints, foreign keys, schema) in one transaction, then rolled back"
                )
            }
            return
        }
        for sequence in result.sequences where sequence.value == nil && !output.quiet {
            if let note = sequence.note {
                Terminal.stderr("supabackup: warning: sequence \(sequence.sequence): \(note)")
            }
        }
        if !result.passwordResetNeeded.isEmpty && !output.quiet {
            Terminal.stderr(
                "supabackup: warning: these users have no password in the backup and must reset it (send them a recovery email): "
                    + result.passwordResetNeeded.joined(separator: ", "))
        }
        if output.quiet { return }
        if output.verbose {
            for object in result.schemaCreated { print("created \(object)") }
            for object in result.schemaExisting { print("exists, left alone: \(object)") }
            for outcome in result.tables {
                let detail =
                    outcome.inserted.map { "\($0) inserted, \(outcome.written - $0) updated" }
                    ?? "\(outcome.written) inserted or updated"
                print("\(outcome.table): \(outcome.rows) rows (\(detail), \(outcome.unchanged) unchanged)")
            }
            for sequence in result.sequences {
                if let value = sequence.value { print("sequence \(sequence.sequence) set to \(value)") }
            }
        }
        print(Self.summary(result, createSchema: createSchema || schemaOnly))
    }

    /// The closing lines: what was written, in a few numbers.
    static func summary(_ result: RestoreResult, createSchema: Bool) -> String {
        let rows = result.tables.reduce(Int64(0)) { $0 + $1.rows }
        let written = result.tables.reduce(Int64(0)) { $0 + $1.written }
        var lines: [String] = []
        if createSchema {
            lines.append(
                "schema: \(result.schemaCreated.count) objects created, \(result.schemaExisting.count) existed and were left alone"
            )
        }
        if result.authUsersCreated + result.authUsersExisting > 0 {
            lines.append(
                "auth users: \(result.authUsersCreated) created, \(result.authUsersExisting) existed (left alone)")
        }
        if let files = result.storage {
            lines.append(
                "storage: \(files.bucketsCreated.count) buckets created, \(files.bucketsExisting.count) existed; "
                    + "\(files.uploaded) objects uploaded (\(formatBytes(files.uploadedBytes))), \(files.skipped) already there, "
                    + "\(files.unwritable.count) not writable")
        }
        let sequences = result.sequences.filter { $0.value != nil }.count
        lines.append(
            "restored \(result.name) into \(result.target): \(result.tables.count) tables, \(rows) rows (\(written) written, \(rows - written) unchanged), \(sequences) sequences set"
        )
        return lines.joined(separator: "\n")
    }
}

/// `restore --json`.
struct RestoreJSON: Encodable {
    struct Step: Encodable {
        var table: String
        var rows: Int64
        var method: String
    }
    struct Table: Encodable {
        var table: String
        var rows: Int64
        var written: Int64
        var inserted: Int64?
        var unchanged: Int64
    }
    struct Sequence: Encodable {
        var sequence: String
        var value: Int64?
        var note: String?
    }
    var name: String
    var target: String
    var dryRun: Bool
    var rehearsed: Bool
    var leftOut: [String]
    var plan: [Step]
    var tables: [Table]
    var sequences: [Sequence]
    var warnings: [String]
    var schemaCreated: [String]
    var schemaExisting: [String]
    var schemaSkipped: [String]
    var authUsersCreated: Int
    var passwordResetNeeded: [String]
    var storage: StorageJSON?

    struct StorageJSON: Encodable {
        struct Unwritable: Encodable {
            var bucket: String
            var name: String
            var reason: String
        }
        var bucketsCreated: [String]
        var bucketsExisting: [String]
        var uploaded: Int
        var uploadedBytes: Int64
        var skipped: Int
        var unwritable: [Unwritable]
    }

    init(_ result: RestoreResult) {
        name = result.name
        target = result.target
        dryRun = result.dryRun
        rehearsed = result.rehearsed
        leftOut = result.leftOut
        plan = result.plan.steps.map { Step(table: $0.table.description, rows: $0.rows, method: $0.method) }
        tables = result.tables.map {
            Table(
                table: $0.table.description, rows: $0.rows, written: $0.written, inserted: $0.inserted,
                unchanged: $0.unchanged)
        }
        sequences = result.sequences.map { Sequence(sequence: $0.sequence.description, value: $0.value, note: $0.note) }
        warnings = result.plan.warnings
        schemaCreated = result.schemaCreated
        schemaExisting = result.schemaExisting
        schemaSkipped = result.schemaSkipped
        authUsersCreated = result.authUsersCreated
        passwordResetNeeded = result.passwordResetNeeded
        storage = result.storage.map { files in
            StorageJSON(
                bucketsCreated: files.bucketsCreated, bucketsExisting: files.bucketsExisting, uploaded: files.uploaded,
                uploadedBytes: files.uploadedBytes, skipped: files.skipped,
                unwritable: files.unwritable.map { .init(bucket: $0.bucket, name: $0.name, reason: $0.reason) })
        }
    }
}
