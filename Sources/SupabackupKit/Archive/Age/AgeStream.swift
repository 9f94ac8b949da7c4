import Crypto
import Foundation

/// The payload of an age file: a 16-byte nonce, then the plaintext in 64 KiB chunks, each sealed
/// with ChaCha20-Poly1305 under a nonce of an 11-byte counter and a last-chunk flag (STREAM).
enum AgeStream {
    static let chunkSize = 64 << 10
    static let tagSize = 16

    static func payloadKey(fileKey: [UInt8], nonce: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: fileKey), salt: nonce, info: Array("payload".utf8),
            outputByteCount: 32)
    }

    static func nonce(_ counter: UInt64, last: Bool) -> ChaChaPoly.Nonce {
        var bytes = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { bytes[10 - i] = UInt8(truncatingIfNeeded: counter >> (8 * UInt64(i))) }
        bytes[11] = last ? 1 : 0
        return try! ChaChaPoly.Nonce(data: bytes)
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

/// Encrypts what is written to it into `inner` as one age file to `recipients`. Memory: one
/// 64 KiB chunk. Runs on the caller's thread (the compressor's, in a backup).
final class AgeWriter: ObjectWriter {
    private let inner: ObjectWriter
    private let key: SymmetricKey
    private var chunk: [UInt8]
    private var counter: UInt64 = 0

    init(into inner: ObjectWriter, recipients: [AgeRecipient]) throws {
        precondition(!recipients.isEmpty, "an age file needs a recipient")
        self.inner = inner
        let fileKey = AgeStream.randomBytes(16)
        let nonce = AgeStream.randomBytes(16)
        key = AgeStream.payloadKey(fileKey: fileKey, nonce: nonce)
        chunk = []
        chunk.reserveCapacity(AgeStream.chunkSize)
        do {
            try inner.write(Data(AgeHeader.encode(fileKey: fileKey, recipients: recipients) + nonce))
        } catch {
            inner.abort()
            throw error
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            // A full chunk is sealed only once more follows: the last chunk carries the flag.
            if chunk.count == AgeStream.chunkSize { try seal(last: false) }
            let take = min(AgeStream.chunkSize - chunk.count, bytes.count - offset)
            chunk.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + take)]))
            offset += take
        }
    }

    func finish() throws {
        try seal(last: true)
        try inner.finish()
    }

    func abort() { inner.abort() }

    private func seal(last: Bool) throws {
        let box = try ChaChaPoly.seal(chunk, using: key, nonce: AgeStream.nonce(counter, last: last))
        try box.ciphertext.withUnsafeBytes { try inner.write($0) }
        try box.tag.withUnsafeBytes { try inner.write($0) }
        counter += 1
        chunk.removeAll(keepingCapacity: true)
    }
}

/// Decrypts an age file read from `inner`. Reads `inner` to its end: the last chunk is known
/// only there, and a stream that stops early or runs on is damage.
final class AgeReader: ObjectReader {
    private let inner: ObjectReader
    private let key: SymmetricKey
    /// Ciphertext read ahead, beyond `start`.
    private var pending: [UInt8]
    private var start = 0
    private var innerDone = false
    private var counter: UInt64 = 0
    private var plaintext: [UInt8] = []
    private var served = 0
    private var finished = false

    init(_ inner: ObjectReader, identities: [AgeIdentity]) throws {
        self.inner = inner
        var buffer: [UInt8] = []
        var done = false
        var parsed: (AgeHeader, Int)?
        while parsed == nil {
            parsed = try AgeHeader.parse(buffer[...])
            if parsed != nil { break }
            guard !done else {
                throw buffer.isEmpty
                    ? ArchiveError(.damaged, "is empty, not an age file")
                    : ArchiveError(.damaged, "ends inside its age header (truncated)")
            }
            done = try Self.fill(&buffer, from: inner, upTo: buffer.count + (64 << 10))
        }
        let (header, length) = parsed!
        let fileKey = try header.unwrap(with: identities)
        while buffer.count < length + 16 && !done {
            done = try Self.fill(&buffer, from: inner, upTo: length + 16)
        }
        guard buffer.count >= length + 16 else { throw ArchiveError(.damaged, "ends before its payload (truncated)") }
        key = AgeStream.payloadKey(fileKey: fileKey, nonce: Array(buffer[length..<(length + 16)]))
        pending = buffer
        start = length + 16
        innerDone = done
    }

    /// Reads from `inner` until `buffer` holds `count` bytes or the object ends.
    /// - Returns: true at the object's end.
    private static func fill(_ buffer: inout [UInt8], from inner: ObjectReader, upTo count: Int) throws -> Bool {
        let old = buffer.count
        guard count > old else { return false }
        buffer += [UInt8](repeating: 0, count: count - old)
        var filled = old
        defer { buffer.removeLast(buffer.count - filled) }
        while filled < count {
            let n = try buffer.withUnsafeMutableBytes { raw in
                try inner.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[filled..<count]))
            }
            if n == 0 { return true }
            filled += n
        }
        return false
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while served == plaintext.count {
            if finished { return 0 }
            try nextChunk()
        }
        let n = min(buffer.count, plaintext.count - served)
        plaintext.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[served..<(served + n)]))
        }
        served += n
        return n
    }

    func close() { inner.close() }

    private func nextChunk() throws {
        let sealed = AgeStream.chunkSize + AgeStream.tagSize
        if start > 0 {
            pending.removeFirst(start)
            start = 0
        }
        // One byte beyond a full chunk tells whether this one is the last.
        if !innerDone { innerDone = try Self.fill(&pending, from: inner, upTo: sealed + 1) }
        let last = pending.count <= sealed
        let size = min(pending.count, sealed)
        guard size >= AgeStream.tagSize, !(last && size == AgeStream.tagSize && counter > 0) else {
            throw ArchiveError(.damaged, "ends mid-stream (truncated or a chunk is missing)")
        }
        let box = try ChaChaPoly.SealedBox(
            nonce: AgeStream.nonce(counter, last: last), ciphertext: pending[0..<(size - AgeStream.tagSize)],
            tag: pending[(size - AgeStream.tagSize)..<size])
        do {
            plaintext = Array(try ChaChaPoly.open(box, using: key))
        } catch {
            throw ArchiveError(
                .damaged,
                last
                    ? "fails its age authentication at chunk \(counter + 1): altered, truncated, or chunks out of order"
                    : "fails its age authentication at chunk \(counter + 1): altered or chunks out of order")
        }
        served = 0
        start = size
        counter += 1
        if last { finished = true }
    }
}

/// Whole small age files in memory (manifests, schema.sql, identity files).
enum AgeFile {
    static let armorBegin = "-----BEGIN AGE ENCRYPTED FILE-----"
    static let armorEnd = "-----END AGE ENCRYPTED FILE-----"

    static func looksEncrypted(_ bytes: [UInt8]) -> Bool {
        bytes.starts(with: Array((AgeHeader.versionLine + "\n").utf8))
            || String(decoding: bytes.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                .hasPrefix(armorBegin)
    }

    static func encrypt(_ plaintext: [UInt8], to recipients: [AgeRecipient]) throws -> [UInt8] {
        let sink = MemoryWriter()
        let writer = try AgeWriter(into: sink, recipients: recipients)
        try plaintext.withUnsafeBytes { try writer.write($0) }
        try writer.finish()
        return sink.bytes
    }

    static func decrypt(_ file: [UInt8], with identities: [AgeIdentity]) throws -> [UInt8] {
        let reader = try AgeReader(MemoryReader(try dearmor(file)), identities: identities)
        var out: [UInt8] = []
        try reader.forEachChunk(size: 64 << 10) { out.append(contentsOf: $0) }
        return out
    }

    /// The binary age file inside ASCII armor (`age -a`), or `file` itself when not armored.
    static func dearmor(_ file: [UInt8]) throws -> [UInt8] {
        let text = String(decoding: file, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix(armorBegin) else { return file }
        guard text.hasSuffix(armorEnd) else { throw ArchiveError(.damaged, "has broken age armor (no end line)") }
        let body = text.dropFirst(armorBegin.count).dropLast(armorEnd.count)
            .split(whereSeparator: { $0 == "\n" || $0 == "\r" }).joined()
        guard let data = Data(base64Encoded: String(body)) else {
            throw ArchiveError(.damaged, "has broken age armor (not base64)")
        }
        return Array(data)
    }
}

final class MemoryWriter: ObjectWriter {
    private(set) var bytes: [UInt8] = []
    func write(_ bytes: UnsafeRawBufferPointer) throws { self.bytes.append(contentsOf: bytes) }
    func finish() throws {}
    func abort() { bytes = [] }
}

final class MemoryReader: ObjectReader {
    private let bytes: [UInt8]
    private var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - offset)
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + n)])) }
        offset += n
        return n
    }
    func close() {}
}
