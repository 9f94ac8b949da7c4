import SupabackupKit
import Testing

@Suite("Restore order")
struct RestoreOrderTests {
    let a = TableName(schema: "public", name: "a")
    let b = TableName(schema: "public", name: "b")
    let c = TableName(schema: "public", name: "c")
    let d = TableName(schema: "public", name: "d")

    @Test("parents come before children along a chain, whatever the input order")
    func chain() {
        let order = RestoreOrder(tables: [c, b, a], references: [(child: c, parent: b), (child: b, parent: a)])
        #expect(order.order == [a, b, c])
        #expect(order.cycles.isEmpty)
    }

    @Test("a self-reference needs no ordering and is not a cycle")
    func selfReference() {
        let order = RestoreOrder(tables: [a, b], references: [(child: a, parent: a), (child: a, parent: b)])
        #expect(order.order == [b, a])
        #expect(order.cycles.isEmpty)
    }

    @Test("a two-table cycle is reported and placed after its own parents")
    func cycle() {
        let order = RestoreOrder(
            tables: [a, b, c, d],
            references: [(child: b, parent: c), (child: c, parent: b), (child: b, parent: a), (child: d, parent: c)])
        #expect(order.cycles == [[b, c]])
        #expect(order.order == [a, b, c, d])
    }

    @Test("references to tables outside the set are ignored")
    func outside() {
        let x = TableName(schema: "auth", name: "users")
        let order = RestoreOrder(tables: [b, a], references: [(child: a, parent: x)])
        #expect(order.order == [a, b])
    }

    @Test("a long chain does not overflow the stack")
    func deepChain() {
        let tables = (0..<5000).map { TableName(schema: "s", name: String(format: "t%05d", $0)) }
        let references = (1..<5000).map { (child: tables[$0 - 1], parent: tables[$0]) }
        let order = RestoreOrder(tables: tables, references: references)
        #expect(order.order == tables.reversed())
    }
}
