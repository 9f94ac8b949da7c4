/// Builds the `COPY ... TO STDOUT` statement that renders a table's rows as NDJSON lines.
///
/// The server renders each row: `row_to_json` when no column leaves its key out, otherwise a
/// concatenation of per-column `"key":value` pieces in column order (the same bytes
/// `row_to_json` would give, minus the keys of SQL-NULL jsonb values). COPY runs in CSV mode
/// with control characters as quote and delimiter, which never occur in a JSON line, so each
/// row arrives as its JSON text plus a newline, with nothing to unescape.
public enum RowQuery {
    /// COPY options shared by backup (TO STDOUT) and restore (FROM STDIN).
    public static let copyOptions = "(FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"

    public struct Column: Sendable {
        public var name: String
        public var encoding: ValueEncoding
        public init(name: String, encoding: ValueEncoding) {
            self.name = name
            self.encoding = encoding
        }
    }

    /// - Parameter slice: only one partition of a partitioned table, and/or only the rows in a
    ///   range of heap blocks (a TID range scan, PostgreSQL 14+).
    public static func copyStatement(
        table: TableName, partitioned: Bool, columns: [Column], slice: TableSlice? = nil
    ) -> String {
        var from = partitioned ? table.quoted : "ONLY " + table.quoted
        if let leaf = slice?.leaf { from = "ONLY " + leaf.quoted }
        if let blocks = slice?.blocks { from += " WHERE " + blocks.condition }
        let select: String
        if columns.contains(where: { $0.encoding == .jsonOmitNull }) {
            select = "SELECT " + concatenatedObject(columns) + " FROM " + from
        } else {
            let list = columns.isEmpty ? "" : columns.map(selectItem).joined(separator: ", ")
            select = "SELECT row_to_json(r) FROM (SELECT \(list) FROM \(from)) r"
        }
        return "COPY (\(select)) TO STDOUT WITH \(copyOptions)"
    }

    private static func selectItem(_ column: Column) -> String {
        let name = SQL.quoteIdentifier(column.name)
        switch column.encoding {
        case .text: return "\(name)::text AS \(name)"
        case .json, .jsonOmitNull: return name
        }
    }

    /// `'{' || pieces joined by ',' || '}'`; `concat_ws` skips the NULL pieces of omitted keys.
    /// Pieces are grouped because a function takes at most 100 arguments.
    private static func concatenatedObject(_ columns: [Column]) -> String {
        let pieces = columns.map { column -> String in
            let key = SQL.quoteLiteral(SQL.jsonString(column.name) + ":")
            let name = SQL.quoteIdentifier(column.name)
            switch column.encoding {
            case .json: return "\(key) || coalesce(to_json(\(name))::text, 'null')"
            case .text: return "\(key) || coalesce(to_json(\(name)::text)::text, 'null')"
            case .jsonOmitNull: return "\(key) || \(name)::text"
            }
        }
        var groups: [String] = []
        var index = 0
        while index < pieces.count {
            let group = pieces[index..<min(index + 90, pieces.count)]
            groups.append("nullif(concat_ws(',', \(group.joined(separator: ", "))), '')")
            index += 90
        }
        let body = groups.count == 1 ? groups[0] : "concat_ws(',', \(groups.joined(separator: ", ")))"
        return "'{' || coalesce(\(body), '') || '}'"
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
