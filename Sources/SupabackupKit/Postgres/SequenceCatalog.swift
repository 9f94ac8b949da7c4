/// Finds the sequences that feed the backed-up tables' columns and reads their values.
enum SequenceCatalog {
    /// Sequences owned by a column (serial, identity) or named in a column default (`nextval`).
    static func sequences(feeding tables: [Int64], on connection: PostgresConnection) throws -> [Manifest.Sequence] {
        guard !tables.isEmpty else { return [] }
        let oids = "{" + tables.map(String.init).joined(separator: ",") + "}"
        struct Row: Decodable {
            var schema: String, name: String, increment: Int64, tableSchema: String, table: String, column: String
        }
        let rows = try connection.decode(
            Row.self,
            """
            SELECT sn.nspname AS schema, s.relname AS name, seq.seqincrement AS increment, tn.nspname AS table_schema,
                   t.relname AS table, a.attname AS column
            FROM (
                SELECT d.objid AS seqid, d.refobjid AS relid, d.refobjsubid AS attnum
                FROM pg_catalog.pg_depend d
                WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
                  AND d.deptype IN ('a', 'i') AND d.refobjid = ANY($1::oid[]) AND d.refobjsubid > 0
                UNION
                SELECT d.refobjid, ad.adrelid, ad.adnum
                FROM pg_catalog.pg_attrdef ad
                JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
                  AND d.refclassid = 'pg_catalog.pg_class'::regclass
                WHERE ad.adrelid = ANY($1::oid[])
            ) f
            JOIN pg_catalog.pg_class s ON s.oid = f.seqid AND s.relkind = 'S'
            JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
            JOIN pg_catalog.pg_sequence seq ON seq.seqrelid = s.oid
            JOIN pg_catalog.pg_class t ON t.oid = f.relid
            JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
            JOIN pg_catalog.pg_attribute a ON a.attrelid = f.relid AND a.attnum = f.attnum
            ORDER BY 1, 2, 4, 5, 6
            """, [oids])
        var sequences: [Manifest.Sequence] = []
        for row in rows {
            let feed = Manifest.ColumnRef(schema: row.tableSchema, table: row.table, column: row.column)
            if let last = sequences.last, last.schema == row.schema, last.name == row.name {
                if !last.feeds.contains(feed) { sequences[sequences.count - 1].feeds.append(feed) }
                continue
            }
            let name = TableName(schema: row.schema, name: row.name)
            let state = try connection.query("SELECT last_value::text, is_called FROM \(name.quoted)")
            guard let values = state.rows.first, let last = values[0].flatMap(Int64.init) else { continue }
            sequences.append(
                Manifest.Sequence(
                    schema: name.schema, name: name.name, lastValue: last, isCalled: values[1] == "t",
                    increment: row.increment, feeds: [feed]))
        }
        return sequences
    }
}
