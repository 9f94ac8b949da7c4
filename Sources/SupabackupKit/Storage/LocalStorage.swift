import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A backups folder on a local file system.
///
/// An unfinished backup is written into a hidden `.NAME.partial/` folder (created with mkdir,
/// which is atomic, so it reserves the name) holding an `flock` on `.lock`, and published by
/// renaming it to `NAME/`. Files and folders are private to the owner (0600/0700) whatever the
/// umask; symbolic links are never followed inside the folder.
public final class LocalStorage: BackupStorage {
    public let root: String
    public var location: String { root }
    static let lockFile = ".lock"

    public init(root: String) {
        self.root = root
    }

    func path(_ name: String) throws -> String {
        guard !name.isEmpty else { return root }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        // A trailing `/` (a folder) leaves one empty part at the end.
        let inner = name.hasSuffix("/") ? parts.dropLast() : parts[...]
        guard !name.hasPrefix("/"), inner.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            throw ArchiveError(.invalidName, "'\(BackupName.printable(name))' is not a name inside \(root)")
        }
        return (root as NSString).appendingPathComponent(inner.joined(separator: "/"))
    }

    public func list(prefix: String, recursive: Bool) throws -> [StoredEntry] {
        let folder = prefix.lastIndex(of: "/").map { String(prefix[...$0]) } ?? ""
        let start = String(prefix.dropFirst(folder.count))
        let directory = try path(folder)
        guard FileSystem.isRealDirectory(directory) else {
            if folder.isEmpty && FileManager.default.fileExists(atPath: directory) {
                throw ArchiveError(.io, "\(root) is not a directory")
            }
            return []
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw ArchiveError(.io, "cannot read \(directory): \(error.localizedDescription)")
        }
        var entries: [StoredEntry] = []
        for base in names.sorted() where base.hasPrefix(start) {
            guard let entry = Self.entry(folder + base, at: (directory as NSString).appendingPathComponent(base))
            else { continue }
            if entry.isFolder && recursive {
                entries += try list(prefix: entry.name, recursive: true)
            } else {
                entries.append(entry)
            }
        }
        return entries
    }

    public func entry(_ name: String) throws -> StoredEntry? {
        Self.entry(name, at: try path(name))
    }

    /// lstat-based: a symbolic link is an object (which `openObject` refuses), never a folder.
    private static func entry(_ name: String, at path: String) -> StoredEntry? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        let isFolder = (info.st_mode & S_IFMT) == S_IFDIR
        #if canImport(Darwin)
            let seconds = Double(info.st_mtimespec.tv_sec)
        #else
            let seconds = Double(info.st_mtim.tv_sec)
        #endif
        return StoredEntry(
            name: isFolder && !name.isEmpty && !name.hasSuffix("/") ? name + "/" : name, isFolder: isFolder,
            size: isFolder ? 0 : Int64(info.st_size), modified: Date(timeIntervalSince1970: seconds),
            readableByOthers: info.st_mode & 0o077 != 0)
    }

    public func openObject(_ name: String, from offset: Int64) throws -> ObjectReader {
        let path = try path(name)
        // Every folder on the way is a real one: a linked folder could lead out of the backups folder.
        var folder = root
        for part in name.split(separator: "/").dropLast() {
            folder = (folder as NSString).appendingPathComponent(String(part))
            guard FileSystem.isRealDirectory(folder) else {
                throw ArchiveError(.damaged, "is missing (\(part)/ is not a folder)")
            }
        }
        let file = try InputFile(opening: path)
        if offset > 0 { try file.seek(to: offset) }
        return file
    }

    public func delete(_ name: String) throws {
        let path = try path(name)
        guard unlink(path) == 0 || errno == ENOENT else {
            throw ArchiveError(.io, "cannot remove \(path): \(errnoText())")
        }
    }

    /// Renames the folder out of sight first, so a crash mid-way leaves a `.NAME.removing`
    /// leftover for prune rather than a half-deleted folder.
    public func deleteAll(under prefix: String) throws {
        let path = try path(prefix)
        guard FileSystem.isRealDirectory(path) else { return }
        let parent = FileSystem.parentPath(path)
        let hidden = (parent as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).removing")
        guard rename(path, hidden) == 0 else {
            throw ArchiveError(.io, "cannot remove \(path): \(errnoText())")
        }
        FileSystem.removeTree(hidden)
    }

    public func beginBackup(named name: String) throws -> PendingBackup? {
        try FileSystem.makePrivateDirectory(root)
        guard access(root, W_OK) == 0 else { throw ArchiveError(.io, "cannot write to \(root): \(errnoText())") }
        let final = try path(name)
        let partial = (root as NSString).appendingPathComponent(".\(name).partial")
        if FileManager.default.fileExists(atPath: final) { return nil }
        guard mkdir(partial, 0o700) == 0 else {
            if errno == EEXIST { return nil }
            throw ArchiveError(.io, "cannot create a backup folder in \(root): \(errnoText())")
        }
        chmod(partial, 0o700)
        do {
            let lock = try BackupLock(path: (partial as NSString).appendingPathComponent(Self.lockFile))
            try FileSystem.makeNewPrivateDirectory(
                (partial as NSString).appendingPathComponent(BackupArchive.dataDirectory))
            return LocalPendingBackup(name: name, root: root, partial: partial, final: final, lock: lock)
        } catch {
            FileSystem.removeTree(partial)
            throw error
        }
    }

    public func unfinishedBackups() throws -> [UnfinishedBackup] {
        try list(prefix: ".", recursive: false).compactMap { entry in
            let label = entry.baseName
            guard entry.isFolder, let name = Self.unfinishedName(label), BackupName.date(of: name) != nil else {
                return nil
            }
            let lock = (try path(label) as NSString).appendingPathComponent(Self.lockFile)
            return UnfinishedBackup(label: label, name: name, modified: entry.modified, held: BackupLock.isHeld(lock))
        }
    }

    public func removeUnfinished(_ backup: UnfinishedBackup) throws {
        FileSystem.removeTree(try path(backup.label))
    }

    /// The lock is on the folder itself: no file left behind.
    public func maintenanceLock() throws -> StorageLock? {
        try BackupLock(path: root)
    }

    /// `NAME` for `.NAME.partial` and `.NAME.removing`, else nil.
    static func unfinishedName(_ entry: String) -> String? {
        guard entry.hasPrefix(".") else { return nil }
        for suffix in [".partial", ".removing"] where entry.hasSuffix(suffix) {
            return String(entry.dropFirst().dropLast(suffix.count))
        }
        return nil
    }
}

/// `ROOT/.NAME.partial/`, renamed to `ROOT/NAME/` by `publish`.
final class LocalPendingBackup: PendingBackup, @unchecked Sendable {
    // @unchecked: `lock` and `finished` are only touched under `state`; the rest is immutable.
    let name: String
    private let root: String
    private let partial: String
    private let final: String
    private var lock: BackupLock?
    private var finished = false
    private let state = NSLock()

    init(name: String, root: String, partial: String, final: String, lock: BackupLock) {
        self.name = name
        self.root = root
        self.partial = partial
        self.final = final
        self.lock = lock
    }

    var location: String { partial }

    private func path(_ file: String) -> String { (partial as NSString).appendingPathComponent(file) }

    func create(_ file: String) throws -> ObjectWriter {
        try makeParent(file)
        return try OutputFile(creating: path(file))
    }

    /// Folders below the backup (`storage/`) are made on first use.
    private func makeParent(_ file: String) throws {
        guard file.contains("/") else { return }
        let parent = FileSystem.parentPath(path(file))
        guard mkdir(parent, 0o700) == 0 || errno == EEXIST else {
            throw ArchiveError(.io, "cannot create \(parent): \(errnoText())")
        }
    }

    func reuse(_ file: String, from source: String) throws -> Bool {
        try makeParent(file)
        let from = (root as NSString).appendingPathComponent(source)
        guard FileSystem.isRegularFile(from) else { return false }
        return link(from, path(file)) == 0
    }

    func open(_ file: String) throws -> ObjectReader { try InputFile(opening: path(file)) }

    func delete(_ file: String) throws {
        guard unlink(path(file)) == 0 || errno == ENOENT else {
            throw ArchiveError(.io, "cannot remove \(path(file)): \(errnoText())")
        }
    }

    func publish(manifest: Data) throws -> String {
        let manifestFile = try OutputFile(creating: path(BackupArchive.manifestFile))
        try manifestFile.write(manifest)
        try manifestFile.syncAndClose()
        FileSystem.syncDirectory(path(BackupArchive.dataDirectory))
        FileSystem.syncDirectory(partial)
        try state.withLock {
            guard !finished else { throw ArchiveError(.io, "the backup was discarded before it was published") }
            try FileSystem.renameNoReplace(partial, final)
            finished = true
            lock?.release()
            lock = nil
        }
        FileSystem.syncDirectory(root)
        try? FileManager.default.removeItem(atPath: (final as NSString).appendingPathComponent(LocalStorage.lockFile))
        return final
    }

    func discard() {
        state.withLock {
            guard !finished else { return }
            finished = true
            // Renamed first: reader threads may still be creating files by their old paths,
            // which then fail instead of landing in a folder being removed.
            let removing = (root as NSString).appendingPathComponent(".\(name).removing")
            if rename(partial, removing) == 0 {
                FileSystem.removeTree(removing)
            } else {
                FileSystem.removeTree(partial)
            }
            lock?.release()
            lock = nil
        }
    }
}
