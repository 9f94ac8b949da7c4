/// SQL that moves one table's staged NDJSON lines into the target table.
///
/// Rows are decoded with `json_to_record` in a LATERAL join (one call per row, not one per
/// column), typed with the target's own column types. Rows whose key exists are updated only
/// when a value differs, so a second restore of the same backup changes nothing.
enum UpsertStatement {
    static let stageTable = "pg_temp.supabackup_stage"
    static let typedTable = "pg_temp.supabackup_typed"

    /// A temporary table with the target's column types, for rows COPY'd as text.
    static func createTyped(_ columns: [RestorePlan.ColumnPlan]) -> String {
        "DROP TABLE IF EXISTS \(typedTable); CREATE TEMP TABLE supabackup_typed ("
            + columns.map { "\(SQL.quoteIdentifier($0.name)) \($0.targetType)" }.joined(separator: ", ")
            + ") ON COMMIT DROP"
    }

    static func selectTyped(_ columns: [RestorePlan.ColumnPlan]) -> String {
        "SELECT " + columns.map { SQL.quoteIdentifier($0.name) }.joined(separator: ", ") + " FROM \(typedTable)"
    }

    /// A statement returning one row: rows written and, where the server can tell (not for
    /// partitioned tables, which have no `xmax` to read), how many of them were inserted.
    /// - Parameter rows: the SELECT producing the target-typed rows, in `step.columns` order
    ///   (default: decoded from the JSON stage).
    static func make(table: TableName, step: RestorePlan.Step, partitioned: Bool, rows: String? = nil) -> String {
        let columns = step.columns
        let target = "supabackup_target"
        var sql = "WITH written AS (INSERT INTO \(table.quoted) AS \(target) ("
        sql += columns.map { SQL.quoteIdentifier($0.name) }.joined(separator: ", ") + ")"
        if step.overridingSystemValue { sql += " OVERRIDING SYSTEM VALUE" }
        sql += " " + (rows ?? select(columns))
        if !step.conflictKey.isEmpty {
            sql += " ON CONFLICT (" + step.conflictKey.map(SQL.quoteIdentifier).joined(separator: ", ") + ")"
            let keys = Set(step.conflictKey)
            let updatable = columns.filter { !keys.contains($0.name) && !$0.insertOnly }.map {
                SQL.quoteIdentifier($0.name)
            }
            if updatable.isEmpty {
                sql += " DO NOTHING"
            } else {
                sql += " DO UPDATE SET " + updatable.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
                // Compare text renderings: exact, and defined for types without equality (json, point).
                let old = updatable.map { "\(target).\($0)::text" }.joined(separator: ", ")
                let new = updatable.map { "EXCLUDED.\($0)::text" }.joined(separator: ", ")
                sql += " WHERE ROW(\(old)) IS DISTINCT FROM ROW(\(new))"
            }
        }
        sql += partitioned ? " RETURNING NULL::boolean AS inserted)" : " RETURNING (xmax = 0) AS inserted)"
        sql +=
            " SELECT count(*), CASE WHEN bool_or(inserted IS NULL) THEN NULL ELSE count(*) FILTER (WHERE inserted) END FROM written"
        return sql
    }

    /// Counts the staged rows converted to `columns`' target types: fails, without writing,
    /// when a value does not fit.
    static func conversionCheck(_ columns: [RestorePlan.ColumnPlan]) -> String {
        "SELECT count(*) FROM (\(select(columns))) converted"
    }

    /// `SELECT <values typed for the target> FROM stage CROSS JOIN LATERAL json_to_record(...)`.
    static func select(_ columns: [RestorePlan.ColumnPlan]) -> String {
        let recordColumns = columns.map { column -> String in
            let type = column.encoding == .text ? "text" : column.targetType
            return SQL.quoteIdentifier(column.name) + " " + type
        }
        let values = columns.map { column -> String in
            let name = SQL.quoteIdentifier(column.name)
            switch column.encoding {
            case .json: return "r.\(name)"
            case .text: return "r.\(name)::\(column.targetType)"
            case .jsonOmitNull:
                // json_to_record turns JSON null into SQL NULL; only then look again, where an
                // absent key (SQL NULL) and a present null (JSON null) differ.
                return "coalesce(r.\(name), (s.line -> \(SQL.quoteLiteral(column.name)))::\(column.targetType))"
            }
        }
        var sql = "SELECT " + values.joined(separator: ", ") + " FROM \(stageTable) s"
        if !recordColumns.isEmpty {
            sql += " CROSS JOIN LATERAL json_to_record(s.line) AS r(" + recordColumns.joined(separator: ", ") + ")"
        }
        return sql
    }
}
