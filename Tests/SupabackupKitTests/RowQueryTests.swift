import Testing

@testable import SupabackupKit

@Suite("Row queries")
struct RowQueryTests {
    let table = TableName(schema: "public", name: "t\"x")

    @Test("tables without jsonb use row_to_json; json columns become text")
    func rowToJSON() {
        let sql = RowQuery.copyStatement(
            table: table, partitioned: false,
            columns: [.init(name: "id", encoding: .json), .init(name: "doc", encoding: .text)])
        #expect(sql.contains("row_to_json(r.*)"))
        #expect(sql.contains("FROM ONLY \"public\".\"t\"\"x\""))
        #expect(sql.contains("\"doc\"::text AS \"doc\""))
    }

    @Test("nullable jsonb columns get a null mask; NOT NULL ones and other columns do not")
    func nullMask() {
        var columns = (0..<150).map { RowQuery.Column(name: "c\($0)", encoding: .json) }
        columns.append(.init(name: "it's", encoding: .jsonOmitNull))
        columns.append(.init(name: "always", encoding: .jsonOmitNull, nullable: false))
        let sql = RowQuery.copyStatement(table: table, partitioned: true, columns: columns)
        #expect(!sql.contains("ONLY"))
        #expect(sql.hasPrefix("COPY (SELECT row_to_json(r.*), r.\"it's\" IS NULL FROM (SELECT "))
        #expect(RowQuery.maskedColumns(columns) == [150])
        columns.append(.init(name: "b", encoding: .jsonOmitNull))
        let two = RowQuery.copyStatement(table: table, partitioned: false, columns: columns)
        #expect(
            two.hasPrefix(
                "COPY (SELECT row_to_json(r.*), concat((r.\"it's\" IS NULL)::int, (r.\"b\" IS NULL)::int) FROM (SELECT "
            ))
        let plain = RowQuery.copyStatement(table: table, partitioned: false, columns: [columns[151]])
        #expect(plain.hasPrefix("COPY (SELECT row_to_json(r.*) FROM (SELECT \"always\" FROM ONLY"))
    }

    @Test("the null mask drops exactly the members it marks, whatever their values hold")
    func maskedLines() throws {
        var mask = NullMask(columns: [1, 3])
        func run(_ row: String) throws -> String {
            var out = ""
            try Array(row.utf8).withUnsafeBytes { bytes in
                try mask.line(bytes) { out = String(decoding: $0, as: UTF8.self) }
            }
            return out
        }
        let row = #"{"a":"x\",\"b\":null","b":null,"c":{"b":null},"d":null}"#
        #expect(try run(row + "\u{02}00\n") == row + "\n")
        #expect(try run(row + "\u{02}10\n") == #"{"a":"x\",\"b\":null","c":{"b":null},"d":null}"# + "\n")
        #expect(try run(row + "\u{02}11\n") == #"{"a":"x\",\"b\":null","c":{"b":null}}"# + "\n")
        #expect(try run(#"{"a":1,"b":null}"# + "\u{02}10\n") == #"{"a":1}"# + "\n")
        var single = NullMask(columns: [0])
        try Array((#"{"a":null}"# + "\u{02}t\n").utf8).withUnsafeBytes { bytes in
            try single.line(bytes) { #expect(String(decoding: $0, as: UTF8.self) == "{}\n") }
        }
        #expect(throws: PostgresError.self) { try run(row + "\n") }
    }

    @Test("a slice reads one partition and/or a block range: ONLY leaf, ctid condition")
    func blockRange() {
        let sql = RowQuery.copyStatement(
            table: table, partitioned: false, columns: [.init(name: "id", encoding: .json)],
            slice: TableSlice(blocks: BlockRange(start: 10, end: 20)))
        #expect(sql.contains("FROM ONLY \"public\".\"t\"\"x\" WHERE ctid >= '(10,0)'::tid AND ctid < '(20,0)'::tid) r"))
        let jsonb = RowQuery.copyStatement(
            table: table, partitioned: false, columns: [.init(name: "doc", encoding: .jsonOmitNull)],
            slice: TableSlice(leaf: TableName(schema: "public", name: "t_2025"), blocks: BlockRange(start: 0, end: 5)))
        #expect(
            jsonb.hasSuffix(
                "FROM ONLY \"public\".\"t_2025\" WHERE ctid < '(5,0)'::tid) r) TO STDOUT WITH \(RowQuery.copyOptions)"))
    }

    @Test(
        "block ranges cover every block once, the last open-ended",
        arguments: [(1, 4), (10, 3), (100, 7), (7, 100), (64, 64)])
    func split(blocks: Int64, parts: Int) {
        let ranges = BlockRange.split(blocks: blocks, into: parts)
        #expect(ranges.count <= max(1, min(parts, Int(blocks))))
        #expect(ranges.first?.start == 0 && ranges.last?.end == nil)
        for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.end == b.start && a.start < b.start) }
    }

    @Test("sizes take PostgreSQL's units")
    func sizes() {
        #expect(ByteSize.parse("64MB") == 64 << 20)
        #expect(ByteSize.parse("8kB") == 8192)
        #expect(ByteSize.parse("1 gb") == 1 << 30)
        #expect(ByteSize.parse("500") == 500)
        for bad in ["", "MB", "-1MB", "1.5GB", "12 parsecs", "99999999999TB"] { #expect(ByteSize.parse(bad) == nil) }
    }
}
