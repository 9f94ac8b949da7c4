/// Orders schema.sql's statements as pg_dump does: by section, then by kind, then by name,
/// except where a dependency (from pg_depend, or implied by the kind: an index after its table)
/// says otherwise. A pre-data object that depends on a post-data one moves to post-data (a view
/// grouping by a primary key it relies on). A cycle, which pg_depend cannot record for the
/// objects schema.sql creates, is broken by the same kind/name order.
struct SchemaOrder {
    struct Node {
        var key: String
        var statement: SchemaScript.Statement
        /// Kind rank within its section: lower first.
        var rank: Int
        /// Keys of nodes that must come first.
        var after: Set<String>
    }

    static func sorted(_ nodes: [Node]) -> [SchemaScript.Statement] {
        var nodes = nodes
        var index: [String: Int] = [:]
        for (position, node) in nodes.enumerated() { index[node.key] = position }
        for position in nodes.indices {
            nodes[position].after = nodes[position].after.filter { $0 != nodes[position].key && index[$0] != nil }
        }
        promote(&nodes, index: index)

        func order(_ node: Node) -> (Int, Int, String) {
            (node.statement.section == .preData ? 0 : 1, node.rank, node.key)
        }
        var dependents: [String: [Int]] = [:]
        var waiting = nodes.map(\.after.count)
        for (position, node) in nodes.enumerated() {
            for key in node.after { dependents[key, default: []].append(position) }
        }
        var ready = Heap(nodes.indices.filter { waiting[$0] == 0 }) { order(nodes[$0]) < order(nodes[$1]) }
        var done = [Bool](repeating: false, count: nodes.count)
        var result: [SchemaScript.Statement] = []
        while result.count < nodes.count {
            // A cycle leaves nothing ready: take the first waiting node in kind/name order.
            let next =
                ready.pop()
                ?? nodes.indices.filter { !done[$0] }.min { order(nodes[$0]) < order(nodes[$1]) }!
            guard !done[next] else { continue }
            done[next] = true
            result.append(nodes[next].statement)
            for dependent in dependents[nodes[next].key] ?? [] where !done[dependent] {
                waiting[dependent] -= 1
                if waiting[dependent] == 0 { ready.push(dependent) }
            }
        }
        return result
    }

    /// Moves to post-data every pre-data node that depends, directly or not, on a post-data one.
    private static func promote(_ nodes: inout [Node], index: [String: Int]) {
        var changed = true
        while changed {
            changed = false
            for position in nodes.indices where nodes[position].statement.section == .preData {
                if nodes[position].after.contains(where: { nodes[index[$0]!].statement.section == .postData }) {
                    nodes[position].statement.section = .postData
                    changed = true
                }
            }
        }
    }
}

/// A binary min-heap of positions under a caller's order.
private struct Heap {
    private var items: [Int] = []
    private let less: (Int, Int) -> Bool

    init(_ items: [Int], less: @escaping (Int, Int) -> Bool) {
        self.less = less
        for item in items { push(item) }
    }

    mutating func push(_ item: Int) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Int? {
        guard let first = items.first else { return nil }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count && less(items[left], items[smallest]) { smallest = left }
            if right < items.count && less(items[right], items[smallest]) { smallest = right }
            guard smallest != parent else { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }
}
