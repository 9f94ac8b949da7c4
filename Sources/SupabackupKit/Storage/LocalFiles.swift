import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// The C calls by plain names, for methods of the same name (close, read, write) to call:
// written once here instead of qualifying them with Glibc or Darwin at each use.
private func systemClose(_ fd: Int32) { _ = close(fd) }
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int { read(fd, buffer, count) }
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }

/// A file created exclusively with mode 0600 whatever the umask, written with plain `write(2)`.
final class OutputFile: ObjectWriter {
    private var fd: Int32
    let path: String

    init(creating path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ArchiveError(.io, "cannot create \(path): \(errnoText())") }
        fchmod(fd, 0o600)
    }

    deinit { if fd >= 0 { systemClose(fd) } }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw ArchiveError(.io, "cannot write \(path): \(errnoText())")
            }
            offset += n
        }
    }

    func finish() throws { try syncAndClose() }

    /// Closes the file. What it holds stays, inside a folder that is never published.
    func abort() {
        if fd >= 0 { systemClose(fd) }
        fd = -1
    }

    func syncAndClose() throws {
        defer {
            systemClose(fd)
            fd = -1
        }
        guard fsync(fd) == 0 else { throw ArchiveError(.io, "cannot sync \(path): \(errnoText())") }
    }
}

/// A file read with plain `read(2)`; refuses symbolic links.
final class InputFile: ObjectReader {
    private var fd: Int32
    let path: String

    init(opening path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            if errno == ELOOP { throw ArchiveError(.damaged, "is a symbolic link, which an archive never contains") }
            if errno == ENOENT { throw ArchiveError(.damaged, "is missing") }
            throw ArchiveError(.io, "cannot open: \(errnoText())")
        }
    }

    deinit { close() }

    func seek(to offset: Int64) throws {
        guard lseek(fd, off_t(offset), SEEK_SET) == off_t(offset) else {
            throw ArchiveError(.io, "cannot seek in \(path): \(errnoText())")
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = systemRead(fd, buffer.baseAddress!, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw ArchiveError(.io, "cannot read \(path): \(errnoText())")
        }
    }

    func close() {
        if fd >= 0 { systemClose(fd) }
        fd = -1
    }
}

enum FileSystem {
    /// The folder holding `path` ("" for a bare name). NSString's deletingLastPathComponent
    /// crashes on one-character names ("b") in this Foundation, so it is not used.
    static func parentPath(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        let parent = trimmed[..<slash]
        if parent.isEmpty { return "/" }
        var result = parent
        while result.count > 1 && result.hasSuffix("/") { result = result.dropLast() }
        return String(result)
    }

    /// Creates `path` (and missing parents) with mode 0700 whatever the umask.
    static func makePrivateDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ArchiveError(.io, "\(path) exists and is not a directory") }
            return
        }
        let parent = parentPath(path)
        if !parent.isEmpty && parent != path { try makePrivateDirectory(parent) }
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw ArchiveError(.io, "cannot create directory \(path): \(errnoText())")
        }
        chmod(path, 0o700)
    }

    /// Creates a new directory with mode 0700; fails if it exists.
    static func makeNewPrivateDirectory(_ path: String) throws {
        guard mkdir(path, 0o700) == 0 else {
            throw ArchiveError(.io, "cannot create directory \(path): \(errnoText())")
        }
        chmod(path, 0o700)
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// Renames unless the target exists. Not atomic on its own: callers own the target name
    /// through a reservation (the exclusively created partial folder), so nobody else races for it.
    static func renameNoReplace(_ from: String, _ to: String) throws {
        if FileManager.default.fileExists(atPath: to) {
            throw ArchiveError(.io, "cannot publish backup: \(to) already exists")
        }
        guard rename(from, to) == 0 else {
            throw ArchiveError(.io, "cannot rename \(from) to \(to): \(errnoText())")
        }
    }

    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// lstat-based: true only for a real directory, never a symbolic link to one.
    static func isRealDirectory(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFREG
    }

    static func fileSize(_ path: String) -> Int64? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }
}

func errnoText() -> String {
    String(cString: strerror(errno))
}
