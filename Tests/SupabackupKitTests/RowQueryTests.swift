import SupabackupKit
import Testing

@Suite("Row queries")
struct RowQueryTests {
    let table = TableName(schema: "public", name: "t\"x")

    @Test("tables without jsonb use row_to_json; json columns become text")
    func rowToJSON() {
        let sql = RowQuery.copyStatement(
            table: table, partitioned: false,
            columns: [.init(name: "id", encoding: .json), .init(name: "doc", encoding: .text)])
        #expect(sql.contains("row_to_json(r)"))
        #expect(sql.contains("FROM ONLY \"public\".\"t\"\"x\""))
        #expect(sql.contains("\"doc\"::text AS \"doc\""))
    }

    @Test("jsonb columns leave SQL NULL keys out; more than 100 columns are grouped")
    func concatenated() {
        var columns = (0..<150).map { RowQuery.Column(name: "c\($0)", encoding: .json) }
        columns.append(.init(name: "it's", encoding: .jsonOmitNull))
        let sql = RowQuery.copyStatement(table: table, partitioned: true, columns: columns)
        #expect(!sql.contains("ONLY"))
        #expect(sql.contains("'\"it''s\":' || \"it's\"::text"))
        // No concat_ws call may take more than 100 arguments.
        let groups = sql.components(separatedBy: "nullif(concat_ws(").count - 1
        #expect(groups == 2)
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
        #expect(jsonb.hasSuffix("FROM ONLY \"public\".\"t_2025\" WHERE ctid < '(5,0)'::tid) TO STDOUT WITH \(RowQuery.copyOptions)"))
    }

    @Test("block ranges cover every block once, the last open-ended", arguments: [(1, 4), (10, 3), (100, 7), (7, 100), (64, 64)])
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
