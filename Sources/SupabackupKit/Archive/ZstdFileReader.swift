import CZstd
import Foundation

/// Streams a zstd object's decompressed bytes. Callers hash the stored bytes (`HashingReader`).
///
/// Memory stays at two fixed buffers whatever the file's size. Damage shows as an
/// `ArchiveError`: a bad frame, a failed frame checksum, or a file that ends mid-frame.
final class ZstdFileReader {
    private let dctx: OpaquePointer

    init() throws {
        guard let dctx = ZSTD_createDCtx() else {
            throw ArchiveError(.io, "could not allocate a zstd decompressor")
        }
        self.dctx = dctx
    }

    deinit { ZSTD_freeDCtx(dctx) }

    /// Reads the rest of `file`, handing decompressed chunks to `body`.
    func read(_ file: ObjectReader, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: ZSTD_DStreamOutSize(), alignment: 16)
        defer { output.deallocate() }
        var frameOpen = false
        var sawData = false
        try file.forEachChunk(size: ZSTD_DStreamInSize()) { chunk in
            sawData = true
            var inBuffer = ZSTD_inBuffer(src: chunk.baseAddress, size: chunk.count, pos: 0)
            while inBuffer.pos < inBuffer.size || frameOpen {
                var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
                let hint = ZSTD_decompressStream(dctx, &outBuffer, &inBuffer)
                if ZSTD_isError(hint) != 0 {
                    throw ArchiveError(.damaged, "is not valid zstd data (\(String(cString: ZSTD_getErrorName(hint))))")
                }
                frameOpen = hint != 0
                if outBuffer.pos > 0 {
                    try body(UnsafeRawBufferPointer(rebasing: output[0..<outBuffer.pos]))
                }
                // Needs more input and has flushed all it can.
                if inBuffer.pos == inBuffer.size && outBuffer.pos < outBuffer.size { break }
            }
        }
        if frameOpen || !sawData {
            throw ArchiveError(.damaged, "ends before its compressed data does (truncated)")
        }
    }
}
