import Crypto
import Foundation

/// A backup being written into storage, published with its manifest as the last object.
///
/// The name is the start time; when storage says it is taken (two backups starting in the same
/// millisecond), the next millisecond is tried, so backups never collide.
final class PartialBackupFolder {
    let name: String
    let startedAt: Date
    private let pending: PendingBackup

    init(in storage: any BackupStorage, startingAt start: Date) throws {
        var time = start
        for _ in 0..<1000 {
            if let pending = try storage.beginBackup(named: BackupName.make(time)) {
                self.pending = pending
                self.name = pending.name
                self.startedAt = time
                ActiveBackups.shared.add(pending)
                return
            }
            time = time.addingTimeInterval(0.001)
        }
        throw ArchiveError(.io, "cannot find a free backup name in \(storage.location)")
    }

    convenience init(in directory: String, startingAt start: Date) throws {
        try self.init(in: try StorageLocation.open(directory), startingAt: start)
    }

    /// Where the unfinished backup is being written, for messages and tests.
    var location: String { pending.location }

    func create(_ file: String, sizeHint: Int64? = nil) throws -> ObjectWriter {
        try pending.create(file, sizeHint: sizeHint)
    }
    func open(_ file: String) throws -> ObjectReader { try pending.open(file) }
    func delete(_ file: String) throws { try pending.delete(file) }

    /// Writes a small file into the backup.
    /// - Returns: its manifest entry.
    func writeFile(_ name: String, contents: Data) throws -> Manifest.FileEntry {
        let file = try pending.create(name)
        try file.write(contents)
        try file.finish()
        return Manifest.FileEntry(
            file: name, bytes: Int64(contents.count), sha256: Crypto.SHA256.hash(data: contents).hex)
    }

    /// Writes the manifest, last, and makes the backup visible.
    /// - Returns: where the backup is, for messages.
    func publish(_ manifest: Manifest) throws -> String {
        let location = try pending.publish(manifest: try manifest.encoded())
        ActiveBackups.shared.remove(pending)
        return location
    }

    /// Removes what was written (after a failure).
    func discard() {
        pending.discard()
        ActiveBackups.shared.remove(pending)
    }
}

/// The backups being written in this process, so a signal handler can remove them before the
/// process exits (SIGINT/SIGTERM); SIGKILL leaves them for `prune`.
public final class ActiveBackups: @unchecked Sendable {
    // @unchecked: `pending` is only touched under `lock`.
    public static let shared = ActiveBackups()
    private let lock = NSLock()
    private var pending: [ObjectIdentifier: PendingBackup] = [:]

    func add(_ backup: PendingBackup) { lock.withLock { pending[ObjectIdentifier(backup)] = backup } }
    func remove(_ backup: PendingBackup) { lock.withLock { pending[ObjectIdentifier(backup)] = nil } }

    /// Discards every backup still being written. Safe to call from a signal handler's
    /// dispatch source (not from an async-signal context).
    /// - Returns: where they were being written.
    @discardableResult
    public func removeAll() -> [String] {
        let current = lock.withLock { () -> [PendingBackup] in
            let all = Array(pending.values)
            pending.removeAll()
            return all
        }
        for backup in current { backup.discard() }
        return current.map(\.location)
    }
}
