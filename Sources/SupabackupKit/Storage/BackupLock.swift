import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An advisory lock (`flock`) on a file, held while a backup writes its partial folder, so a
/// concurrent prune can tell a running backup from an abandoned one. The kernel drops the lock
/// when the process dies, whatever the way.
final class BackupLock: StorageLock {
    private var fd: Int32

    /// Takes the lock, creating the file (or locking the directory itself when `path` is one);
    /// throws if another process holds it.
    init(path: String) throws {
        fd =
            FileSystem.isRealDirectory(path)
            ? open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ArchiveError(.io, "cannot create lock file \(path): \(errnoText())") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw ArchiveError(.io, "\(path) is locked by another supabackup process")
        }
    }

    deinit { release() }

    func release() {
        if fd >= 0 {
            flock(fd, LOCK_UN)
            close(fd)
        }
        fd = -1
    }

    /// True when some process holds the lock on `path`.
    static func isHeld(_ path: String) -> Bool {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return true
    }
}
