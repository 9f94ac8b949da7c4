import Foundation
import Logging

/// Where a restore writes to.
public enum RestoreTarget: Sendable {
    case direct(ConnectionString)
    case rest(RESTSettings)
}

public struct RestoreOptions: Sendable {
    public var target: RestoreTarget
    /// The backups folder holding the backup.
    public var directory: String
    public var name: String
    /// Restore only these tables (default: all in the backup).
    public var tables: [TableFilter]
    public var dryRun: Bool
    /// `session_replication_role = replica`: no user triggers, no FK checks.
    public var disableTriggers: Bool
    /// Create missing types, tables, indexes, policies, ... from the backup's schema.sql, in the
    /// same transaction as the rows.
    public var createSchema = false
    /// Create schema.sql's objects and load no rows (like `pg_restore --schema-only`): no
    /// sequence is set and no materialized view refreshed. Implies `createSchema`.
    public var schemaOnly = false
    /// Decrypt an encrypted backup (age identities); not needed for unencrypted ones.
    public var identities: [AgeIdentity] = []
    /// Restore the backup's Auth tables (users, identities, MFA factors); skipped otherwise.
    public var withAuth = false
    /// Called as each table starts loading (table, its position, the number of tables), for a
    /// terminal progress line.
    public var progress: (@Sendable (TableName, Int, Int) -> Void)?
    /// Told where the restore writes (`RestoreResult.target`) once the target is open, before
    /// anything is written.
    public var announce: (@Sendable (String) -> Void)?
    /// Also restore the backup's Storage buckets and objects into this project (Storage API).
    public var storage: StorageSelection?
    /// Connections a fresh restore (`createSchema`, every table created by it) loads tables and
    /// builds indexes over, as `pg_restore -j`; each table then commits on its own. 1 keeps
    /// every restore in one transaction.
    public var jobs = 1

    public init(
        target: RestoreTarget, directory: String = "backups", name: String, tables: [TableFilter] = [],
        dryRun: Bool = false, disableTriggers: Bool = false
    ) {
        self.target = target
        self.directory = directory
        self.name = name
        self.tables = tables
        self.dryRun = dryRun
        self.disableTriggers = disableTriggers
    }

    /// A direct-mode restore.
    public init(
        connection: ConnectionString, directory: String = "backups", name: String, tables: [TableFilter] = [],
        dryRun: Bool = false, disableTriggers: Bool = false
    ) {
        self.init(
            target: .direct(connection), directory: directory, name: name, tables: tables, dryRun: dryRun,
            disableTriggers: disableTriggers)
    }
}

/// How a table's rows were loaded.
public enum LoadPath: String, Sendable {
    /// Into an empty table: COPY text straight in.
    case copy
    /// COPY text into a typed stage, then one upsert.
    case upsert
    /// Server-side JSON decoding (composite values), then one upsert.
    case upsertJSON = "upsert-json"
    /// Batched upserts through PostgREST.
    case rest
}

public struct RestoreResult: Sendable {
    public struct TableOutcome: Sendable {
        public var table: TableName
        public var rows: Int64
        /// Rows inserted or updated; the others existed with identical values.
        public var written: Int64
        /// Rows inserted, when the server can tell (not for partitioned tables).
        public var inserted: Int64?
        public var path = LoadPath.upsertJSON
        public var unchanged: Int64 { rows - written }
    }

    public struct SequenceOutcome: Sendable {
        public var sequence: TableName
        /// The value `setval` was given; nextval returns the next one.
        public var value: Int64?
        public var note: String?
    }

    /// Auth users created through the Auth admin API (REST restores), those that existed, and
    /// the created users that had no password hash in the backup and must reset their password.
    public var authUsersCreated = 0
    public var authUsersExisting = 0
    public var passwordResetNeeded: [String] = []

    /// Objects `--create-schema` created, and those it found existing and left alone.
    public var schemaCreated: [String] = []
    public var schemaExisting: [String] = []
    /// Grants from schema.sql the target could not take (missing roles), with why.
    public var schemaSkipped: [String] = []

    /// A dry run that wrote and checked everything, then rolled back.
    public var rehearsed = false
    /// Tables of the backup this restore left out, each with why.
    public var leftOut: [String] = []

    public var name: String
    /// Where it was written (`RestoreDestination.target`).
    public var target = ""
    public var plan: RestorePlan
    public var dryRun: Bool
    public var tables: [TableOutcome]
    public var sequences: [SequenceOutcome]
    /// The Storage part (`--with-storage`); its `unwritable` objects make the restore partial.
    public var storage: StorageRestoreResult?
    /// Objects and bytes a dry run would upload at most.
    public var storagePlanned: (objects: Int, bytes: Int64)?
    /// Storage objects the backup holds that this restore left alone (no `--with-storage`).
    public var storageNotRequested = 0
}

/// Restores a backup over one direct connection, in one transaction: all or nothing.
public struct RestoreEngine {
    public var options: RestoreOptions
    public var logger: Logger

    public init(options: RestoreOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public func run() throws -> RestoreResult {
        let archive = try BackupArchive.open(
            name: options.name, in: options.directory, identities: options.identities)
        let all = archive.manifest.tables.map(\.tableName)
        let names = Set(try options.tables.select(from: all, excluding: []))
        // Auth rows only on request: restoring them into a live project overwrites its users.
        let selected = archive.manifest.tables.filter { table in
            let named = options.tables.contains { $0.schema == table.schema && $0.matches(table.tableName) }
            if Platform.isInternal(table.tableName) && !named { return false }
            return names.contains(table.tableName) && (options.withAuth || table.schema != "auth" || named)
                && !options.schemaOnly
        }
        if options.withAuth && !options.schemaOnly && !selected.contains(where: { $0.schema == "auth" }) {
            throw UsageError(
                "--with-auth: this backup holds no auth tables (back up with --with-auth)", code: .unknownName)
        }
        var schema: SchemaScript?
        if options.createSchema || options.schemaOnly {
            guard var script = try archive.schemaScript() else {
                throw UsageError(
                    "\(options.schemaOnly ? "--schema-only" : "--create-schema"): backup \(archive.name) was made over REST (mode \(archive.manifest.mode)), which cannot see table definitions; it has no schema.sql. Create the tables first (e.g. from your migrations), or restore a direct-mode backup",
                    code: .notSupported)
            }
            if options.schemaOnly { script.statements.removeAll { $0.kind == "refresh" } }
            schema = script
        }
        // Damaged files are refused before the database is touched.
        // A fresh restore over several connections commits table by table, so a damaged file
        // found mid-stream would leave the tables before it: it reads everything first.
        let commitsInParts = options.createSchema && options.jobs > 1
        if archive.storage.isRemote, case .direct = options.target, !commitsInParts {
            // One download, not two: each file's SHA-256 is checked as it streams into the one
            // transaction, which rolls back on a mismatch; the listing's sizes are checked first.
            try ArchiveVerifier.checkListedSizes(archive, tables: selected)
        } else {
            try ArchiveVerifier.checkChecksums(archive, tables: selected)
        }
        var files: StorageRestoreResult?
        if let selection = options.storage {
            let planned = try StorageRestore.plan(archive, selection)
            if options.dryRun {
                var result = try restoreTables(archive: archive, selected: selected, schema: schema, dryRun: true)
                result.leftOut = options.schemaOnly ? [] : leftOut(archive.manifest, selected)
                result.storagePlanned = (planned.objects.count, planned.objects.reduce(0) { $0 + $1.size })
                return result
            }
            // Files first: when the rows arrive (one transaction), every file they name is there,
            // and in a new project the app's triggers on storage.objects (which --create-schema
            // brings back with the tables) do not fire for restored files. The table plan is
            // checked before any upload, so a target that cannot take the rows changes nothing.
            _ = try restoreTables(archive: archive, selected: selected, schema: schema, dryRun: true)
            files = try StorageRestore(selection: selection, archive: archive, logger: logger).run(
                buckets: planned.buckets, objects: planned.objects)
        }
        var result = try restoreTables(archive: archive, selected: selected, schema: schema, dryRun: options.dryRun)
        result.leftOut = options.schemaOnly ? [] : leftOut(archive.manifest, selected)
        result.storage = files
        if options.storage == nil { result.storageNotRequested = archive.manifest.storage?.objects.count ?? 0 }
        return result
    }

    private func restoreTables(
        archive: BackupArchive, selected: [Manifest.Table], schema: SchemaScript?, dryRun: Bool
    ) throws -> RestoreResult {
        let destination = try makeDestination(archive: archive, schema: schema, jobs: dryRun ? 1 : options.jobs)
        options.announce?(destination.target)
        do {
            var result = try restore(archive: archive, selected: selected, into: destination, dryRun: dryRun)
            result.target = destination.target
            return result
        } catch {
            destination.abandon()
            throw error
        }
    }

    private func makeDestination(archive: BackupArchive, schema: SchemaScript?, jobs: Int) throws
        -> any RestoreDestination
    {
        switch options.target {
        case .direct(let connection):
            return try DirectRestoreDestination(
                connectionString: connection, archive: archive, schema: schema,
                disableTriggers: options.disableTriggers, jobs: jobs, logger: logger)
        case .rest(let settings):
            guard schema == nil else {
                throw UsageError(
                    "--create-schema needs a direct connection (--db-url): the REST API cannot create tables",
                    code: .notSupported)
            }
            guard !options.disableTriggers else {
                throw UsageError(
                    "--disable-triggers needs a direct connection; the REST API cannot change session_replication_role",
                    code: .notSupported)
            }
            return try RESTRestoreDestination(settings: settings, archive: archive, logger: logger)
        }
    }

    /// What both destinations share: the plan, the dry run, sequences, the result; a failure
    /// says what to add where the backup has it.
    private func restore(
        archive: BackupArchive, selected: [Manifest.Table], into destination: any RestoreDestination, dryRun: Bool
    ) throws -> RestoreResult {
        do {
            return try restoreSteps(archive: archive, selected: selected, into: destination, dryRun: dryRun)
        } catch var error as RestoreError {
            if let advice = Self.advice(for: error.underlying, manifest: archive.manifest, selected: selected) {
                // A missing parent's own advice replaces the generic one; a DDL step keeps its name.
                error.advice =
                    error.underlying.sqlState == "23503"
                    ? advice : [error.advice, advice].compactMap { $0 }.joined(separator: "; ")
            }
            throw error
        }
    }

    private func restoreSteps(
        archive: BackupArchive, selected: [Manifest.Table], into destination: any RestoreDestination, dryRun: Bool
    ) throws -> RestoreResult {
        let planned = destination.planned(selected)
        let schemas = Array(Set(planned.map(\.schema))).sorted()
        let (target, nonTables) = try destination.catalog(schemas: schemas, selected: planned)
        var plan: RestorePlan
        do {
            plan = try RestorePlan(
                manifest: archive.manifest, tables: planned, target: target, disableTriggers: options.disableTriggers,
                compareTypes: destination.comparesTypes, views: nonTables)
        } catch var error as RestoreValidationError {
            if let note = destination.locationNote { error.problems.append(note) }
            throw error
        }
        plan.warnings += destination.warnings(for: selected)
        try destination.check(plan)
        // A dry run the user asked for rehearses where it can: everything written and checked in
        // the one transaction, then rolled back, so it fails wherever the real run would.
        if dryRun && !(options.dryRun && destination.canRehearse) {
            destination.abandon()
            var result = RestoreResult(name: archive.name, plan: plan, dryRun: true, tables: [], sequences: [])
            (result.schemaCreated, result.schemaExisting, result.schemaSkipped) = destination.schemaReport
            return result
        }
        let load = try destination.load(plan, selected: selected, progress: options.progress)
        // setval is not undone by a rollback: a rehearsal computes the values without setting them.
        let sequences = try resetSequences(
            archive.manifest.sequences, restored: Set(plan.steps.map(\.table)), in: destination, apply: !dryRun)
        if dryRun {
            try destination.checkDeferred()
            destination.abandon()
            var result = RestoreResult(
                name: archive.name, plan: plan, dryRun: true, tables: load.tables, sequences: sequences)
            (result.schemaCreated, result.schemaExisting, result.schemaSkipped) = destination.schemaReport
            result.rehearsed = true
            return result
        }
        try destination.commit()

        var result = RestoreResult(
            name: archive.name, plan: plan, dryRun: false, tables: load.tables, sequences: sequences)
        result.schemaCreated = load.schemaCreated
        result.schemaExisting = load.schemaExisting
        result.schemaSkipped = load.schemaSkipped
        if let auth = load.authUsers {
            (result.authUsersCreated, result.authUsersExisting, result.passwordResetNeeded) = auth
        } else if archive.manifest.authPasswordHashes == false,
            let users = selected.first(where: { $0.schema == "auth" && $0.name == "users" })
        {
            result.passwordResetNeeded = [
                "all \(users.rows) users in this backup (it was made over REST, without password hashes)"
            ]
        }
        return result
    }

    /// Moves every sequence feeding a restored column forward (`SequenceArithmetic`), through
    /// whatever the destination can read and set.
    private func resetSequences(
        _ sequences: [Manifest.Sequence], restored: Set<TableName>, in destination: any RestoreDestination,
        apply: Bool = true
    ) throws -> [RestoreResult.SequenceOutcome] {
        var outcomes: [RestoreResult.SequenceOutcome] = []
        for sequence in sequences {
            let feeds = sequence.feeds.filter { restored.contains($0.tableName) }
            guard !feeds.isEmpty else { continue }
            let name = TableName(schema: sequence.schema, name: sequence.name)
            guard let state = try destination.sequenceState(sequence) else {
                outcomes.append(.init(sequence: name, value: nil, note: "not in the target; not set"))
                continue
            }
            guard state.increment > 0 else {
                outcomes.append(.init(sequence: name, value: nil, note: "descending; left as it is"))
                continue
            }
            let maxima = try feeds.compactMap { try destination.columnMaximum($0) }
            let (value, isCalled) = SequenceArithmetic.target(backup: sequence, state: state, maxima: maxima)
            if !apply {
                outcomes.append(.init(sequence: name, value: value, note: nil))
            } else if let note = try destination.setSequence(name, to: value, isCalled: isCalled) {
                outcomes.append(.init(sequence: name, value: nil, note: note))
            } else {
                outcomes.append(.init(sequence: name, value: value, note: nil))
            }
        }
        return outcomes
    }
}

extension RestoreEngine {
    /// The backup's tables this restore leaves out, each with why.
    func leftOut(_ manifest: Manifest, _ selected: [Manifest.Table]) -> [String] {
        let chosen = Set(selected.map(\.tableName))
        return manifest.tables.filter { !chosen.contains($0.tableName) }.map { table in
            let name = table.tableName
            if table.schema == "auth" && !options.withAuth { return "\(name) (auth rows need --with-auth)" }
            if Platform.isInternal(name) { return "\(name) (platform internals need --table \(name))" }
            return "\(name) (not named by --table)"
        }
    }

    /// What to add when the target lacks what the backup's rows need and the backup has it:
    /// a foreign key into a table this restore left out (auth.users without --with-auth), or
    /// a schema the target does not have.
    static func advice(for error: PostgresError, manifest: Manifest, selected: [Manifest.Table]) -> String? {
        let chosen = Set(selected.map(\.tableName))
        switch error.sqlState {
        case "23503":
            guard let constraint = error.constraint,
                let key = manifest.tables.lazy.flatMap(\.foreignKeys).first(where: { $0.name == constraint })
            else { return nil }
            let parent = TableName(schema: key.referencedSchema, name: key.referencedTable)
            guard manifest.table(parent) != nil, !chosen.contains(parent) else { return nil }
            return parent.schema == "auth"
                ? "the referenced rows are in \(parent), which this backup holds but this restore leaves out: add --with-auth"
                : "the referenced rows are in \(parent), which this backup holds but this restore leaves out: add --table \(parent) (or restore all tables)"
        case "3F000":
            let needsAuth = selected.contains { table in
                table.schema == "auth" || table.foreignKeys.contains { $0.referencedSchema == "auth" }
            }
            return needsAuth
                ? "the target lacks a schema these tables need, and their foreign keys reference auth.users: restore into a Supabase project (a fresh one has the auth schema), or leave those tables out with --table"
                : "the target lacks a schema these tables need: create it first"
        default:
            return nil
        }
    }
}

/// A restore failed; the transaction was rolled back and the target is unchanged, unless the
/// restore had committed part of its work (`partial`).
public struct RestoreError: Error, CustomStringConvertible, Sendable {
    /// The table being restored, nil when the failure came at commit.
    public var table: TableName?
    public var underlying: PostgresError
    public var advice: String?
    /// Part of the restore was committed before the failure (a fresh restore with `--jobs`).
    public var partial = false

    public init(table: TableName?, underlying: PostgresError, advice: String?, partial: Bool = false) {
        self.table = table
        self.underlying = underlying
        self.advice = advice
        self.partial = partial
    }

    public var description: String {
        var text = table.map { "table \($0): " } ?? "at commit: "
        text += underlying.description
        if let advice { text += "; \(advice)" }
        return text
            + (partial
                ? " (the tables loaded before the failure stay; run the same restore again to complete it)"
                : " (rolled back: nothing was changed)")
    }
}
