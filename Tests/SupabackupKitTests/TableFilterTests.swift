import SupabackupKit
import Testing

@Suite("Table filters")
struct TableFilterTests {
    @Test("name, schema.name and quoted parts")
    func parsing() throws {
        #expect(try TableFilter(parsing: "users") == TableFilter(schema: nil, name: "users"))
        #expect(try TableFilter(parsing: "auth.users") == TableFilter(schema: "auth", name: "users"))
        #expect(
            try TableFilter(parsing: "\"My.Schema\".\"Odd \"\"t\"\"\"")
                == TableFilter(schema: "My.Schema", name: "Odd \"t\""))
        for bad in ["a.b.c", "", ".x", "x.", "\"open"] {
            #expect(throws: UsageError.self) { try TableFilter(parsing: bad) }
        }
    }

    @Test("selection applies includes and excludes; unknown names are errors naming them")
    func selection() throws {
        let tables = [
            TableName(schema: "public", name: "a"), TableName(schema: "s", name: "a"),
            TableName(schema: "public", name: "b"),
        ]
        #expect(try [TableFilter(schema: nil, name: "a")].select(from: tables, excluding: []).count == 2)
        #expect(try [].select(from: tables, excluding: [TableFilter(schema: "s", name: "a")]).count == 2)
        #expect { try [TableFilter(schema: nil, name: "zz")].select(from: tables, excluding: []) } throws: {
            "\($0)".contains("zz")
        }
    }
}
