/// Builds the `COPY ... TO STDOUT` statement that renders a table's rows as NDJSON lines.
///
/// The server renders each row with `row_to_json`. A nullable jsonb column must leave its key
/// out when the value is SQL NULL (`row_to_json` writes `null`, which would read back as JSON
/// null), so such tables get a second output column, a null mask: one `0`/`1` per nullable
/// jsonb column (`t`/`f` when there is one). `NullMask` then drops the members the mask marks, on the client; rows without
/// SQL-NULL jsonb pass through untouched. COPY runs in CSV mode with control characters as quote
/// and delimiter, which never occur in a JSON line, so each row arrives as its JSON text (then
/// `\x02` and the mask) plus a newline, with nothing to unescape.
public enum RowQuery {
    /// COPY options shared by backup (TO STDOUT) and restore (FROM STDIN).
    public static let copyOptions = "(FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"

    public struct Column: Sendable {
        public var name: String
        public var encoding: ValueEncoding
        public var nullable: Bool
        public init(name: String, encoding: ValueEncoding, nullable: Bool = true) {
            self.name = name
            self.encoding = encoding
            self.nullable = nullable
        }
    }

    /// - Parameter slice: only one partition of a partitioned table, and/or only the rows in a
    ///   range of heap blocks (a TID range scan, PostgreSQL 14+).
    public static func copyStatement(
        table: TableName, partitioned: Bool, columns: [Column], slice: TableSlice? = nil
    ) -> String {
        let from = source(table, partitioned, slice)
        let list = columns.isEmpty ? "" : columns.map(selectItem).joined(separator: ", ")
        // `r.*`: the whole row even when a column is named r.
        var select = "SELECT row_to_json(r.*)"
        let masked = maskedColumns(columns)
        if masked.count == 1 {
            // One boolean, `t` or `f`: cheaper for the server than building a string.
            select += ", r.\(SQL.quoteIdentifier(columns[masked[0]].name)) IS NULL"
        } else if !masked.isEmpty {
            let tests = masked.map { "(r.\(SQL.quoteIdentifier(columns[$0].name)) IS NULL)::int" }
            select += ", concat(\(tests.joined(separator: ", ")))"
        }
        return "COPY (\(select) FROM (SELECT \(list) FROM \(from)) r) TO STDOUT WITH \(copyOptions)"
    }

    /// The statement for client-side rendering (`ClientRendering`): each column's text output,
    /// or `to_json(column)` where the server renders it, in COPY's text format.
    public static func plainCopyStatement(
        table: TableName, partitioned: Bool, selectItems: [String], slice: TableSlice? = nil
    ) -> String {
        "COPY (SELECT \(selectItems.joined(separator: ", ")) FROM \(source(table, partitioned, slice))) TO STDOUT"
    }

    /// What a row query reads: the table (a partitioned one with its partitions), one leaf, and/or
    /// a block range.
    private static func source(_ table: TableName, _ partitioned: Bool, _ slice: TableSlice?) -> String {
        var from = partitioned ? table.quoted : "ONLY " + table.quoted
        if let leaf = slice?.leaf { from = "ONLY " + leaf.quoted }
        if let blocks = slice?.blocks { from += " WHERE " + blocks.condition }
        return from
    }

    /// Positions of the columns the null mask covers: jsonb columns that may hold SQL NULL.
    public static func maskedColumns(_ columns: [Column]) -> [Int] {
        columns.indices.filter { columns[$0].encoding == .jsonOmitNull && columns[$0].nullable }
    }

    private static func selectItem(_ column: Column) -> String {
        let name = SQL.quoteIdentifier(column.name)
        switch column.encoding {
        case .text: return "\(name)::text AS \(name)"
        case .json, .jsonOmitNull: return name
        }
    }
}

/// Turns `json \x02 mask` rows of a masked row query into NDJSON lines, leaving out the members
/// of jsonb columns that are SQL NULL.
struct NullMask {
    /// Member positions (column order) the mask's characters stand for.
    let columns: [Int]
    private var line: [UInt8] = []

    init(columns: [Int]) {
        self.columns = columns
        line.reserveCapacity(1 << 16)
    }

    /// `1` in a mask string, `t` for a lone boolean.
    private static func isSet(_ byte: UInt8) -> Bool { byte == UInt8(ascii: "1") || byte == UInt8(ascii: "t") }

    /// - Parameter row: one CopyData message: the JSON object, `\x02`, the mask, `\n`.
    mutating func line(_ row: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let separator = row.lastIndex(of: 0x02) else {
            throw PostgresError(code: .protocolViolation, message: "a row arrived without its null mask")
        }
        let json = 0..<separator
        let mask = UnsafeRawBufferPointer(rebasing: row[(separator + 1)...])
        line.removeAll(keepingCapacity: true)
        if !mask.contains(where: Self.isSet) {
            line.append(contentsOf: UnsafeRawBufferPointer(rebasing: row[json]))
        } else {
            guard let members = JSONScanner.members(row, in: json) else {
                throw PostgresError(code: .protocolViolation, message: "a row is not a JSON object")
            }
            // `columns` ascends, so one cursor walks it alongside the members (no per-row set).
            var position = 0
            JSONScanner.appendObject(row, members, to: &line) { index, _ in
                while position < columns.count && columns[position] < index { position += 1 }
                return position < columns.count && columns[position] == index && position < mask.count
                    && Self.isSet(mask[position])
            }
        }
        line.append(0x0A)
        try line.withUnsafeBytes { try body($0) }
    }
}

/// Part of a table read on its own: one leaf partition of a partitioned table, and/or a range of
/// heap blocks.
public struct TableSlice: Sendable, Equatable {
    public var leaf: TableName?
    public var blocks: BlockRange?

    public init(leaf: TableName? = nil, blocks: BlockRange? = nil) {
        self.leaf = leaf
        self.blocks = blocks
    }
}

/// A range of a table's heap blocks, `start..<end` (`end` nil: to the end of the table), so
/// several connections can each read a slice of one large table.
public struct BlockRange: Sendable, Equatable {
    public var start: Int64
    public var end: Int64?

    public init(start: Int64, end: Int64?) {
        self.start = start
        self.end = end
    }

    /// `ctid >= '(start,0)' AND ctid < '(end,0)'`, which PostgreSQL 14+ runs as a TID range scan.
    var condition: String {
        var parts: [String] = []
        if start > 0 { parts.append("ctid >= '(\(start),0)'::tid") }
        if let end { parts.append("ctid < '(\(end),0)'::tid") }
        return parts.isEmpty ? "true" : parts.joined(separator: " AND ")
    }

    /// Splits `blocks` heap blocks into `parts` ranges of nearly equal size; the last range is
    /// open-ended so rows in blocks added after the size was read are never missed.
    public static func split(blocks: Int64, into parts: Int) -> [BlockRange] {
        guard parts > 1, blocks > 1 else { return [BlockRange(start: 0, end: nil)] }
        let count = Int64(min(Int64(parts), blocks))
        let step = (blocks + count - 1) / count
        var ranges: [BlockRange] = []
        var start: Int64 = 0
        while start + step < blocks {
            ranges.append(BlockRange(start: start, end: start + step))
            start += step
        }
        ranges.append(BlockRange(start: start, end: nil))
        return ranges
    }
}
