/// What a restore will do, table by table, decided before anything is written.
///
/// Built from the manifest and the target's catalog alone (no I/O), so every check and the
/// order can be unit-tested.
public struct RestorePlan: Sendable {
    public struct Step: Sendable {
        public var table: TableName
        public var rows: Int64
        public var file: String
        /// The key rows are matched on; empty for plain inserts (no primary or unique key).
        public var conflictKey: [String]
        public var columns: [ColumnPlan]
        /// True when the target has `GENERATED ALWAYS` identity columns that we write.
        public var overridingSystemValue: Bool
        /// The target table is partitioned (it may not be in the backup's source).
        public var partitioned: Bool

        public var method: String {
            conflictKey.isEmpty
                ? "insert only (no primary or unique key: rows are appended, a rerun duplicates them)"
                : "upsert on (\(conflictKey.map(SQL.displayIdentifier).joined(separator: ", ")))"
        }
    }

    public struct ColumnPlan: Sendable, Equatable {
        public var name: String
        /// The target column's type, as `format_type` renders it.
        public var targetType: String
        public var encoding: ValueEncoding
        /// Written on insert but never updated (GENERATED ALWAYS identity).
        public var insertOnly: Bool
        /// The target's type differs from the backup's: the values are converted (and checked
        /// before any write).
        public var typeDiffers = false
    }

    public var steps: [Step]
    /// FK cycles that neither ordering nor deferrable constraints can satisfy.
    public var blockedCycles: [[TableName]]
    public var warnings: [String]

    /// - Throws: `RestoreValidationError` listing, table by table, every difference that would
    ///   lose data or fail (missing tables or columns, NOT NULL columns the backup can't fill).
    /// - Parameter views: relations of the target that are views (or other non-tables), with
    ///   what they are. A REST backup made before views were told from tables holds their rows;
    ///   those rows belong to the base table, so such entries are skipped, not written twice.
    public init(
        manifest: Manifest, tables selected: [Manifest.Table], target: [CatalogTable], disableTriggers: Bool,
        compareTypes: Bool = true, views: [TableName: String] = [:]
    ) throws {
        var problems: [String] = []
        var warnings: [String] = []
        var steps: [TableName: Step] = [:]
        let targetByName = Dictionary(target.map { ($0.tableName, $0) }, uniquingKeysWith: { first, _ in first })
        for table in selected {
            let name = table.tableName
            if targetByName[name] == nil, let kind = views[name] {
                warnings.append(
                    "\(name): skipped, it is a \(kind) in the target (a view shows rows of its base table, which are restored on their own)"
                )
                continue
            }
            guard let live = targetByName[name] else {
                problems.append("\(name): table does not exist in the target database")
                continue
            }
            var columns: [ColumnPlan] = []
            var tableProblems: [String] = []
            for column in table.columns where column.generated == nil {
                guard let targetColumn = live.column(column.name) else {
                    tableProblems.append("column \(SQL.displayIdentifier(column.name)) is missing in the target")
                    continue
                }
                if targetColumn.isGenerated {
                    warnings.append(
                        "\(name): column \(SQL.displayIdentifier(column.name)) is generated in the target; its backed-up values are not written"
                    )
                    continue
                }
                if compareTypes && targetColumn.type != column.type {
                    warnings.append(
                        "\(name): column \(SQL.displayIdentifier(column.name)) is \(targetColumn.type) in the target, \(column.type) in the backup; values are converted"
                    )
                }
                columns.append(
                    ColumnPlan(
                        name: column.name, targetType: targetColumn.type, encoding: column.encoding,
                        insertOnly: targetColumn.identity == .always,
                        typeDiffers: compareTypes && targetColumn.type != column.type))
            }
            let written = Set(columns.map(\.name))
            // Columns only the target has get their defaults; NOT NULL ones need one.
            let backedUp = Set(table.columns.map(\.name))
            for column in live.columns where !backedUp.contains(column.name) {
                if !column.nullable && !column.hasDefault && !column.isGenerated && column.identity == .none {
                    tableProblems.append(
                        "column \(SQL.displayIdentifier(column.name)) is NOT NULL without a default in the target and not in the backup"
                    )
                }
            }
            if !tableProblems.isEmpty {
                problems.append("\(name): " + tableProblems.joined(separator: "; "))
                continue
            }
            let key = Self.conflictKey(live, written: written)
            if key.isEmpty {
                warnings.append("\(name): no primary or unique key in the target; rows are inserted, not upserted")
            }
            steps[name] = Step(
                table: name, rows: table.rows, file: table.file, conflictKey: key, columns: columns,
                overridingSystemValue: columns.contains { $0.insertOnly },
                partitioned: live.kind == .partitioned)
        }
        if !problems.isEmpty { throw RestoreValidationError(problems: problems) }

        // Deferrable foreign keys are deferred to commit, so they need no ordering.
        let deferrable = Set(
            target.flatMap { live in
                (live.foreignKeys ?? []).filter(\.deferrable).map { "\(live.tableName)\u{0}\($0.name)" }
            })
        let references = selected.flatMap { table in
            table.foreignKeys
                .filter { disableTriggers || !deferrable.contains("\(table.tableName)\u{0}\($0.name)") }
                .map { (child: table.tableName, parent: $0.referenced) }
        }
        let order = RestoreOrder(tables: selected.map(\.tableName), references: references)
        self.steps = order.order.compactMap { steps[$0] }
        // Only keys the target has, and checks immediately, can block a cycle (with
        // --create-schema the foreign keys come after the rows).
        let enforced = Set(
            target.flatMap { live in
                (live.foreignKeys ?? []).filter { !$0.deferrable }.map { "\(live.tableName)\u{0}\($0.name)" }
            })
        let blocking = selected.flatMap { table in
            table.foreignKeys.filter { enforced.contains("\(table.tableName)\u{0}\($0.name)") }
                .map { (child: table.tableName, parent: $0.referenced) }
        }
        self.blockedCycles =
            disableTriggers ? [] : RestoreOrder(tables: selected.map(\.tableName), references: blocking).cycles
        for cycle in blockedCycles {
            warnings.append(Self.cycleAdvice(cycle))
        }
        self.warnings = warnings
    }

    /// The target's primary key, else its first unique key, if every column of it is restored.
    static func conflictKey(_ table: CatalogTable, written: Set<String>) -> [String] {
        if let primary = table.primaryKey, !primary.isEmpty, primary.allSatisfy(written.contains) {
            return primary
        }
        for unique in table.uniqueKeys ?? [] where !unique.isEmpty && unique.allSatisfy(written.contains) {
            if unique.allSatisfy({ name in table.column(name)?.nullable == false }) { return unique }
        }
        return []
    }

    static func cycleAdvice(_ cycle: [TableName]) -> String {
        let names = cycle.map(\.description).joined(separator: ", ")
        return "foreign keys form a cycle between \(names) and none of them is DEFERRABLE in the target: "
            + "if rows reference each other the restore fails (unless these tables are empty in the target and the role may set "
            + "session_replication_role: then the keys are checked once after loading); make one of these foreign keys DEFERRABLE "
            + "(ALTER TABLE ... ALTER CONSTRAINT ... DEFERRABLE) or rerun with --disable-triggers"
    }
}

/// The target cannot take the backup as it is; nothing was written.
public struct RestoreValidationError: Error, CustomStringConvertible, Sendable {
    public var problems: [String]
    public var description: String {
        "the target does not match the backup (nothing was written): " + problems.joined(separator: " | ")
    }
}
