/// Finds the boundaries of JSON values in bytes without decoding them, so rows keep the
/// server's exact bytes (big numbers, escapes) while being split and filtered.
///
/// Input is trusted to be JSON produced by PostgreSQL; malformed input yields `nil`, never a crash.
enum JSONScanner {
    /// The end (exclusive) of the value starting at `start` (after any whitespace), or nil.
    static func valueEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var i = skipSpace(bytes, start)
        guard i < bytes.count else { return nil }
        switch bytes[i] {
        case UInt8(ascii: "\""):
            return stringEnd(bytes, i)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: "\""):
                    guard let end = stringEnd(bytes, i) else { return nil }
                    i = end
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return i + 1 }
                default:
                    break
                }
                i += 1
            }
            return nil
        default:
            // Number, true, false, null: runs to the next delimiter.
            while i < bytes.count {
                let b = bytes[i]
                if b == UInt8(ascii: ",") || b == UInt8(ascii: "}") || b == UInt8(ascii: "]") || isSpace(b) { break }
                i += 1
            }
            return i
        }
    }

    /// The end (exclusive) of the string whose opening quote is at `start`.
    static func stringEnd(_ bytes: UnsafeRawBufferPointer, _ start: Int) -> Int? {
        var i = start + 1
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\\") {
                i += 2
                continue
            }
            if b == UInt8(ascii: "\"") { return i + 1 }
            i += 1
        }
        return nil
    }

    static func skipSpace(_ bytes: UnsafeRawBufferPointer, _ start: Int) -> Int {
        var i = start
        while i < bytes.count && isSpace(bytes[i]) { i += 1 }
        return i
    }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }

    /// Calls `body` with the byte range of each element of the top-level array in `bytes`.
    /// - Returns: false when `bytes` is not a well-formed array of values.
    static func forEachArrayElement(_ bytes: UnsafeRawBufferPointer, _ body: (Range<Int>) throws -> Void) rethrows
        -> Bool
    {
        var i = skipSpace(bytes, 0)
        guard i < bytes.count, bytes[i] == UInt8(ascii: "[") else { return false }
        i = skipSpace(bytes, i + 1)
        if i < bytes.count && bytes[i] == UInt8(ascii: "]") { return skipSpace(bytes, i + 1) == bytes.count }
        while true {
            let start = skipSpace(bytes, i)
            guard let end = valueEnd(bytes, from: start) else { return false }
            try body(start..<end)
            i = skipSpace(bytes, end)
            guard i < bytes.count else { return false }
            if bytes[i] == UInt8(ascii: "]") { return skipSpace(bytes, i + 1) == bytes.count }
            guard bytes[i] == UInt8(ascii: ",") else { return false }
            i += 1
        }
    }

    /// One member of an object: the key's raw string token (with quotes) and the value's bytes.
    struct Member {
        var key: Range<Int>
        var value: Range<Int>
    }

    /// The top-level members of the object in `bytes[range]`, or nil if it is not an object.
    static func members(_ bytes: UnsafeRawBufferPointer, in range: Range<Int>) -> [Member]? {
        var found: [Member] = []
        return Self.members(bytes, in: range, into: &found) ? found : nil
    }

    /// `members(_:in:)` into a caller's array (emptied first, its capacity kept): no allocation
    /// per row on the restore path. False if it is not an object.
    static func members(_ bytes: UnsafeRawBufferPointer, in range: Range<Int>, into members: inout [Member]) -> Bool {
        members.removeAll(keepingCapacity: true)
        let slice = UnsafeRawBufferPointer(rebasing: bytes[range])
        var i = skipSpace(slice, 0)
        guard i < slice.count, slice[i] == UInt8(ascii: "{") else { return false }
        i = skipSpace(slice, i + 1)
        if i < slice.count && slice[i] == UInt8(ascii: "}") { return true }
        while true {
            i = skipSpace(slice, i)
            guard i < slice.count, slice[i] == UInt8(ascii: "\""), let keyEnd = stringEnd(slice, i) else {
                return false
            }
            let key = i..<keyEnd
            i = skipSpace(slice, keyEnd)
            guard i < slice.count, slice[i] == UInt8(ascii: ":") else { return false }
            let valueStart = skipSpace(slice, i + 1)
            guard let valueEnd = valueEnd(slice, from: valueStart) else { return false }
            members.append(
                Member(
                    key: (key.lowerBound + range.lowerBound)..<(key.upperBound + range.lowerBound),
                    value: (valueStart + range.lowerBound)..<(valueEnd + range.lowerBound)))
            i = skipSpace(slice, valueEnd)
            guard i < slice.count else { return false }
            if slice[i] == UInt8(ascii: "}") { return true }
            guard slice[i] == UInt8(ascii: ",") else { return false }
            i += 1
        }
    }

    /// Appends `{"key":value,...}` of `members` (of `bytes`), in order and without whitespace,
    /// leaving out the members `omit` selects by position.
    static func appendObject(
        _ bytes: UnsafeRawBufferPointer, _ members: [Member], to out: inout [UInt8],
        omitting omit: (Int, Member) -> Bool
    ) {
        out.append(UInt8(ascii: "{"))
        var first = true
        for (index, member) in members.enumerated() where !omit(index, member) {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[member.key]))
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[member.value]))
        }
        out.append(UInt8(ascii: "}"))
    }

    /// Column names matched against a row's key tokens byte for byte (the server escapes a
    /// name exactly as `SQL.jsonString` does), decoding only keys that hold an escape.
    struct KeySet {
        let names: Set<String>
        private let tokens: [[UInt8]]

        init(_ names: Set<String>) {
            self.names = names
            tokens = names.map { Array(SQL.jsonString($0).utf8) }
        }

        var isEmpty: Bool { names.isEmpty }

        func contains(_ key: UnsafeRawBufferPointer) -> Bool {
            if key.contains(UInt8(ascii: "\\")) { return decodeString(key).map(names.contains) == true }
            return tokens.contains { $0.count == key.count && $0.elementsEqual(key) }
        }
    }

    /// Appends the object at `range`, replacing the string values of the `unwrapping` members by
    /// the JSON text they hold (columns read or kept as text) and, with `omittingNull`, leaving
    /// out those members when they are `null` (SQL NULL). Other members are copied as they are.
    static func appendObject(
        _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, unwrapping keys: KeySet, omittingNull: Bool,
        to out: inout [UInt8]
    ) {
        guard !keys.isEmpty, let members = members(bytes, in: range) else {
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[range]))
            return
        }
        out.append(UInt8(ascii: "{"))
        var first = true
        for member in members {
            let key = UnsafeRawBufferPointer(rebasing: bytes[member.key])
            let value = UnsafeRawBufferPointer(rebasing: bytes[member.value])
            let named = keys.contains(key)
            if named && omittingNull && value.count == 4 && value.first == UInt8(ascii: "n") { continue }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(contentsOf: key)
            out.append(UInt8(ascii: ":"))
            let mark = out.count
            if !(named && value.first == UInt8(ascii: "\"") && appendUnescaped(value, to: &out)) {
                out.removeSubrange(mark...)
                out.append(contentsOf: value)
            }
        }
        out.append(UInt8(ascii: "}"))
    }

    /// Decodes a JSON string token (with its quotes) into a Swift string.
    static func decodeString(_ bytes: UnsafeRawBufferPointer) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        guard appendUnescaped(bytes, to: &out) else { return nil }
        return String(validating: out, as: UTF8.self)
    }

    /// Appends the bytes a JSON string token (with its quotes) stands for; false, having
    /// appended a partial result, when the token is malformed.
    static func appendUnescaped(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) -> Bool {
        guard bytes.count >= 2, bytes.first == UInt8(ascii: "\""), bytes.last == UInt8(ascii: "\"") else {
            return false
        }
        var i = 1
        let end = bytes.count - 1
        while i < end {
            // Runs without escapes are copied whole: per-byte appends made bytea restores slow.
            var run = i
            while run < end && bytes[run] != UInt8(ascii: "\\") { run += 1 }
            if run > i {
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<run]))
                i = run
                continue
            }
            guard i + 1 < end else { return false }
            let e = bytes[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard i + 4 <= end, var scalar = hex4(bytes, i) else { return false }
                i += 4
                if (0xD800..<0xDC00).contains(scalar), i + 6 <= end, bytes[i] == UInt8(ascii: "\\"),
                    bytes[i + 1] == UInt8(ascii: "u"), let low = hex4(bytes, i + 2), (0xDC00..<0xE000).contains(low)
                {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                }
                guard let unicode = Unicode.Scalar(scalar) else { return false }
                out.append(contentsOf: Array(String(Character(unicode)).utf8))
            default:
                return false
            }
        }
        return true
    }

    private static func hex4(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt32? {
        var value: UInt32 = 0
        for k in 0..<4 {
            let b = bytes[at + k]
            let digit: UInt32
            switch b {
            case 48...57: digit = UInt32(b - 48)
            case 65...70: digit = UInt32(b - 55)
            case 97...102: digit = UInt32(b - 87)
            default: return nil
            }
            value = value << 4 | digit
        }
        return value
    }
}
