/// Sets sequences after a restore so the next default value is above the backup's sequence
/// value, the restored column's maximum, and the target sequence's own current value.
/// Sequences only move forward, so a restore into a live database never causes key reuse.
enum SequenceReset {
    static func apply(
        _ sequences: [Manifest.Sequence], restored: Set<TableName>, on connection: PostgresConnection
    ) throws -> [RestoreResult.SequenceOutcome] {
        var outcomes: [RestoreResult.SequenceOutcome] = []
        for sequence in sequences {
            let feeds = sequence.feeds.filter { restored.contains($0.tableName) }
            guard !feeds.isEmpty else { continue }
            let name = TableName(schema: sequence.schema, name: sequence.name)
            let info = try connection.query(
                """
                SELECT s.seqincrement::text, s.seqmin::text, s.seqmax::text
                FROM pg_catalog.pg_sequence s WHERE s.seqrelid = to_regclass($1)
                """, [name.quoted])
            guard let row = info.rows.first, let increment = Int64(row[0] ?? ""), let minimum = Int64(row[1] ?? "")
            else {
                outcomes.append(.init(sequence: name, value: nil, note: "not in the target; not set"))
                continue
            }
            guard increment > 0 else {
                outcomes.append(.init(sequence: name, value: nil, note: "descending; left as it is"))
                continue
            }
            var highest = sequence.isCalled ? sequence.lastValue : sequence.lastValue - sequence.increment
            let current = try connection.query("SELECT last_value::text, is_called FROM \(name.quoted)")
            if let state = current.rows.first, let last = Int64(state[0] ?? "") {
                highest = max(highest, state[1] == "t" ? last : last - increment)
            }
            for feed in feeds {
                let table = TableName(schema: feed.schema, name: feed.table)
                let column = SQL.quoteIdentifier(feed.column)
                // Only integer columns can be compared with a sequence value.
                let type = try connection.query(
                    "SELECT atttypid::regtype::text FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2",
                    [table.quoted, feed.column]).scalar
                guard let type, ["smallint", "integer", "bigint"].contains(type) else { continue }
                let maximum = try connection.query("SELECT max(\(column))::text FROM \(table.quoted)").scalar
                if let value = maximum.flatMap({ Int64($0) }) { highest = max(highest, value) }
            }
            let value: Int64
            if highest < minimum {
                value = minimum
                _ = try connection.query("SELECT setval($1::regclass, $2::int8, false)", [name.quoted, String(value)])
            } else {
                value = highest
                _ = try connection.query("SELECT setval($1::regclass, $2::int8, true)", [name.quoted, String(value)])
            }
            outcomes.append(.init(sequence: name, value: value, note: nil))
        }
        return outcomes
    }
}
