/// Where a restore writes: the direct connection (one transaction) or the REST API (batched
/// upserts). The engine holds what both share (archive, selection, checksums, the plan,
/// sequence arithmetic, the result); a destination holds only what its transport needs.
///
/// The engine calls, in order: `catalog`, `check`, then either `abandon` (dry run) or `load`,
/// `sequenceState`/`columnMaximum`/`setSequence` per sequence, and `commit`; `abandon` on
/// any error.
protocol RestoreDestination: AnyObject {
    /// The target's tables in `schemas`, and the relations there that are not tables (views),
    /// with what each is. With `--create-schema` (direct) the pre-data DDL runs first.
    func catalog(schemas: [String], selected: [Manifest.Table]) throws -> (
        tables: [CatalogTable], nonTables: [TableName: String]
    )

    /// Whether the target's column types can be compared with the backup's (REST sees only
    /// the OpenAPI `format`).
    var comparesTypes: Bool { get }

    /// Whether a dry run can write everything and roll it back (direct: one transaction); REST
    /// cannot undo, so its dry run checks the plan only.
    var canRehearse: Bool { get }

    /// Runs the checks a commit would run (deferred constraints), without committing.
    func checkDeferred() throws

    /// Where the rows go, for the user: host, port and database (never a password), or the
    /// REST root.
    var target: String { get }

    /// A line for a "the target does not match" error, saying where the target was looked for
    /// when that may surprise (a database URL naming no database); nil otherwise.
    var locationNote: String? { get }

    /// What `--create-schema` did so far: created, existing and skipped objects.
    var schemaReport: (created: [String], existing: [String], skipped: [String]) { get }

    /// What this destination adds to the plan's warnings.
    func warnings(for selected: [Manifest.Table]) -> [String]

    /// Checks that need the target, before any write (privileges, type conversions).
    func check(_ plan: RestorePlan) throws

    /// The selected tables whose rows go through the plan (REST: not the auth tables, whose
    /// users the Auth admin API creates in `load`).
    func planned(_ selected: [Manifest.Table]) -> [Manifest.Table]

    /// Writes every step's rows (and what must follow them), in plan order.
    func load(
        _ plan: RestorePlan, selected: [Manifest.Table], progress: (@Sendable (TableName, Int, Int) -> Void)?
    ) throws
        -> RestoreLoad

    /// A sequence in the target: nil when it has none of that name.
    func sequenceState(_ sequence: Manifest.Sequence) throws -> SequenceState?

    /// The largest value of an integer column a sequence feeds, nil when unknown or empty.
    func columnMaximum(_ feed: Manifest.ColumnRef) throws -> Int64?

    /// Sets a sequence; a note when it could not.
    func setSequence(_ name: TableName, to value: Int64, isCalled: Bool) throws -> String?

    /// Makes the restore permanent (direct: COMMIT).
    func commit() throws

    /// Ends without committing what can still be undone (direct: ROLLBACK).
    func abandon()
}

/// What a destination wrote.
struct RestoreLoad {
    var tables: [RestoreResult.TableOutcome]
    /// Objects `--create-schema` created, found existing, and grants it skipped.
    var schemaCreated: [String] = []
    var schemaExisting: [String] = []
    var schemaSkipped: [String] = []
    /// Auth users the Auth admin API created or found (REST), and those that must reset their
    /// password; nil when auth rows were written as table rows.
    var authUsers: (created: Int, existing: Int, needReset: [String])?
}

/// A target sequence as far as its transport can see it.
struct SequenceState {
    var increment: Int64
    var minimum: Int64
    /// The last value handed out (or about to be), nil when the transport cannot read it (REST).
    var lastUsed: Int64?
}

/// The value a sequence is set to after a restore: above the backup's value, the target's own
/// current value and the restored columns' maxima. Sequences never move backwards, so a restore
/// into a live database never causes key reuse.
enum SequenceArithmetic {
    /// The last value a sequence handed out, from its `last_value` and `is_called`.
    static func lastUsed(lastValue: Int64, isCalled: Bool, increment: Int64) -> Int64 {
        isCalled ? lastValue : lastValue - increment
    }

    /// `setval(value, isCalled)` arguments.
    static func target(backup: Manifest.Sequence, state: SequenceState, maxima: [Int64]) -> (
        value: Int64, isCalled: Bool
    ) {
        var highest = lastUsed(lastValue: backup.lastValue, isCalled: backup.isCalled, increment: backup.increment)
        if let current = state.lastUsed { highest = max(highest, current) }
        for value in maxima { highest = max(highest, value) }
        return highest < state.minimum ? (state.minimum, false) : (highest, true)
    }
}
