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
}
