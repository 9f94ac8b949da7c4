import CZstd
import Crypto
import Foundation

/// Compresses a byte stream with zstd into a storage object, encrypting it (age) when given
/// recipients, and hashing the stored bytes.
///
/// Compression runs on a thread of its own, pipelined with the caller (which is reading rows
/// from the network): input is gathered into 512 KiB blocks handed over through a queue of at most
/// two blocks, so memory stays bounded (a few MiB per writer; a parallel backup has one per job).
/// `finish()` waits for the compressor, finishes the object, and returns size and SHA-256; a
/// writer dropped unfinished aborts its object.
final class ZstdFileWriter {
    private let pipeline: Pipeline
    private var block: [UInt8] = []
    private let blockSize = 1 << 19
    private(set) var rawBytes: Int64 = 0
    private var finished = false

    /// - Parameter recipients: encrypt to these (on the compressor's thread); none: store plain.
    init(into object: ObjectWriter, level: Int32, recipients: [AgeRecipient] = []) throws {
        pipeline = try Pipeline(object: object, level: level, recipients: recipients)
        block.reserveCapacity(blockSize)
        // The thread holds the pipeline, never the writer: the writer may go away (on an error)
        // before the thread even starts, and its deinit then stops and joins the pipeline.
        let thread = Thread { [pipeline] in pipeline.run() }
        thread.name = "supabackup-zstd"
        thread.start()
    }

    deinit { pipeline.stop() }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        rawBytes += Int64(bytes.count)
        block.append(contentsOf: bytes)
        if block.count >= blockSize {
            try pipeline.enqueue(block)
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
        if !block.isEmpty { try pipeline.enqueue(block) }
        block = []
        return try pipeline.finish()
    }

    /// The compressor's side: zstd context, file and hash, used by the worker thread until
    /// `stop()` has joined it, then by `finish()`.
    private final class Pipeline: @unchecked Sendable {
        // @unchecked: `queue`, `closed`, `running` and `failure` are guarded by `condition`;
        // the rest belongs to the worker until it has stopped.
        private let cctx: OpaquePointer
        /// What the compressor writes to: `stored`, or an age encrypter in front of it.
        private let file: ObjectWriter
        private let stored: HashingWriter
        private var finished = false
        private let output: UnsafeMutableRawBufferPointer

        private let condition = NSCondition()
        private var queue: [[UInt8]] = []
        private var closed = false
        /// True from init until the worker has drained the queue and returned.
        private var running = true
        private var failure: Error?
        private static let maxQueued = 2

        init(object: ObjectWriter, level: Int32, recipients: [AgeRecipient]) throws {
            guard let cctx = ZSTD_createCCtx() else {
                object.abort()
                throw ArchiveError(.io, "could not allocate a zstd compressor")
            }
            ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
            ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
            stored = HashingWriter(object)
            do {
                file = recipients.isEmpty ? stored : try AgeWriter(into: stored, recipients: recipients)
            } catch {
                ZSTD_freeCCtx(cctx)
                throw error
            }
            self.cctx = cctx
            output = .allocate(byteCount: ZSTD_CStreamOutSize(), alignment: 16)
        }

        deinit {
            if !finished { file.abort() }
            ZSTD_freeCCtx(cctx)
            output.deallocate()
        }

        func enqueue(_ bytes: [UInt8]) throws {
            condition.lock()
            defer { condition.unlock() }
            while queue.count >= Self.maxQueued && failure == nil { condition.wait() }
            if let failure { throw failure }
            queue.append(bytes)
            condition.broadcast()
        }

        /// Closes the queue and waits until the worker has compressed what it holds.
        func stop() {
            condition.lock()
            closed = true
            condition.broadcast()
            while running { condition.wait() }
            condition.unlock()
        }

        func finish() throws -> (bytes: Int64, sha256: String) {
            stop()
            if let failure = condition.withLock({ failure }) { throw failure }
            try compress([], end: true)
            try file.finish()
            finished = true
            return (stored.count, stored.sha256)
        }

        /// The worker: compresses queued blocks until closed and drained.
        func run() {
            while true {
                condition.lock()
                while queue.isEmpty && !closed { condition.wait() }
                if queue.isEmpty {
                    running = false
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
                    let remaining = ZSTD_compressStream2(
                        cctx, &outBuffer, &inBuffer, end ? ZSTD_e_end : ZSTD_e_continue)
                    if ZSTD_isError(remaining) != 0 {
                        throw ArchiveError(
                            .io, "zstd compression failed: \(String(cString: ZSTD_getErrorName(remaining)))")
                    }
                    if outBuffer.pos > 0 {
                        let chunk = UnsafeRawBufferPointer(rebasing: output[0..<outBuffer.pos])
                        try file.write(chunk)
                    }
                    let drained = end ? remaining == 0 : inBuffer.pos == inBuffer.size
                    if drained { break }
                }
            }
        }
    }
}
