import Crypto

/// Counts and hashes the bytes read through it: the stored bytes a manifest's size and SHA-256
/// describe, whatever reads them after (a decompressor, a decrypter).
final class HashingReader: ObjectReader {
    private let inner: ObjectReader
    private var hasher = SHA256()
    private(set) var count: Int64 = 0

    init(_ inner: ObjectReader) { self.inner = inner }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try inner.read(into: buffer)
        if n > 0 {
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            count += Int64(n)
        }
        return n
    }

    func close() { inner.close() }

    /// Lowercase hex SHA-256 of everything read so far.
    var sha256: String { hasher.finalize().hex }
}

/// Counts and hashes the bytes written through it to storage.
final class HashingWriter: ObjectWriter {
    private let inner: ObjectWriter
    private var hasher = SHA256()
    private(set) var count: Int64 = 0

    init(_ inner: ObjectWriter) { self.inner = inner }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        hasher.update(bufferPointer: bytes)
        count += Int64(bytes.count)
        try inner.write(bytes)
    }

    func finish() throws { try inner.finish() }
    func abort() { inner.abort() }

    var sha256: String { hasher.finalize().hex }
}
