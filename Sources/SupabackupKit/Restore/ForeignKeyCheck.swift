/// Checks foreign keys set-based instead of row by row.
///
/// A table restored into an empty target with no user triggers or rules is loaded with
/// `session_replication_role = replica`, which skips the per-row foreign-key triggers (on large
/// tables most of a restore's time); its outgoing foreign keys are then checked here with one
/// anti-join each, before commit. Rows inserted into an empty table cannot orphan rows that
/// reference it, so incoming keys need no check. Referenced tables are locked in SHARE mode first
/// so no one deletes a checked parent row before the restore commits.
enum ForeignKeyCheck {
    /// True when the role may set `session_replication_role` (superusers, and roles a platform
    /// allows it to, such as Supabase's `postgres`).
    static func canSkipTriggers(on connection: PostgresConnection) throws -> Bool {
        try connection.execute("SAVEPOINT supabackup_role")
        do {
            try connection.execute("SET LOCAL session_replication_role = replica")
            try connection.execute("ROLLBACK TO SAVEPOINT supabackup_role")
            return true
        } catch let error as PostgresError where !error.isConnectionFailure {
            try connection.execute("ROLLBACK TO SAVEPOINT supabackup_role")
            return false
        }
    }

    /// The tables, of `tables`, with no enabled user trigger or rule on them or their partitions:
    /// loading them with triggers off changes nothing but how foreign keys are checked.
    static func triggerFree(_ tables: [TableName], on connection: PostgresConnection) throws -> Set<TableName> {
        guard !tables.isEmpty else { return [] }
        let result = try connection.query(
            """
            SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.oid = ANY($1::regclass[])
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_partition_tree(c.oid) p
                              JOIN pg_catalog.pg_trigger t ON t.tgrelid = p.relid
                              WHERE NOT t.tgisinternal AND t.tgenabled <> 'D')
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_partition_tree(c.oid) p
                              JOIN pg_catalog.pg_rewrite r ON r.ev_class = p.relid
                              WHERE r.rulename <> '_RETURN')
            """, [SQL.textArrayLiteral(tables.map(\.quoted))])
        return Set(result.rows.map { TableName(schema: $0[0] ?? "", name: $0[1] ?? "") })
    }

    /// The checks for the foreign keys of `table` (the referencing side), planned now so that a
    /// key the anti-join cannot express (it fails to plan) is known before any row is loaded:
    /// nil then, and the table keeps PostgreSQL's own per-row checks.
    static func prepare(_ table: TableName, on connection: PostgresConnection) throws -> [Key]? {
        let rows = try connection.query(
            """
            SELECT con.conname, con.conrelid::regclass::text, cn.nspname, c.relname, c.relkind,
                   con.confrelid::regclass::text, p.relname, p.relkind, con.confmatchtype,
                   ca.attname, pa.attname, pg_catalog.format_type(o.oprleft, NULL),
                   pg_catalog.format_type(o.oprright, NULL), pg_catalog.quote_ident(onsp.nspname) || '.' || o.oprname
            FROM pg_catalog.pg_constraint con
            JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
            JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
            JOIN pg_catalog.pg_class p ON p.oid = con.confrelid
            CROSS JOIN LATERAL unnest(con.conkey, con.confkey, con.conpfeqop) WITH ORDINALITY AS k(child, parent, op, position)
            JOIN pg_catalog.pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = k.child
            JOIN pg_catalog.pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = k.parent
            JOIN pg_catalog.pg_operator o ON o.oid = k.op
            JOIN pg_catalog.pg_namespace onsp ON onsp.oid = o.oprnamespace
            WHERE con.contype = 'f' AND con.conparentid = 0 AND con.conrelid = $1::regclass
            ORDER BY con.conname, k.position
            """, [table.quoted])
        var keys: [Key] = []
        for row in rows.rows {
            let values = row.map { $0 ?? "" }
            if keys.last?.name != values[0] {
                keys.append(
                    Key(
                        name: values[0], child: values[1], table: TableName(schema: values[2], name: values[3]),
                        childOnly: values[4] == "r", parent: values[5], parentName: values[6],
                        parentOnly: values[7] == "r",
                        matchFull: values[8] == "f"))
            }
            keys[keys.count - 1].childColumns.append(values[9])
            // RI compares `pk OPERATOR(pfeqop) fk` with each side cast to the operator's input type.
            keys[keys.count - 1].comparisons.append(
                "p.\(SQL.quoteIdentifier(values[10]))::\(values[11]) OPERATOR(\(values[13])) c.\(SQL.quoteIdentifier(values[9]))::\(values[12])"
            )
        }
        try connection.execute("SAVEPOINT supabackup_fk")
        do {
            for key in keys { _ = try connection.query("EXPLAIN " + key.violationQuery) }
            try connection.execute("RELEASE SAVEPOINT supabackup_fk")
            return keys
        } catch let error as PostgresError where !error.isConnectionFailure {
            try connection.execute("ROLLBACK TO SAVEPOINT supabackup_fk")
            return nil
        }
    }

    /// Runs prepared checks against the referenced rows.
    /// - Throws: `RestoreError` with SQLSTATE 23503 naming the first violation.
    static func validate(_ keys: [Key], on connection: PostgresConnection) throws {
        guard !keys.isEmpty else { return }
        let parents = Set(keys.map(\.parent)).sorted()
        try connection.execute("LOCK TABLE " + parents.joined(separator: ", ") + " IN SHARE MODE")
        for key in keys {
            if let offending = try connection.query(key.violationQuery).rows.first {
                let values = offending.map { $0 ?? "null" }.joined(separator: ", ")
                throw RestoreError(
                    table: key.table,
                    underlying: PostgresError(
                        code: .server,
                        message:
                            "insert or update on table \"\(key.table.name)\" violates foreign key constraint \"\(key.name)\"",
                        sqlState: "23503",
                        detail:
                            "Key (\(key.childColumns.joined(separator: ", ")))=(\(values)) is not present in table \"\(key.parentName)\".",
                        schema: key.table.schema, table: key.table.name, constraint: key.name),
                    advice:
                        "the referenced rows are neither in the target nor in this restore; restore their table too (or all tables)"
                )
            }
        }
    }

    struct Key {
        var name: String
        /// `regclass` text: a valid, quoted table reference in this session.
        var child: String
        var table: TableName
        var childOnly: Bool
        var parent: String
        var parentName: String
        var parentOnly: Bool
        var matchFull: Bool
        var childColumns: [String] = []
        /// One `p.col OPERATOR(...) c.col` per column pair.
        var comparisons: [String] = []

        /// The first referencing row whose key has no referenced row (MATCH SIMPLE skips keys
        /// with a NULL; MATCH FULL also rejects keys that are partly NULL).
        var violationQuery: String {
            let child = childColumns.map { "c." + SQL.quoteIdentifier($0) }
            let present = child.map { "\($0) IS NOT NULL" }.joined(separator: " AND ")
            let join = comparisons.joined(separator: " AND ")
            var condition =
                "(\(present) AND NOT EXISTS (SELECT 1 FROM \(parentOnly ? "ONLY " : "")\(self.parent) p WHERE \(join)))"
            if matchFull && child.count > 1 {
                condition += " OR num_nulls(\(child.joined(separator: ", "))) BETWEEN 1 AND \(child.count - 1)"
            }
            let shown = child.map { "\($0)::text" }.joined(separator: ", ")
            // MATERIALIZED keeps LIMIT out of the planning: a hash anti-join over the whole table,
            // not one index probe per row.
            return
                "WITH v AS MATERIALIZED (SELECT \(shown) FROM \(childOnly ? "ONLY " : "")\(self.child) c WHERE \(condition)) "
                + "SELECT * FROM v LIMIT 1"
        }
    }
}
