/// Renders NDJSON lines on the client from `COPY ... TO STDOUT` text rows, byte for byte as the
/// server's `row_to_json` would: the server sends each column's plain text output (its cheapest
/// work), and only columns of types the client does not know are rendered by the server
/// (`to_json(column)`, which is what `row_to_json` does per column).
///
/// PostgreSQL's rules, from `datum_to_json` and `escape_json` (src/backend/utils/adt/json.c):
/// the type (after looking through domains) decides, by OID (`json_categorize_type`): int2/4/8,
/// float4/8 and numeric are numbers verbatim unless not a valid JSON number (NaN, Infinity: then
/// a string); booleans `true`/`false`; jsonb verbatim; date and timestamps in XSD form; true
/// arrays element by element; composites and types with a cast to json have rules of their own
/// (left to the server); everything else (oid included) is its output text as a JSON string,
/// escaping `"`, `\` and bytes below 0x20 (`\b \f \n \r \t`, else `\u00xx`). Keys are column
/// names escaped the same way. `TypeClassifier` decides each column's kind.
struct ClientRendering {
    enum Kind: Equatable, Sendable {
        /// Integer types: the text is the JSON number.
        case integer
        /// numeric, real, double precision: a number, or a string for NaN and infinities.
        case number
        case boolean
        /// The output text as a JSON string.
        case string
        /// JSON text already (jsonb, or `to_json(column)` from the server).
        case verbatim
        /// timestamp and timestamptz: ISO text (`2025-01-01 10:00:00.5+00`) to JSON's XSD form
        /// (`"2025-01-01T10:00:00.5+00:00"`); the session's time zone is UTC.
        case timestamp
        /// An array (any number of dimensions) of elements of this kind: to_json's nested arrays.
        indirect case array(Kind)
    }

    struct Column {
        /// `{"name":` or `,"name":` is built at render time; this is `"name":`.
        var key: [UInt8]
        var kind: Kind
        /// jsonb: SQL NULL leaves the key out (`json_omit_null`).
        var omitNull: Bool
        /// The select-list item: the column, or `to_json(column)` when the server renders it.
        var selectItem: String
    }

    let columns: [Column]
    // Made once: these are written per value, on the per-row path.
    private static let null = Array("null".utf8)
    private static let `true` = Array("true".utf8)
    private static let `false` = Array("false".utf8)
    private static let hexDigits = Array("0123456789abcdef".utf8)
    private var line: [UInt8] = []
    /// An array field without COPY's escapes, and one quoted element of it.
    private var scratch: [UInt8] = []
    private var element: [UInt8] = []

    /// nil for a table without columns (its lines are `{}`; the server path handles it).
    /// - Parameter kinds: per column, how the client renders it (`TypeClassifier.renderKind`);
    ///   nil: the server renders it with `to_json(column)`.
    init?(_ columns: [Manifest.Column], kinds: [Kind?]) {
        guard !columns.isEmpty, kinds.count == columns.count else { return nil }
        var out: [Column] = []
        for (column, kind) in zip(columns, kinds) {
            let name = SQL.quoteIdentifier(column.name)
            out.append(
                Column(
                    key: Self.escaped(Array(column.name.utf8)) + [UInt8(ascii: ":")],
                    kind: kind ?? .verbatim, omitNull: column.encoding == .jsonOmitNull,
                    selectItem: kind == nil ? "to_json(\(name))" : name))
            // A jsonOmitNull column the server renders needs no null mask: to_json(NULL) is SQL
            // NULL (the key is left out), to_json of a JSON null is `null`.
        }
        self.columns = out
        line.reserveCapacity(1 << 16)
    }

    /// `"text"` with PostgreSQL's escape_json rules.
    static func escaped(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x22]
        for byte in bytes { appendEscaped(byte, to: &out) }
        out.append(0x22)
        return out
    }

    @inline(__always)
    private static func appendEscaped(_ byte: UInt8, to out: inout [UInt8]) {
        switch byte {
        case 0x08: out += [0x5C, UInt8(ascii: "b")]
        case 0x0C: out += [0x5C, UInt8(ascii: "f")]
        case 0x0A: out += [0x5C, UInt8(ascii: "n")]
        case 0x0D: out += [0x5C, UInt8(ascii: "r")]
        case 0x09: out += [0x5C, UInt8(ascii: "t")]
        case 0x22: out += [0x5C, 0x22]
        case 0x5C: out += [0x5C, 0x5C]
        case 0..<0x20:
            out += [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 15)]]
        default: out.append(byte)
        }
    }

    /// The byte a COPY text escape `\x` stands for (COPY TO writes only these).
    @inline(__always)
    private static func unescaped(_ byte: UInt8) -> UInt8 {
        switch byte {
        case UInt8(ascii: "b"): return 0x08
        case UInt8(ascii: "f"): return 0x0C
        case UInt8(ascii: "n"): return 0x0A
        case UInt8(ascii: "r"): return 0x0D
        case UInt8(ascii: "t"): return 0x09
        case UInt8(ascii: "v"): return 0x0B
        default: return byte
        }
    }

    /// Turns one COPY text row (fields split by tab, `\N` for NULL, ending in a newline) into
    /// one NDJSON line.
    mutating func render(_ row: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        line.removeAll(keepingCapacity: true)
        line.append(UInt8(ascii: "{"))
        var position = 0
        var end = row.count
        if end > 0 && row[end - 1] == 0x0A { end -= 1 }
        var first = true
        for (index, column) in columns.enumerated() {
            var fieldEnd = position
            while fieldEnd < end && row[fieldEnd] != 0x09 { fieldEnd += 1 }
            guard index == columns.count - 1 ? fieldEnd == end : fieldEnd < end else {
                throw PostgresError(code: .protocolViolation, message: "a COPY row has the wrong number of fields")
            }
            let isNull = fieldEnd - position == 2 && row[position] == 0x5C && row[position + 1] == UInt8(ascii: "N")
            if !(isNull && column.omitNull) {
                if !first { line.append(UInt8(ascii: ",")) }
                first = false
                line += column.key
                if isNull {
                    line += Self.null
                } else {
                    append(column.kind, row, position..<fieldEnd)
                }
            }
            position = fieldEnd + 1
        }
        line.append(UInt8(ascii: "}"))
        line.append(0x0A)
        try line.withUnsafeBytes { try body($0) }
    }

    private mutating func append(_ kind: Kind, _ row: UnsafeRawBufferPointer, _ range: Range<Int>) {
        switch kind {
        case .verbatim:
            var i = range.lowerBound
            while i < range.upperBound {
                let byte = row[i]
                if byte == 0x5C && i + 1 < range.upperBound {
                    line.append(Self.unescaped(row[i + 1]))
                    i += 2
                } else {
                    line.append(byte)
                    i += 1
                }
            }
        case .array(let element):
            // COPY's escapes first, then the array literal.
            scratch.removeAll(keepingCapacity: true)
            var i = range.lowerBound
            while i < range.upperBound {
                if row[i] == 0x5C && i + 1 < range.upperBound {
                    scratch.append(Self.unescaped(row[i + 1]))
                    i += 2
                } else {
                    scratch.append(row[i])
                    i += 1
                }
            }
            let text = scratch
            text.withUnsafeBytes { appendArray(element, $0) }
        default:
            // No other kind's text can hold a byte COPY escapes except strings.
            if kind == .string {
                appendString(row, range, copyEscaped: true)
            } else {
                appendScalar(kind, row, range)
            }
        }
    }

    /// A value of a scalar kind, from text without COPY escapes (integers, numbers, booleans and
    /// timestamps never contain one).
    private mutating func appendScalar(_ kind: Kind, _ row: UnsafeRawBufferPointer, _ range: Range<Int>) {
        switch kind {
        case .integer:
            line.append(contentsOf: UnsafeRawBufferPointer(rebasing: row[range]))
        case .boolean:
            line += row[range.lowerBound] == UInt8(ascii: "t") ? Self.true : Self.false
        case .number:
            // NaN, Infinity and -Infinity are the only outputs that are not JSON numbers.
            let first = row[range.lowerBound]
            let isWord =
                first == UInt8(ascii: "N") || first == UInt8(ascii: "I")
                || (first == UInt8(ascii: "-") && range.count > 1 && row[range.lowerBound + 1] == UInt8(ascii: "I"))
            if isWord { line.append(0x22) }
            line.append(contentsOf: UnsafeRawBufferPointer(rebasing: row[range]))
            if isWord { line.append(0x22) }
        case .timestamp:
            // `infinity`, `-infinity`; `YYYY-MM-DD HH:MM:SS[.f][+00][ BC]` (years may be longer).
            line.append(0x22)
            var sawSpace = false
            var i = range.lowerBound
            while i < range.upperBound {
                let byte = row[i]
                if byte == 0x20 && !sawSpace {
                    sawSpace = true
                    line.append(UInt8(ascii: "T"))
                } else {
                    line.append(byte)
                    // The UTC offset, `+00`, is written `+00:00` in JSON.
                    if sawSpace && byte == UInt8(ascii: "0") && i >= range.lowerBound + 2
                        && row[i - 2] == UInt8(ascii: "+") && row[i - 1] == UInt8(ascii: "0")
                    {
                        line += [UInt8(ascii: ":"), 0x30, 0x30]
                    }
                }
                i += 1
            }
            line.append(0x22)
        case .string:
            appendString(row, range, copyEscaped: false)
        case .verbatim, .array:
            line.append(contentsOf: UnsafeRawBufferPointer(rebasing: row[range]))
        }
    }

    /// A JSON string of the text, unescaping COPY's escapes when `copyEscaped`.
    private mutating func appendString(_ row: UnsafeRawBufferPointer, _ range: Range<Int>, copyEscaped: Bool) {
        line.append(0x22)
        var i = range.lowerBound
        while i < range.upperBound {
            var byte = row[i]
            if copyEscaped && byte == 0x5C && i + 1 < range.upperBound {
                byte = Self.unescaped(row[i + 1])
                i += 2
            } else {
                i += 1
            }
            if byte >= 0x20 && byte != 0x22 && byte != 0x5C {
                line.append(byte)
            } else {
                Self.appendEscaped(byte, to: &line)
            }
        }
        line.append(0x22)
    }

    /// An array literal (`{1,NULL,"a b"}`, `{{1,2},{3,4}}`, `[0:1]={1,2}`) as to_json renders it:
    /// nested JSON arrays without spaces, bounds dropped.
    private mutating func appendArray(_ elementKind: Kind, _ text: UnsafeRawBufferPointer) {
        var i = 0
        if text.first == UInt8(ascii: "["), let equals = text.firstIndex(of: UInt8(ascii: "=")) { i = equals + 1 }
        while i < text.count {
            let byte = text[i]
            switch byte {
            case UInt8(ascii: "{"):
                line.append(UInt8(ascii: "["))
                i += 1
            case UInt8(ascii: "}"):
                line.append(UInt8(ascii: "]"))
                i += 1
            case UInt8(ascii: ","):
                line.append(UInt8(ascii: ","))
                i += 1
            case 0x22:
                // A quoted element: `\` and `"` inside.
                self.element.removeAll(keepingCapacity: true)
                i += 1
                while i < text.count && text[i] != 0x22 {
                    if text[i] == 0x5C && i + 1 < text.count { i += 1 }
                    self.element.append(text[i])
                    i += 1
                }
                i += 1
                let value = self.element
                value.withUnsafeBytes { appendScalar(elementKind, $0, 0..<$0.count) }
            default:
                var end = i
                while end < text.count && text[end] != UInt8(ascii: ",") && text[end] != UInt8(ascii: "}") { end += 1 }
                if end - i == 4 && text[i] == UInt8(ascii: "N") && text[i + 1] == UInt8(ascii: "U")
                    && text[i + 2] == UInt8(ascii: "L") && text[i + 3] == UInt8(ascii: "L")
                {
                    line += Self.null
                } else {
                    appendScalar(elementKind, text, i..<end)
                }
                i = end
            }
        }
    }
}
