import Crypto
import Foundation

/// A backup being written: `DIR/.NAME.partial/`, renamed to `DIR/NAME/` by `publish`.
///
/// The name is reserved by creating the partial folder (mkdir is atomic), so two backups
/// starting in the same millisecond take different names instead of colliding.
final class PartialBackupFolder {
    let directory: String
    let name: String
    let startedAt: Date
    let partialPath: String
    private var published = false
    /// Held until the folder is published or discarded; tells prune the backup is alive.
    private var lock: BackupLock?
    static let lockFile = ".lock"

    init(in directory: String, startingAt start: Date) throws {
        try FileSystem.makePrivateDirectory(directory)
        guard access(directory, W_OK) == 0 else {
            throw ArchiveError(.io, "cannot write to \(directory): \(errnoText())")
        }
        var time = start
        for _ in 0..<1000 {
            let name = BackupName.make(time)
            let partial = (directory as NSString).appendingPathComponent(".\(name).partial")
            let final = (directory as NSString).appendingPathComponent(name)
            if !FileManager.default.fileExists(atPath: final) && mkdir(partial, 0o700) == 0 {
                chmod(partial, 0o700)
                self.directory = directory
                self.name = name
                self.startedAt = time
                self.partialPath = partial
                lock = try BackupLock(path: (partial as NSString).appendingPathComponent(Self.lockFile))
                ActiveBackups.shared.add(partial)
                try FileSystem.makeNewPrivateDirectory(
                    (partial as NSString).appendingPathComponent(BackupArchive.dataDirectory))
                return
            }
            if errno != EEXIST && !FileManager.default.fileExists(atPath: final) {
                throw ArchiveError(.io, "cannot create a backup folder in \(directory): \(errnoText())")
            }
            time = time.addingTimeInterval(0.001)
        }
        throw ArchiveError(.io, "cannot find a free backup name in \(directory)")
    }

    func path(of file: String) -> String {
        (partialPath as NSString).appendingPathComponent(file)
    }

    /// Writes a small file (0600) into the folder.
    /// - Returns: its manifest entry.
    func writeFile(_ name: String, contents: Data) throws -> Manifest.FileEntry {
        let file = try OutputFile(creating: path(of: name))
        try file.write(contents)
        try file.syncAndClose()
        return Manifest.FileEntry(
            file: name, bytes: Int64(contents.count), sha256: Crypto.SHA256.hash(data: contents).hex)
    }

    /// Writes the manifest, syncs, and renames the folder to its final name.
    func publish(_ manifest: Manifest) throws -> String {
        let manifestFile = try OutputFile(creating: path(of: BackupArchive.manifestFile))
        try manifestFile.write(try manifest.encoded())
        try manifestFile.syncAndClose()
        FileSystem.syncDirectory((partialPath as NSString).appendingPathComponent(BackupArchive.dataDirectory))
        FileSystem.syncDirectory(partialPath)
        let final = (directory as NSString).appendingPathComponent(name)
        try FileSystem.renameNoReplace(partialPath, final)
        FileSystem.syncDirectory(directory)
        published = true
        ActiveBackups.shared.remove(partialPath)
        lock?.release()
        try? FileManager.default.removeItem(atPath: (final as NSString).appendingPathComponent(Self.lockFile))
        return final
    }

    /// Removes the partial folder (after a failure).
    func discard() {
        guard !published else { return }
        FileSystem.removeTree(partialPath)
        ActiveBackups.shared.remove(partialPath)
        lock?.release()
    }
}

/// The partial folders of backups in progress in this process, so a signal handler can remove
/// them before the process exits (SIGINT/SIGTERM); SIGKILL leaves them for `prune`.
public final class ActiveBackups: @unchecked Sendable {
    // @unchecked: `paths` is only touched under `lock`.
    public static let shared = ActiveBackups()
    private let lock = NSLock()
    private var paths: Set<String> = []

    func add(_ path: String) { lock.withLock { _ = paths.insert(path) } }
    func remove(_ path: String) { lock.withLock { _ = paths.remove(path) } }

    /// Removes every partial folder still being written. Safe to call from a signal handler's
    /// dispatch source (not from an async-signal context).
    /// - Returns: the folders removed.
    @discardableResult
    public func removeAll() -> [String] {
        let current = lock.withLock { () -> [String] in
            let all = Array(paths)
            paths.removeAll()
            return all
        }
        for path in current {
            // Renamed first: reader threads may still be creating files by their old paths,
            // which then fail instead of landing in a folder being removed.
            let removing = String(path.dropLast(".partial".count)) + ".removing"
            if path.hasSuffix(".partial") && rename(path, removing) == 0 {
                FileSystem.removeTree(removing)
            } else {
                FileSystem.removeTree(path)
            }
        }
        return current
    }
}
