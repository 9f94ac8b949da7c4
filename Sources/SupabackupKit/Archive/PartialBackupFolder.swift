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
    /// Where the backup is being written (earlier backups there may share unchanged files).
    let storage: any BackupStorage
    /// Every file is encrypted to these (age); none: the backup is stored plain.
    let recipients: [AgeRecipient]
    /// Part files (slices joined at the end) are encrypted to a key that exists only in this
    /// process: the joiner must read them back, and the recipients' keys are not here.
    let partIdentity: AgeIdentity?
    var partRecipients: [AgeRecipient] { partIdentity.map { [$0.recipient!] } ?? [] }
    var isEncrypted: Bool { !recipients.isEmpty }

    init(in storage: any BackupStorage, startingAt start: Date, recipients: [AgeRecipient] = []) throws {
        self.recipients = recipients
        self.storage = storage
        partIdentity = recipients.isEmpty ? nil : AgeIdentity.generate()
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

    convenience init(in directory: String, startingAt start: Date, recipients: [AgeRecipient] = []) throws {
        try self.init(in: try StorageLocation.open(directory), startingAt: start, recipients: recipients)
    }

    /// The data file names for `tables`: derived from table names, or when encrypted, numbered
    /// (`data/0001.ndjson.zst.age`) so that names give nothing away.
    func dataFileNames(for tables: [TableName]) -> [String] {
        guard isEncrypted else {
            var names = DataFileName()
            return tables.map { names.next(for: $0) }
        }
        return tables.indices.map { String(format: "data/%04d.ndjson.zst.age", $0 + 1) }
    }

    /// Where the unfinished backup is being written, for messages and tests.
    var location: String { pending.location }

    func create(_ file: String, sizeHint: Int64? = nil) throws -> ObjectWriter {
        try pending.create(file, sizeHint: sizeHint)
    }
    func open(_ file: String) throws -> ObjectReader { try pending.open(file) }
    func delete(_ file: String) throws { try pending.delete(file) }
    func reuse(_ file: String, from source: String) throws -> Bool { try pending.reuse(file, from: source) }

    /// Writes a small file into the backup (encrypted as `name.age` when the backup is).
    /// - Returns: its manifest entry.
    func writeFile(_ name: String, contents: Data) throws -> Manifest.FileEntry {
        let stored = isEncrypted ? Data(try AgeFile.encrypt(Array(contents), to: recipients)) : contents
        let storedName = isEncrypted ? name + ".age" : name
        let file = try pending.create(storedName)
        try file.write(stored)
        try file.finish()
        return Manifest.FileEntry(
            file: storedName, bytes: Int64(stored.count), sha256: Crypto.SHA256.hash(data: stored).hex)
    }

    /// Writes the manifest, last, and makes the backup visible. Encrypted: the manifest goes
    /// into `manifest.age`, and `manifest.json` holds only its readable part.
    /// - Returns: where the backup is, for messages.
    func publish(_ manifest: Manifest) throws -> String {
        var data = try manifest.encoded()
        if isEncrypted {
            var inner = manifest
            inner.formatVersion = Manifest.encryptedFormatVersion
            inner.encryption = SealedManifest.encryptionName
            let entry = try writeFile("manifest", contents: try inner.encoded())  // manifest.age
            var sealed = SealedManifest(for: inner, manifestFile: entry)
            sealed.storageIndex = StorageIndexEntry.index(of: inner, recipients: recipients)
            data = try sealed.encoded()
        }
        let location = try pending.publish(manifest: data)
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
