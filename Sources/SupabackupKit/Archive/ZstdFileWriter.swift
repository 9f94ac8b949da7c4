import CZstd
import Crypto
import Foundation

/// Compresses a byte stream with zstd into a new file, hashing what lands on disk.
///
/// Input is buffered so zstd sees large blocks, not one call per row. The file is created
/// exclusively with mode 0600; `finish()` flushes, fsyncs and returns size and SHA-256.
final class ZstdFileWriter {
    private let cctx: OpaquePointer
    private let file: OutputFile
    private var input: UnsafeMutableRawBufferPointer
    private var inputUsed = 0
    private let output: UnsafeMutableRawBufferPointer
    private var hasher = SHA256()
    private(set) var compressedBytes: Int64 = 0
    private(set) var rawBytes: Int64 = 0
    private var finished = false

    init(path: String, level: Int32) throws {
        guard let cctx = ZSTD_createCCtx() else {
            throw ArchiveError(.io, "could not allocate a zstd compressor")
        }
        self.cctx = cctx
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
        input = .allocate(byteCount: 1 << 18, alignment: 16)
        output = .allocate(byteCount: ZSTD_CStreamOutSize(), alignment: 16)
        do {
            file = try OutputFile(creating: path)
        } catch {
            ZSTD_freeCCtx(cctx)
            input.deallocate()
            output.deallocate()
            throw error
        }
    }

    deinit {
        ZSTD_freeCCtx(cctx)
        input.deallocate()
        output.deallocate()
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        rawBytes += Int64(bytes.count)
        var offset = 0
        while offset < bytes.count {
            let n = min(input.count - inputUsed, bytes.count - offset)
            UnsafeMutableRawBufferPointer(rebasing: input[inputUsed..<(inputUsed + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]))
            inputUsed += n
            offset += n
            if inputUsed == input.count { try compress(end: false) }
        }
    }

    func write(_ data: some ContiguousBytes) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    /// Ends the zstd frame and closes the file.
    /// - Returns: the compressed size and the SHA-256 (lowercase hex) of the file's bytes.
    func finish() throws -> (bytes: Int64, sha256: String) {
        precondition(!finished, "finish() called twice")
        finished = true
        try compress(end: true)
        try file.syncAndClose()
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        return (compressedBytes, digest)
    }

    private func compress(end: Bool) throws {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: inputUsed, pos: 0)
        while true {
            var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
            let remaining = ZSTD_compressStream2(cctx, &outBuffer, &inBuffer, end ? ZSTD_e_end : ZSTD_e_continue)
            if ZSTD_isError(remaining) != 0 {
                throw ArchiveError(.io, "zstd compression failed: \(String(cString: ZSTD_getErrorName(remaining)))")
            }
            if outBuffer.pos > 0 {
                let chunk = UnsafeRawBufferPointer(rebasing: output[0..<outBuffer.pos])
                hasher.update(bufferPointer: chunk)
                try file.write(chunk)
                compressedBytes += Int64(outBuffer.pos)
            }
            let drained = end ? remaining == 0 : inBuffer.pos == inBuffer.size
            if drained { break }
        }
        inputUsed = 0
    }
}
