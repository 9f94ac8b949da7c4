/// Splits a stream of chunks into newline-terminated lines, carrying a partial line across
/// chunks. Memory is bounded by the longest line.
struct LineScanner {
    private var partial: [UInt8] = []
    private(set) var lines: Int64 = 0

    /// Calls `body` with each complete line (without its newline).
    mutating func feed(_ chunk: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        var start = 0
        let count = chunk.count
        while start < count {
            guard let newline = Self.indexOfNewline(chunk, from: start) else {
                partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start..<count]))
                return
            }
            lines += 1
            if partial.isEmpty {
                try body(UnsafeRawBufferPointer(rebasing: chunk[start..<newline]))
            } else {
                partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start..<newline]))
                try partial.withUnsafeBytes { try body($0) }
                partial.removeAll(keepingCapacity: partial.count < 1 << 20)
            }
            start = newline + 1
        }
    }

    /// Counts newlines only, for callers that need no lines.
    static func countNewlines(_ chunk: UnsafeRawBufferPointer) -> Int64 {
        var total: Int64 = 0
        var start = 0
        while let newline = indexOfNewline(chunk, from: start) {
            total += 1
            start = newline + 1
        }
        return total
    }

    static func indexOfNewline(_ chunk: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < chunk.count, let base = chunk.baseAddress else { return nil }
        guard let found = memchr(base + start, 0x0A, chunk.count - start) else { return nil }
        return UnsafeRawPointer(found) - base
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
