import Foundation

/// Where archives live: a local folder today, object storage next. Modelled on restic's backend:
/// a flat space of named objects plus the one operation a backup needs beyond it, publishing.
///
/// Names are `/`-separated and relative to the storage's root: `NAME/manifest.json`,
/// `NAME/data/public.users.ndjson.zst`. A prefix that ends in `/` is a folder.
///
/// Every implementation promises:
/// - an object is visible under its name only once its writer has finished; a writer dropped
///   without `finish()` leaves nothing readable under that name;
/// - a backup started with `beginBackup` is visible to `list` as a complete backup (a folder
///   holding `manifest.json`) only after `publish`, and the manifest is its last object;
/// - `beginBackup` never hands out a name another backup holds, finished or not.
///
/// What it does not promise, so callers must not assume it:
/// - rename (object stores have none): publishing is the implementation's business, and
///   removing a backup means deleting its manifest first, then the rest;
/// - locks: `maintenanceLock()` may return nil (no lock available), and `unfinishedBackups`
///   reports `held` only where the store can tell;
/// - atomic multi-object changes, or listing that sees a write the instant it finishes.
///
/// Calls block the calling thread; engines call them from their own threads (the compressor's,
/// a reader's), never from a cooperative task that must not block.
public protocol BackupStorage: AnyObject, Sendable {
    /// For messages: the folder's path or the storage's URL.
    var location: String { get }

    /// The entries under `prefix`, sorted by name: objects, and with `recursive` false, the
    /// folders directly under it (names ending in `/`). A prefix that names nothing lists nothing.
    func list(prefix: String, recursive: Bool) throws -> [StoredEntry]

    /// The object or folder `name` (a folder without its trailing `/`), or nil when absent.
    func entry(_ name: String) throws -> StoredEntry?

    /// Opens object `name` for reading from byte `offset`. A missing object is `damaged`
    /// ("is missing"): callers ask for objects a manifest names.
    func openObject(_ name: String, from offset: Int64) throws -> ObjectReader

    /// Deletes object `name`; an absent object is not an error.
    func delete(_ name: String) throws

    /// Deletes every object under folder `prefix` (ending in `/`), and the folder itself.
    func deleteAll(under prefix: String) throws

    /// Reserves backup `name` and starts writing it; nil when the name is taken (a finished or
    /// unfinished backup holds it).
    func beginBackup(named name: String) throws -> PendingBackup?

    /// Leftovers of backups that never published (crashed, killed), with whether a running
    /// process still holds them, for `prune`.
    func unfinishedBackups() throws -> [UnfinishedBackup]

    /// Removes an unfinished backup's objects.
    func removeUnfinished(_ backup: UnfinishedBackup) throws

    /// Keeps other maintenance (another prune) out until released; nil where the storage has no
    /// locks.
    func maintenanceLock() throws -> StorageLock?

    /// Reading is a download (object storage): `verify` compares listed sizes unless asked to
    /// read every byte, and a transactional restore checks each file as it streams it.
    var isRemote: Bool { get }
}

extension BackupStorage {
    public var isRemote: Bool { false }
}

/// One entry of a listing.
public struct StoredEntry: Sendable, Equatable {
    /// The full name; a folder's ends in `/`.
    public var name: String
    public var isFolder: Bool
    public var size: Int64
    public var modified: Date?
    /// Readable by other users of the machine (local folders with group or other bits).
    public var readableByOthers = false

    public init(name: String, isFolder: Bool, size: Int64, modified: Date?, readableByOthers: Bool = false) {
        self.name = name
        self.isFolder = isFolder
        self.size = size
        self.modified = modified
        self.readableByOthers = readableByOthers
    }

    /// The last component, without a folder's trailing `/`.
    public var baseName: String {
        let trimmed = isFolder && name.hasSuffix("/") ? String(name.dropLast()) : name
        return trimmed.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? trimmed
    }
}

/// A backup that started but never published.
public struct UnfinishedBackup: Sendable {
    /// How listings show it (`.NAME.partial` locally).
    public var label: String
    /// The backup name it reserved.
    public var name: String
    public var modified: Date?
    /// A running process still writes it.
    public var held: Bool
    /// What the storage needs to remove it.
    var handle: String

    init(label: String, name: String, modified: Date?, held: Bool, handle: String? = nil) {
        self.label = label
        self.name = name
        self.modified = modified
        self.held = held
        self.handle = handle ?? label
    }
}

/// Released on `release()` or when dropped.
public protocol StorageLock: AnyObject {
    func release()
}

/// A backup being written. Files are named relative to the backup (`data/x.ndjson.zst`).
public protocol PendingBackup: AnyObject, Sendable {
    var name: String { get }
    /// For messages: where the unfinished backup is being written.
    var location: String { get }
    /// A new object in the backup; fails if it exists.
    func create(_ file: String) throws -> ObjectWriter
    /// The same, told how large the object may grow (object storage sizes its upload parts).
    func create(_ file: String, sizeHint: Int64?) throws -> ObjectWriter
    /// Reads back a finished object of this backup (parts being joined).
    func open(_ file: String) throws -> ObjectReader
    /// Makes `file` hold the bytes of `source`, an object of a published backup in the same
    /// storage, without reading them: a hard link locally, a server-side copy in object storage
    /// (incremental file backups). Either way, removing one backup never takes bytes another uses.
    /// - Returns: false when the storage cannot (the caller reads the bytes again).
    func reuse(_ file: String, from source: String) throws -> Bool
    func delete(_ file: String) throws
    /// Writes the manifest last and makes the backup visible as complete.
    /// - Returns: where the finished backup is, for messages.
    func publish(manifest: Data) throws -> String
    /// Removes what was written; safe to call more than once and from a signal handler's queue.
    func discard()
}

extension PendingBackup {
    func create(_ file: String, sizeHint: Int64?) throws -> ObjectWriter { try create(file) }
    func reuse(_ file: String, from source: String) throws -> Bool { false }
}

/// Receives an object's bytes in order.
public protocol ObjectWriter: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Makes the object durable and visible under its name.
    func finish() throws
    /// Gives the object up; nothing stays visible under its name.
    func abort()
}

extension ObjectWriter {
    func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }
}

/// Streams an object's bytes.
public protocol ObjectReader: AnyObject {
    /// Fills `buffer` from the start; 0 at the end of the object.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    func close()
}

extension ObjectReader {
    /// Reads the rest of the object through one buffer of `size` bytes.
    func forEachChunk(size: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = try read(into: buffer)
            if n == 0 { return }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }
}

extension BackupStorage {
    /// Reads a whole small object; more than `limit` bytes is damage, not something to load.
    func read(_ name: String, limit: Int) throws -> Data {
        let reader = try openObject(name, from: 0)
        defer { reader.close() }
        var data = Data()
        try reader.forEachChunk(size: 1 << 16) { chunk in
            guard data.count + chunk.count <= limit else {
                throw ArchiveError(.damaged, "is larger than \(limit) bytes, too large for what it should be")
            }
            data.append(contentsOf: chunk)
        }
        return data
    }

    /// A name under this storage, for messages: `location/name`.
    func describe(_ name: String) -> String {
        location.hasSuffix("/") ? location + name : location + "/" + name
    }
}

/// Opens the storage a user names with `--out` or `--dir`.
public enum StorageLocation {
    /// Whether `location` names object storage (`s3://...`) rather than a folder.
    public static func isObjectStorage(_ location: String) -> Bool { S3Configuration.isS3(location) }

    public static func open(_ location: String) throws -> any BackupStorage {
        guard !location.isEmpty else { throw UsageError("the backups folder is empty; give a path") }
        if S3Configuration.isS3(location) {
            return try S3Storage(
                location: location, addressing: ProcessInfo.processInfo.environment["SUPABACKUP_S3_ADDRESSING"])
        }
        return LocalStorage(root: location)
    }
}
