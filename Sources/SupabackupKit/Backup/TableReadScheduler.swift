import Crypto
import Foundation
import Logging

/// Reads a backup's tables into their data files with one or more readers.
///
/// Work items are whole tables or slices of large ones (block ranges, leaf partitions), largest
/// tables first. The leader (the source's own connection) and up to `jobs - 1` worker
/// connections, each on its own thread and sharing the leader's snapshot, take items until none
/// are left. A slice is written as a part file of its own (one zstd frame); when a table's last
/// slice is done its parts are concatenated in order into the table's data file: for block
/// ranges, the same lines in the same order as a single scan, as consecutive zstd frames.
final class TableReadScheduler: @unchecked Sendable {
    // @unchecked: the queues, `failure`, `active`, `opening`, `finished`, the worker failures,
    // `parts`, `entries` and the progress counters are guarded by `condition`; the rest is
    // immutable after init.
    struct Item {
        var table: Int
        var part: Int
        var slice: TableSlice?
    }

    private let tables: [SourceTable]
    private let files: [String]
    private let folder: PartialBackupFolder
    private let level: Int32
    private let progress: (@Sendable (BackupProgress) -> Void)?
    private let logger: Logger

    private let condition = NSCondition()
    private var queue: [Item]
    /// Items a worker could not lock without waiting; only the leader takes them.
    private var leaderQueue: [Item] = []
    private var failure: Error?
    /// Workers reading (they may hand items back to the leader).
    private var active = 0
    /// Workers still starting their transaction, each with its interrupt: through a
    /// transaction-mode pooler one may wait for a server connection until the backup's own
    /// connections give theirs back, so the leader does not wait for them.
    private var opening: [ConnectionInterrupt] = []
    /// The leader ran out of work: no worker starts reading after this.
    private var finished = false
    /// Workers that were still waiting for the server when the work ran out.
    private var lateWorkers = 0
    /// Workers that could not connect, and the first one's reason.
    private var failedWorkers = 0
    private var workerFailure: String?
    private var parts: [[PartResult?]]
    /// Each table's number of slices (immutable: read without the lock while `parts` changes).
    private let sliceCounts: [Int]
    private var entries: [Manifest.Table?]
    private var rawBytes: Int64 = 0
    private var rowsSeen: [Int64]
    private var started: [Date?]
    private var lastReport = Date.distantPast

    private struct PartResult {
        var rows: Int64
        var bytes: Int64
        var rawBytes: Int64
    }

    /// - Parameters:
    ///   - slices: per table, the slices to read it in (`[nil]`: the whole table at once);
    ///   - order: the tables' indices in the order to start them.
    init(
        tables: [SourceTable], files: [String], slices: [[TableSlice?]], order: [Int], folder: PartialBackupFolder,
        level: Int32, progress: (@Sendable (BackupProgress) -> Void)?, logger: Logger
    ) {
        self.tables = tables
        self.files = files
        self.folder = folder
        self.level = level
        self.progress = progress
        self.logger = logger
        queue = order.flatMap { table in slices[table].enumerated().map { Item(table: table, part: $0, slice: $1) } }
        parts = slices.map { Array(repeating: nil, count: $0.count) }
        sliceCounts = slices.map(\.count)
        entries = Array(repeating: nil, count: tables.count)
        rowsSeen = Array(repeating: 0, count: tables.count)
        started = Array(repeating: nil, count: tables.count)
    }

    /// Reads every item with `leader` on this thread and `workers` more readers, each opened
    /// by `openReader` on a thread of its own. A worker that cannot connect is logged and left
    /// out; the leader alone can read everything. Workers still waiting for their first
    /// transaction when the work runs out are interrupted.
    /// - Parameter leaderFirst: other work for the leader's connection, done once the workers
    ///   have started.
    /// - Returns: the manifest entries in table order and the uncompressed bytes written.
    func run(
        leader: any RowReader, workers: Int, leaderFirst: () throws -> Void,
        openReader: @escaping @Sendable (ConnectionInterrupt) throws -> any RowReader
    ) throws -> (entries: [Manifest.Table], rawBytes: Int64) {
        let done = DispatchGroup()
        let interrupts = (0..<workers).map { _ in ConnectionInterrupt() }
        condition.withLock { opening = interrupts }
        for index in 0..<workers {
            done.enter()
            let interrupt = interrupts[index]
            let thread = Thread { [self] in
                defer { done.leave() }
                work(interrupt: interrupt, openReader: openReader)
            }
            thread.name = "supabackup-reader-\(index + 1)"
            thread.start()
        }
        do {
            try leaderFirst()
        } catch {
            condition.withLock {
                if failure == nil { failure = error }
                condition.broadcast()
            }
        }
        drain(with: leader, isLeader: true)
        let waiting = condition.withLock { () -> [ConnectionInterrupt] in
            finished = true
            return opening
        }
        for interrupt in waiting { interrupt.interrupt() }
        done.wait()
        if lateWorkers > 0 {
            logger.debug(
                "\(lateWorkers) of \(workers) worker connections were still waiting for the server when the work ran out (a pooler's pool in use?)"
            )
        }
        if let workerFailure {
            logger.warning(
                "could not open \(failedWorkers) of \(workers) worker connections; read with \(workers - failedWorkers + 1)",
                metadata: ["reason": "\(workerFailure)"])
        }
        if let failure { throw failure }
        return (entries.map { $0! }, rawBytes)
    }

    private func work(interrupt: ConnectionInterrupt, openReader: (ConnectionInterrupt) throws -> any RowReader) {
        let reader: any RowReader
        do {
            reader = try openReader(interrupt)
        } catch {
            condition.withLock {
                opening.removeAll { $0 === interrupt }
                if finished {
                    lateWorkers += 1
                } else {
                    failedWorkers += 1
                    if workerFailure == nil { workerFailure = "\(error)" }
                }
            }
            return
        }
        defer { reader.close() }
        let starts = condition.withLock { () -> Bool in
            opening.removeAll { $0 === interrupt }
            if finished {
                lateWorkers += 1
                return false
            }
            active += 1
            return true
        }
        guard starts else { return }
        defer {
            condition.withLock {
                active -= 1
                condition.broadcast()
            }
        }
        drain(with: reader, isLeader: false)
    }

    private func drain(with reader: any RowReader, isLeader: Bool) {
        while let item = next(isLeader: isLeader) {
            do {
                try read(item, with: reader)
            } catch is SnapshotReader.LockBusy {
                condition.withLock {
                    leaderQueue.append(item)
                    condition.broadcast()
                }
            } catch {
                condition.withLock {
                    if failure == nil { failure = error }
                    condition.broadcast()
                }
                return
            }
        }
    }

    /// The next item, or nil when there is none left (or the backup failed). The leader waits
    /// while workers run, since they may hand it items they cannot lock.
    private func next(isLeader: Bool) -> Item? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if failure != nil { return nil }
            if isLeader, !leaderQueue.isEmpty { return leaderQueue.removeFirst() }
            if !queue.isEmpty { return queue.removeFirst() }
            if !isLeader || active == 0 { return nil }
            condition.wait()
        }
    }

    private var failed: Bool { condition.withLock { failure != nil } }

    private func read(_ item: Item, with reader: any RowReader) throws {
        let table = tables[item.table]
        let whole = sliceCounts[item.table] == 1
        let file = whole ? files[item.table] : files[item.table] + ".part\(item.part)"
        condition.withLock { if started[item.table] == nil { started[item.table] = Date() } }
        // A generous guess at the raw size (compressed is smaller): object storage sizes its parts by it.
        let hint = table.estimatedRows > 0 ? table.estimatedRows * Int64(16 + 16 * table.columns.count) : nil
        let writer = try ZstdFileWriter(
            into: try folder.create(file, sizeHint: hint), level: level,
            recipients: whole ? folder.recipients : folder.partRecipients)
        let rows: Int64
        do {
            rows = try copy(item, with: reader, into: writer)
        } catch let busy as SnapshotReader.LockBusy {
            // The leader will write this file from scratch.
            try folder.delete(file)
            throw busy
        }
        let (bytes, sha256) = try writer.finish()
        let result = PartResult(rows: rows, bytes: bytes, rawBytes: writer.rawBytes)
        let complete = condition.withLock { () -> [PartResult]? in
            parts[item.table][item.part] = result
            rawBytes += result.rawBytes
            let all = parts[item.table].compactMap { $0 }
            return all.count == parts[item.table].count ? all : nil
        }
        guard let complete else { return }
        let entry: Manifest.Table
        if whole {
            entry = makeEntry(item.table, rows: rows, bytes: bytes, sha256: sha256, parts: nil)
        } else {
            let (total, digest) = try concatenate(
                item.table, count: complete.count, bytes: complete.reduce(0) { $0 + $1.bytes })
            // Frame sizes say nothing about an encrypted file's bytes: parts are listed only for plain files.
            entry = makeEntry(
                item.table, rows: complete.reduce(0) { $0 + $1.rows }, bytes: total, sha256: digest,
                parts: folder.recipients.isEmpty ? complete.map { Manifest.Part(rows: $0.rows, bytes: $0.bytes) } : nil)
        }
        let seconds = condition.withLock { () -> Double in
            entries[item.table] = entry
            return Date().timeIntervalSince(started[item.table] ?? Date())
        }
        logger.info(
            "table done",
            metadata: [
                "table": "\(table.name)", "rows": "\(entry.rows)",
                "raw_bytes": "\(complete.reduce(0) { $0 + $1.rawBytes })",
                "bytes": "\(entry.bytes)", "seconds": "\(String(format: "%.2f", seconds))",
            ])
    }

    private func copy(_ item: Item, with reader: any RowReader, into writer: ZstdFileWriter) throws -> Int64 {
        var pending: Int64 = 0
        var chunks = 0
        return try reader.readRows(of: tables[item.table], slice: item.slice) { chunk in
            try writer.write(chunk)
            chunks += 1
            if progress != nil { pending += LineScanner.countNewlines(chunk) }
            // Often enough for a live progress line and a prompt stop after another item failed.
            if chunks & 1023 == 0 {
                if failed { throw CancellationError() }
                if progress != nil {
                    report(item.table, rows: pending, rawBytes: writer.rawBytes)
                    pending = 0
                }
            }
        }
    }

    private func report(_ table: Int, rows: Int64, rawBytes partBytes: Int64) {
        guard let progress else { return }
        let now = Date()
        let snapshot = condition.withLock { () -> BackupProgress? in
            rowsSeen[table] += rows
            guard now.timeIntervalSince(lastReport) >= 0.25 else { return nil }
            lastReport = now
            let done = parts[table].compactMap { $0 }.reduce(0) { $0 + $1.rawBytes }
            return BackupProgress(
                table: tables[table].name, rows: rowsSeen[table], rawBytes: done + partBytes,
                estimatedRows: tables[table].estimatedRows, seconds: now.timeIntervalSince(started[table] ?? now))
        }
        if let snapshot { progress(snapshot) }
    }

    /// Joins a table's part files, in order, into its data file, hashing what it writes.
    /// Encrypted parts are decrypted with the folder's own part key and the joined file is
    /// encrypted to the recipients: one age file per table, as `age -d` expects.
    private func concatenate(_ table: Int, count: Int, bytes: Int64) throws -> (bytes: Int64, sha256: String) {
        let stored = HashingWriter(try folder.create(files[table], sizeHint: bytes))
        let output: ObjectWriter =
            folder.recipients.isEmpty ? stored : try AgeWriter(into: stored, recipients: folder.recipients)
        for part in 0..<count {
            let name = files[table] + ".part\(part)"
            let opened = try folder.open(name)
            let input = try folder.partIdentity.map { try AgeReader(opened, identities: [$0]) } ?? opened
            try input.forEachChunk { chunk in try output.write(chunk) }
            input.close()
            try folder.delete(name)
        }
        try output.finish()
        return (stored.count, stored.sha256)
    }

    private func makeEntry(_ index: Int, rows: Int64, bytes: Int64, sha256: String, parts: [Manifest.Part]?)
        -> Manifest.Table
    {
        let table = tables[index]
        return Manifest.Table(
            schema: table.name.schema, name: table.name.name, kind: table.partitioned ? "partitioned" : "table",
            file: files[index], columns: table.columns, primaryKey: table.primaryKey, foreignKeys: table.foreignKeys,
            rows: rows, bytes: bytes, sha256: sha256, parts: parts)
    }
}
