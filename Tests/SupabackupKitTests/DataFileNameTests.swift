import SupabackupKit
import Testing

@Suite("Data file names")
struct DataFileNameTests {
    @Test("names are derived safely from any identifier")
    func safe() {
        var names = DataFileName()
        #expect(names.next(for: TableName(schema: "public", name: "users")) == "data/public.users.ndjson.zst")
        let odd = names.next(for: TableName(schema: "my schema", name: "../a/b\"c.日本"))
        #expect(odd == "data/my%20schema.%2E%2E%2Fa%2Fb%22c%2E%E6%97%A5%E6%9C%AC.ndjson.zst")
        #expect(!odd.dropFirst(5).contains("/"))
    }

    @Test("names differing only in case stay distinct on case-insensitive file systems")
    func caseCollision() {
        var names = DataFileName()
        let lower = names.next(for: TableName(schema: "public", name: "users"))
        let upper = names.next(for: TableName(schema: "public", name: "Users"))
        #expect(lower.lowercased() != upper.lowercased())
    }

    @Test("long names are shortened below file-name limits and stay unique")
    func long() {
        var names = DataFileName()
        let long = String(repeating: "é", count: 31)
        let one = names.next(for: TableName(schema: long, name: long + "1"))
        let two = names.next(for: TableName(schema: long, name: long + "2"))
        #expect(one != two)
        #expect(one.utf8.count - 5 < 255 && two.utf8.count - 5 < 255)
    }
}
