import Testing

@testable import SupabackupKit

@Suite("schema.sql order")
struct SchemaOrderTests {
    func node(
        _ kind: String, _ name: String, _ section: SchemaScript.Section = .preData, after: [String] = []
    ) -> SchemaOrder.Node {
        SchemaOrder.Node(
            key: "\(kind) \(name)",
            statement: SchemaScript.Statement(section: section, kind: kind, name: name, sql: ""),
            rank: SchemaCapture.ranks[kind] ?? 50, after: Set(after))
    }

    func order(_ nodes: [SchemaOrder.Node]) -> [String] {
        SchemaOrder.sorted(nodes).map { "\($0.kind) \($0.name)" }
    }

    @Test("kinds in pg_dump's order when nothing depends on anything")
    func byKind() {
        #expect(
            order([
                node("view", "v"), node("table", "t"), node("index", "i", .postData), node("function", "f"),
                node("schema", "s"), node("type", "e"),
            ]) == ["schema s", "type e", "function f", "table t", "view v", "index i"])
    }

    @Test("a dependency overrides the kind order: a function returning a table's rows comes after it")
    func dependencyFirst() {
        #expect(
            order([
                node("function", "f", after: ["table t"]), node("table", "t"), node("view", "v", after: ["function f"]),
            ])
                == ["table t", "function f", "view v"])
    }

    @Test("a pre-data object that needs a post-data one moves after it, with what depends on it")
    func promotion() {
        let sorted = SchemaOrder.sorted([
            node("view", "v", after: ["index u"]), node("index", "u", .postData, after: ["table t"]),
            node("table", "t"),
            node("view", "w", after: ["view v"]),
        ])
        #expect(sorted.map(\.name) == ["t", "u", "v", "w"])
        #expect(sorted.map(\.section) == [.preData, .postData, .postData, .postData])
    }

    @Test("a cycle is broken in kind order, and every statement still comes out once")
    func cycle() {
        let sorted = order([
            node("function", "f", after: ["table t"]), node("table", "t", after: ["function f"]), node("schema", "s"),
        ])
        #expect(sorted == ["schema s", "function f", "table t"])
    }

    @Test("dependencies on objects schema.sql does not create are ignored")
    func unknownDependencies() {
        #expect(order([node("table", "t", after: ["table auth.users", "extension x"])]) == ["table t"])
    }
}
