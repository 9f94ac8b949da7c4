import CZstd
import Crypto
import Foundation

/// Compresses a byte stream with zstd into a new file, hashing what lands on disk.
///
/// Compression runs on a thread of its own, pipelined with the caller (which is reading rows
/// from the network): input is gathered into 1 MiB blocks handed over through a queue of at most
/// four blocks, so memory stays bounded. The file is created exclusively with mode 0600;
/// `finish()` waits for the compressor, fsyncs, and returns size and SHA-256.
final class ZstdFileWriter: @unchecked Sendable {
    // @unchecked: the caller's side (`block`, `rawBytes`) is used by one thread; the compressor's
    // side (`cctx`, `file`, `hasher`, `compressedBytes`) only by the worker until `finish()`
    // has joined it; `queue`, `failure` and `closed` are guarded by `condition`.
    private let cctx: OpaquePointer
    private let file: OutputFile
    private var block: [UInt8] = []
    private let blockSize = 1 << 20
    private let output: UnsafeMutableRawBufferPointer
    private var hasher = SHA256()
    private(set) var compressedBytes: Int64 = 0
    private(set) var rawBytes: Int64 = 0
    private var finished = false

    private let condition = NSCondition()
    private var queue: [[UInt8]] = []
    private var closed = false
    private var failure: Error?
    private var worker: Thread?
    private var workerDone = false
    private static let maxQueued = 4

    init(path: String, level: Int32) throws {
        guard let cctx = ZSTD_createCCtx() else {
            throw ArchiveError(.io, "could not allocate a zstd compressor")
        }
        self.cctx = cctx
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
        output = .allocate(byteCount: ZSTD_CStreamOutSize(), alignment: 16)
        do {
            file = try OutputFile(creating: path)
        } catch {
            ZSTD_freeCCtx(cctx)
            output.deallocate()
            throw error
        }
        block.reserveCapacity(blockSize)
        let thread = Thread { [unowned self] in self.run() }
        thread.name = "supabackup-zstd"
        worker = thread
        thread.start()
    }

    deinit {
        stopWorker()
        ZSTD_freeCCtx(cctx)
        output.deallocate()
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        rawBytes += Int64(bytes.count)
        block.append(contentsOf: bytes)
        if block.count >= blockSize {
            try enqueue(block)
            block.removeAll(keepingCapacity: true)
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
        if !block.isEmpty { try enqueue(block) }
        block = []
        stopWorker()
        if let failure = condition.withLock({ failure }) { throw failure }
        try compress([], end: true)
        try file.syncAndClose()
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        return (compressedBytes, digest)
    }

    private func enqueue(_ bytes: [UInt8]) throws {
        condition.lock()
        defer { condition.unlock() }
        while queue.count >= Self.maxQueued && failure == nil { condition.wait() }
        if let failure { throw failure }
        queue.append(bytes)
        condition.broadcast()
    }

    private func stopWorker() {
        condition.lock()
        closed = true
        condition.broadcast()
        while worker != nil && !workerDone { condition.wait() }
        condition.unlock()
    }

    /// The worker: compresses queued blocks until closed and drained.
    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && !closed { condition.wait() }
            if queue.isEmpty {
                workerDone = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let next = queue.removeFirst()
            condition.broadcast()
            let failed = failure != nil
            condition.unlock()
            guard !failed else { continue }
            do {
                try compress(next, end: false)
            } catch {
                condition.withLock {
                    failure = error
                    condition.broadcast()
                }
            }
        }
    }

    private func compress(_ input: [UInt8], end: Bool) throws {
        try input.withUnsafeBytes { bytes in
            var inBuffer = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
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
        }
    }
}
