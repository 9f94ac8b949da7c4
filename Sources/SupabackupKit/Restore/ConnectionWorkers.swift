import Foundation

/// Runs items over connections of their own, as `pg_restore -j` does: each item commits on its
/// own, so this serves only work that nobody else sees yet (a fresh restore's tables and
/// indexes). An item starts once the items it comes after are done, the first ready one in the
/// order given (largest first, so the last to finish are small); after the first failure no new
/// item starts, and that failure is rethrown once every connection is done.
final class ConnectionWorkers<Item: Sendable, Output: Sendable>: @unchecked Sendable {
    // @unchecked: every var is touched only under `condition`.
    private let condition = NSCondition()
    private let items: [Item]
    private let after: [[Int]]
    private var started: [Bool]
    private var outputs: [Output?]
    private var running = 0
    private var failure: (any Error)?
    private var openFailure: (any Error)?

    private init(_ items: [Item], after: [[Int]]) {
        self.items = items
        self.after = after
        started = Array(repeating: false, count: items.count)
        outputs = Array(repeating: nil, count: items.count)
    }

    /// The outputs in the order of `items`; `after[i]` lists the items item i waits for. A
    /// connection that cannot be opened (a pooler's limit) leaves its share to the others; the
    /// run fails only when none could be opened.
    static func run(
        _ items: [Item], after: [[Int]], jobs: Int, connect: @escaping @Sendable () throws -> PostgresConnection,
        _ work: @escaping @Sendable (PostgresConnection, Item) throws -> Output
    ) throws -> [Output] {
        guard !items.isEmpty else { return [] }
        let run = ConnectionWorkers(items, after: after)
        let done = DispatchGroup()
        for index in 0..<max(1, min(jobs, items.count)) {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                run.work(connect: connect, work)
            }
            thread.name = "supabackup-restore-\(index + 1)"
            thread.start()
        }
        done.wait()
        return try run.condition.withLock {
            if let failure = run.failure { throw failure }
            guard run.outputs.allSatisfy({ $0 != nil }) else {
                throw run.openFailure ?? InternalError("parallel restore stopped with items left")
            }
            return run.outputs.map { $0! }
        }
    }

    private func work(
        connect: () throws -> PostgresConnection, _ work: (PostgresConnection, Item) throws -> Output
    ) {
        let connection: PostgresConnection
        do {
            connection = try connect()
        } catch {
            condition.withLock { if openFailure == nil { openFailure = error } }
            return
        }
        defer { connection.close() }
        while let index = take() {
            let result = Result { try work(connection, items[index]) }
            condition.withLock {
                running -= 1
                switch result {
                case .success(let output): outputs[index] = output
                case .failure(let error): if failure == nil { failure = error }
                }
                condition.broadcast()
            }
        }
    }

    /// The next ready item; waits while the only ones left wait for running ones. Nil when all
    /// have started, after a failure, or when nothing can become ready.
    private func take() -> Int? {
        condition.lock()
        defer { condition.unlock() }
        while failure == nil {
            var waiting = false
            for index in items.indices where !started[index] {
                if after[index].allSatisfy({ outputs[$0] != nil }) {
                    started[index] = true
                    running += 1
                    return index
                }
                waiting = true
            }
            guard waiting && running > 0 else { return nil }
            condition.wait()
        }
        return nil
    }
}
