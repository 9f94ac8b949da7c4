/// Orders tables so that every table comes after the tables it references (parents first).
///
/// Foreign keys that form a cycle between tables cannot all be satisfied by ordering; such
/// groups are returned in `cycles` (each sorted by name) and placed where the group as a whole
/// fits. Self-references need no ordering: one statement loads the whole table. Pure: no I/O.
public struct RestoreOrder: Sendable, Equatable {
    public var order: [TableName]
    /// Groups of two or more tables whose foreign keys reference each other in a cycle.
    public var cycles: [[TableName]]

    /// - Parameters:
    ///   - tables: the tables to order.
    ///   - references: (child, parent) pairs; pairs naming a table outside `tables` are ignored.
    public init(tables: [TableName], references: [(child: TableName, parent: TableName)]) {
        let nodes = Array(Set(tables)).sorted()
        let index = Dictionary(uniqueKeysWithValues: nodes.enumerated().map { ($1, $0) })
        var parents = Array(repeating: Set<Int>(), count: nodes.count)
        for (child, parent) in references {
            guard let c = index[child], let p = index[parent], c != p else { continue }
            parents[c].insert(p)
        }
        let components = Self.stronglyConnectedComponents(count: nodes.count, edges: parents)
        var componentOf = Array(repeating: 0, count: nodes.count)
        for (i, component) in components.enumerated() {
            for node in component { componentOf[node] = i }
        }
        // Kahn's algorithm over components, always taking the smallest ready name: deterministic.
        var waitingOn = Array(repeating: Set<Int>(), count: components.count)
        var dependents = Array(repeating: Set<Int>(), count: components.count)
        for node in 0..<nodes.count {
            for parent in parents[node] where componentOf[parent] != componentOf[node] {
                waitingOn[componentOf[node]].insert(componentOf[parent])
                dependents[componentOf[parent]].insert(componentOf[node])
            }
        }
        let key: (Int) -> TableName = { nodes[components[$0].min()!] }
        var ready = (0..<components.count).filter { waitingOn[$0].isEmpty }
        var order: [TableName] = []
        var cycles: [[TableName]] = []
        while !ready.isEmpty {
            ready.sort { key($0) > key($1) }
            let next = ready.removeLast()
            let members = components[next].map { nodes[$0] }.sorted()
            order.append(contentsOf: members)
            if members.count > 1 { cycles.append(members) }
            for dependent in dependents[next] {
                waitingOn[dependent].remove(next)
                if waitingOn[dependent].isEmpty { ready.append(dependent) }
            }
        }
        self.order = order
        self.cycles = cycles
    }

    /// Tarjan's algorithm, iterative so deep FK chains cannot overflow the stack.
    static func stronglyConnectedComponents(count: Int, edges: [Set<Int>]) -> [[Int]] {
        var indexOf = Array(repeating: -1, count: count)
        var lowLink = Array(repeating: 0, count: count)
        var onStack = Array(repeating: false, count: count)
        var stack: [Int] = []
        var components: [[Int]] = []
        var nextIndex = 0
        let sortedEdges = edges.map { $0.sorted() }
        for root in 0..<count where indexOf[root] == -1 {
            var work: [(node: Int, edge: Int)] = [(root, 0)]
            indexOf[root] = nextIndex
            lowLink[root] = nextIndex
            nextIndex += 1
            stack.append(root)
            onStack[root] = true
            while let (node, edge) = work.last {
                if edge < sortedEdges[node].count {
                    work[work.count - 1].edge += 1
                    let next = sortedEdges[node][edge]
                    if indexOf[next] == -1 {
                        indexOf[next] = nextIndex
                        lowLink[next] = nextIndex
                        nextIndex += 1
                        stack.append(next)
                        onStack[next] = true
                        work.append((next, 0))
                    } else if onStack[next] {
                        lowLink[node] = min(lowLink[node], indexOf[next])
                    }
                } else {
                    work.removeLast()
                    if let parent = work.last?.node { lowLink[parent] = min(lowLink[parent], lowLink[node]) }
                    if lowLink[node] == indexOf[node] {
                        var component: [Int] = []
                        while let top = stack.popLast() {
                            onStack[top] = false
                            component.append(top)
                            if top == node { break }
                        }
                        components.append(component)
                    }
                }
            }
        }
        return components
    }
}

extension RestoreOrder {
    /// The order for the tables of a manifest, from their foreign keys.
    public init(manifestTables: [Manifest.Table]) {
        let references = manifestTables.flatMap { table in
            table.foreignKeys.map { (child: table.tableName, parent: $0.referenced) }
        }
        self.init(tables: manifestTables.map(\.tableName), references: references)
    }
}
