/// Where a backup reads from: a direct libpq connection or the PostgREST API.
///
/// The engine asks a source for its tables, then for each table's rows as NDJSON lines in the
/// archive's encoding, and writes the archive; the archive never knows which transport made it.
protocol BackupSource: RowReader {
    /// `direct` or `rest`, recorded in the manifest.
    var mode: BackupMode { get }
    var consistentSnapshot: Bool { get }
    /// False when auth users were read without their password hashes.
    var authPasswordHashes: Bool { get }
    /// False when the transport cannot see every foreign key.
    var foreignKeysComplete: Bool { get }

    /// Every table of `schemas` (plus those `filters` name in other schemas) this source can read.
    func tables(in schemas: [String], filters: [TableFilter]) throws -> [SourceTable]

    /// Holds the tables still (locks, where the transport has them) while they are read.
    /// - Returns: the tables to read: all of them, less relations that turned out not to be
    ///   tables (REST lists auto-updatable views like tables).
    func prepare(_ tables: [SourceTable]) throws -> [SourceTable]

    /// The DDL of `schemas` (their objects, and the tables with what is bound to them), with
    /// warnings for what it cannot carry; nil when the transport cannot see it.
    func schemaScript(for tables: [SourceTable], schemas: [String]) throws -> (
        script: SchemaScript, warnings: [String]
    )?

    /// The sequences feeding the tables' columns, with their values.
    func sequences(feeding tables: [SourceTable]) throws -> [Manifest.Sequence]

    func source() throws -> (source: Manifest.Source, serverVersion: String)

    /// Where the tables were looked for, for errors about tables not found.
    var location: String { get }

    /// Warnings the manifest should carry (e.g. what the transport could not see).
    var warnings: [String] { get }

    /// Ends the read (commits the snapshot) after every table was read.
    func finish() throws
}

/// A source that can spread its reads over several connections sharing one snapshot (direct
/// mode). REST has no shared snapshot and reads one table at a time.
protocol ParallelBackupSource: BackupSource {
    /// Each table's size and whether it can be read in block ranges, for spreading the reads
    /// over several connections; nil when this source cannot share its snapshot after all.
    func parallelLayout(of tables: [SourceTable]) throws -> [TableLayout]?

    /// Why the snapshot could not be shared (the backup then reads with one connection).
    var sharingFailure: String? { get }

    /// Another reader seeing exactly this source's snapshot, for a worker thread.
    /// - Parameter interrupt: lets the scheduler end a wait for the server that outlasts the work.
    func makeReader(interrupt: ConnectionInterrupt) throws -> any RowReader
}

/// Reads rows for the backup engine: the source itself, or a worker sharing its snapshot.
protocol RowReader: AnyObject {
    /// Streams the rows of `slice` (nil: the whole table); each chunk holds whole lines, each
    /// ending in `\n`.
    /// - Returns: the number of rows.
    func readRows(of table: SourceTable, slice: TableSlice?, _ body: (UnsafeRawBufferPointer) throws -> Void) throws
        -> Int64

    /// Ends a worker's transaction and connection (the source ends with `finish()`).
    func close()
}

/// What parallel reading needs to know of a table.
struct TableLayout {
    /// Bytes on disk, to read the largest tables first.
    var bytes: Int64
    /// Heap blocks when the table can be read in block ranges, nil otherwise.
    var splittableBlocks: Int64?
    /// A partitioned table's leaf partitions, when each can be read on its own.
    var leaves: [Leaf]? = nil

    struct Leaf {
        var name: TableName
        var bytes: Int64
        var blocks: Int64?
    }
}

/// A table as a source describes it, already in the manifest's terms.
struct SourceTable {
    var name: TableName
    var partitioned: Bool
    var columns: [Manifest.Column]
    var primaryKey: [String]
    var foreignKeys: [Manifest.ForeignKey]
    /// The planner's row estimate, for progress.
    var estimatedRows: Int64
    /// Transport-specific handle (the table's oid in direct mode).
    var oid: Int64 = 0
    /// Direct mode: per column, how the client renders it from COPY text (nil: the server).
    var renderKinds: [ClientRendering.Kind?] = []
}
