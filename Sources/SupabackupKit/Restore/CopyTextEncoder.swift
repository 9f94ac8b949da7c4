/// Turns archive lines into rows of COPY's text format, on the client, so the server loads rows
/// with its plain input functions instead of parsing JSON.
///
/// Each column's JSON value becomes PostgreSQL's text input: strings unescaped, numbers and
/// booleans as written, JSON arrays as array literals, jsonb as its JSON text, NULL and absent
/// keys as `\N`; then COPY's escaping is applied. A value this cannot express exactly (a
/// composite value, an object inside an array) throws `Unsupported`, and the caller uses the
/// server-side JSON path for that table instead.
struct CopyTextEncoder {
    struct Unsupported: Error {
        var column: String
    }

    private let columns: [RestorePlan.ColumnPlan]
    /// Column name bytes -> position in `columns`.
    private let positions: [[UInt8]: Int]
    private var fields: [Range<Int>?]
    private var field: [UInt8] = []
    /// The key token seen at each member position of the last lines, and its column: lines
    /// repeat their keys in the same order, so a byte comparison replaces a lookup that would
    /// allocate for every value of every row.
    private var seenKeys: [[UInt8]] = []
    private var seenPositions: [Int?] = []
    /// The current line's members, reused from line to line.
    private var members: [JSONScanner.Member] = []

    init(columns: [RestorePlan.ColumnPlan]) {
        self.columns = columns
        var positions: [[UInt8]: Int] = [:]
        for (index, column) in columns.enumerated() { positions[Array(column.name.utf8)] = index }
        self.positions = positions
        fields = Array(repeating: nil, count: columns.count)
    }

    /// Appends one COPY text row (ending in `\n`) for `line` to `out`.
    mutating func append(_ line: UnsafeRawBufferPointer, to out: inout [UInt8]) throws {
        for i in fields.indices { fields[i] = nil }
        guard JSONScanner.members(line, in: 0..<line.count, into: &members) else {
            throw Unsupported(column: "")
        }
        for (slot, member) in members.enumerated() {
            let key = UnsafeRawBufferPointer(rebasing: line[member.key])
            let position: Int?
            if slot < seenKeys.count && key.elementsEqual(seenKeys[slot]) {
                position = seenPositions[slot]
            } else {
                // Keys are written by PostgreSQL; plain ones need no unescaping.
                let name: [UInt8]
                if key.contains(UInt8(ascii: "\\")) {
                    name = Array((JSONScanner.decodeString(key) ?? "").utf8)
                } else {
                    name = Array(key[1..<(key.count - 1)])
                }
                position = positions[name]
                if slot < seenKeys.count {
                    seenKeys[slot] = Array(key)
                    seenPositions[slot] = position
                } else {
                    seenKeys.append(Array(key))
                    seenPositions.append(position)
                }
            }
            if let position { fields[position] = member.value }
        }
        for (index, column) in columns.enumerated() {
            if index > 0 { out.append(0x09) }
            guard let range = fields[index] else {
                out.append(0x5C)  // \N
                out.append(0x4E)
                continue
            }
            let value = UnsafeRawBufferPointer(rebasing: line[range])
            if value.count == 4 && value[0] == UInt8(ascii: "n") {
                // jsonb keeps a JSON null as the value null; everything else null is SQL NULL.
                if column.encoding == .jsonOmitNull {
                    out.append(contentsOf: Self.null)
                } else {
                    out.append(0x5C)
                    out.append(0x4E)
                }
                continue
            }
            // Values that need no rewriting go straight to `out`; only strings with escapes and
            // arrays are built in `field` first.
            if column.encoding == .jsonOmitNull {
                Self.escape(value, into: &out)
                continue
            }
            switch value.first {
            case UInt8(ascii: "\""):
                let inner = UnsafeRawBufferPointer(rebasing: value[1..<(value.count - 1)])
                if !inner.contains(UInt8(ascii: "\\")) {
                    Self.escape(inner, into: &out)
                } else {
                    field.removeAll(keepingCapacity: true)
                    guard JSONScanner.appendUnescaped(value, to: &field) else { throw Unsupported(column: column.name) }
                    field.withUnsafeBytes { Self.escape($0, into: &out) }
                }
            case UInt8(ascii: "["):
                field.removeAll(keepingCapacity: true)
                try Self.arrayLiteral(value, column: column.name, into: &field)
                field.withUnsafeBytes { Self.escape($0, into: &out) }
            case UInt8(ascii: "{"):
                throw Unsupported(column: column.name)
            default:
                out.append(contentsOf: value)  // a number, true or false: nothing to escape
            }
        }
        out.append(0x0A)
    }

    private static let null = Array("null".utf8)

    /// `[1,null,"a\"b",[2]]` -> `{1,NULL,"a\"b",{2}}`.
    private static func arrayLiteral(_ value: UnsafeRawBufferPointer, column: String, into out: inout [UInt8]) throws {
        out.append(UInt8(ascii: "{"))
        var first = true
        var failed = false
        let ok = JSONScanner.forEachArrayElement(value) { range in
            guard !failed else { return }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            let element = UnsafeRawBufferPointer(rebasing: value[range])
            switch element.first {
            case UInt8(ascii: "["):
                do { try arrayLiteral(element, column: column, into: &out) } catch { failed = true }
            case UInt8(ascii: "{"):
                failed = true
            case UInt8(ascii: "\""):
                var decoded: [UInt8] = []
                guard JSONScanner.appendUnescaped(element, to: &decoded) else {
                    failed = true
                    return
                }
                out.append(UInt8(ascii: "\""))
                for byte in decoded {
                    if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                    out.append(byte)
                }
                out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "n"):
                out.append(contentsOf: Array("NULL".utf8))
            default:
                out.append(contentsOf: element)
            }
        }
        guard ok && !failed else { throw Unsupported(column: column) }
        out.append(UInt8(ascii: "}"))
    }

    /// COPY text escaping: backslash, tab, newline, carriage return; runs without them are
    /// copied whole.
    private static func escape(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        var start = 0
        for i in 0..<bytes.count {
            let byte = bytes[i]
            guard byte == 0x5C || byte == 0x09 || byte == 0x0A || byte == 0x0D else { continue }
            if i > start { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<i])) }
            out.append(0x5C)
            out.append(
                byte == 0x5C
                    ? 0x5C : byte == 0x09 ? UInt8(ascii: "t") : byte == 0x0A ? UInt8(ascii: "n") : UInt8(ascii: "r"))
            start = i + 1
        }
        if start < bytes.count { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start...])) }
    }
}
