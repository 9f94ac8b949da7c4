import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

/// PostgreSQL's `to_json` is the reference for every value the client renders from COPY text.
@Suite("Client rendering against to_json")
struct RenderingOracleTests {
    /// Edge values (SQL expressions in forms that do not depend on DateStyle) for every type the
    /// client renders, by `format_type` name. A type the client renders that is missing here
    /// fails the test: nothing new is rendered on the client untested.
    static let edges: [String: [String]] = [
        "boolean": ["true", "false"],
        "smallint": ["0", "-32768", "32767"],
        "integer": ["0", "-2147483648", "2147483647"],
        "bigint": ["0", "-9223372036854775808", "9223372036854775807"],
        "real": [
            "0", "'-0'", "'NaN'", "'Infinity'", "'-Infinity'", "'1.4e-45'", "'3.4028235e38'", "'-1.1754944e-38'",
            "'0.1'", "'100000000'",
        ],
        "double precision": [
            "0", "'-0'", "'NaN'", "'Infinity'", "'-Infinity'", "'4.9e-324'", "'1.7976931348623157e308'", "'0.1'",
            "'1e22'", "'-123456789.125'",
        ],
        "numeric": [
            "0", "'-0.000'", "'NaN'", "'Infinity'", "'-Infinity'", "'0.0000000001'",
            "'123456789012345678901234567890.123456789'", "'-1e-20'", "'1e20'",
        ],
        "oid": ["0", "4294967295", "12345"],
        "\"char\"": [#"'a'"#, "''", #"'"'"#, #"'\'"#, #"'\310'"#],
        "name": ["''", "'x'", "'é 日本'", "repeat('n', 63)", #"E'tab\there'"#],
        "text": [
            "''", #"E'\t\n\r\b\f\x01\x1f\x7f'"#, #"'"quote" and \backslash'"#, "'é 日本 🎉'", #"'\N'"#, "'NULL'",
            "' spaced '", #"'\.'"#, "'{a,b}'",
        ],
        "character": ["''", "'ab'", "'é'"],
        "character varying": ["''", "'trailing '", #"E'nl\nx'"#],
        "bytea": [#"'\x'"#, #"'\x00ff'"#, #"'\x5c2227'"#, "decode(repeat('ab', 100), 'hex')"],
        "uuid": ["'00000000-0000-0000-0000-000000000000'", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"],
        "xml": ["'<a>x</a>'", "''", "'text &amp; <b c=\"d\"/>'"],
        "point": ["'(0,0)'", "'(1.5,-2)'", "'(1e-300,-1e300)'", "'(NaN,Infinity)'"],
        "lseg": ["'[(0,0),(1,1)]'"],
        "path": ["'((0,0),(1,1),(2,0))'", "'[(0,0),(1,1)]'"],
        "box": ["'(1,1),(0,0)'"],
        "polygon": ["'((0,0),(1,1),(1,0))'"],
        "line": ["'{1,-1,0}'"],
        "circle": ["'<(0,0),1.5>'"],
        "cidr": ["'10.0.0.0/8'", "'::/0'", "'2001:db8::/32'"],
        "inet": ["'192.168.0.1/24'", "'::1'", "'2001:db8::1/64'", "'0.0.0.0'"],
        "macaddr": ["'08:00:2b:01:02:03'", "'ff:ff:ff:ff:ff:ff'"],
        "macaddr8": ["'08:00:2b:01:02:03:04:05'"],
        "money": ["0", "'-92233720368547758.08'", "'92233720368547758.07'", "'1.5'"],
        "time without time zone": ["'00:00:00'", "'23:59:59.999999'", "'24:00:00'", "'12:34:56.5'"],
        "time with time zone": ["'00:00:00-12'", "'23:59:59.999999+14'", "'12:00:00+05:30'"],
        "interval": [
            "'0'", "'-1 year 2 mons -3 days 04:05:06.789'", "'178000000 years'", "'1 microsecond'", "'-00:00:01'",
        ],
        "bit": ["B'10101010'", "B'00000000'"],
        "bit varying": ["B''", "B'1'", "B'1010'"],
        "pg_lsn": ["'0/0'", "'FFFFFFFF/FFFFFFFF'", "'16/B374D848'"],
        "tsvector": ["''", "'a fat cat'", "'''quoted'' word:1A'", "'é:3B'"],
        "tsquery": ["'fat & rat'", "'!a | b:*'", "'''x y'''"],
        "int4range": ["'empty'", "'[1,10)'", "'(,5]'", "'(,)'"],
        "int8range": ["'[-9223372036854775808,9223372036854775807)'"],
        "numrange": ["'[0,1.5]'", "'empty'"],
        "tsrange": ["'[2025-01-01 00:00,infinity)'", "'(,\"0044-03-15 00:00:00 BC\")'"],
        "tstzrange": ["'[2025-01-01 00:00+00,infinity)'", "'[2025-01-01 10:00+05,2025-01-02 00:00+00)'"],
        "daterange": ["'[2025-01-01,2025-01-02)'", "'[4713-01-01 BC,infinity)'"],
        "date": [
            "'infinity'", "'-infinity'", "'4713-01-01 BC'", "'0044-03-15 BC'", "'2000-02-29'", "'5874897-12-31'",
        ],
        "timestamp without time zone": [
            "'infinity'", "'-infinity'", "'0001-01-01 00:00:00 BC'", "'4713-01-01 00:00:00 BC'",
            "'1999-12-31 23:59:59.5'", "'294276-12-31 23:59:59.999999'", "'2000-01-01 00:00:00.000001'",
        ],
        "timestamp with time zone": [
            "'infinity'", "'-infinity'", "'0044-03-15 12:00:00+00 BC'", "'12345-06-07 08:09:10.5+00'",
            "'2025-01-01 10:00:00+05:30'", "'1900-01-01 00:00:00+00'", "'294276-12-31 23:59:59.999999+00'",
        ],
        "jsonb": [
            "'null'", "'{}'", "'[]'", #"'"s"'"#, #"'{"a": [1, null, "é\u0001"], "b": {"c": -0.0}}'"#, "'1e400'",
            #"'"back\\slash"'"#,
        ],
        "public.oracle_mood": ["'sad'", #"'it''s "complicated"'"#, #"E'tab\there'"#, "'é'"],
    ]

    static func values(_ type: String) -> [String] { edges[type] ?? [] }

    /// Column types where the bare name would mean a length of one.
    static let columnTypes = ["character": "character(5)", "bit": "bit(8)"]

    @Test("every client-rendered type, its arrays, domains and composites equal to_json byte for byte")
    func everyType() throws {
        let database = try TestDatabase("oracle")
        try database.execute(
            #"CREATE TYPE public.oracle_mood AS ENUM ('sad', 'it''s "complicated"', E'tab\there', 'é')"#)
        // One table per type: the value, an array of it, a domain over it and a composite holding it.
        var tables: [String: String] = [:]
        for (index, (type, values)) in Self.edges.sorted(by: { $0.key < $1.key }).enumerated() {
            let column = Self.columnTypes[type] ?? type
            let table = "oracle_\(index)"
            tables[table] = type
            let array = values.map { "(\($0))::\(column)" }.joined(separator: ", ")
            var sql = """
                CREATE DOMAIN public.\(table)_d AS \(column);
                CREATE TYPE public.\(table)_c AS (x \(column));
                CREATE TABLE public.\(table) (id int, v \(column), a \(column)[], d public.\(table)_d,
                    c public.\(table)_c, da public.\(table)_d[]);
                INSERT INTO public.\(table) VALUES (0, NULL, NULL, NULL, NULL, NULL),
                    (-1, NULL, ARRAY[\(array), NULL], NULL, ROW(NULL), '{}'),
                    (-2, NULL, '{}', NULL, NULL, ARRAY[NULL]::public.\(table)_d[]),
                    (-3, NULL, ARRAY[[(\(values[0]))::\(column), NULL], [NULL, (\(values.last!))::\(column)]], NULL, NULL, NULL);

                """
            for (row, value) in values.enumerated() {
                let typed = "(\(value))::\(column)"
                sql += "INSERT INTO public.\(table) VALUES (\(row + 1), \(typed), ARRAY[\(typed)], \(typed), "
                sql += "ROW(\(typed)), ARRAY[\(typed)]::public.\(table)_d[]);\n"
            }
            // An array with explicit bounds: `[-2:1]={...}` in its text.
            sql += "UPDATE public.\(table) SET a[-2] = v WHERE id = 1;\n"
            try database.execute(sql)
        }

        let connection = try PostgresConnection.open(try ConnectionString(database.url))
        defer { connection.close() }
        try Session.begin(connection, .backup(snapshot: nil))

        // Every type the server has that the client renders (not an array, not a domain) must be listed.
        let classifier = TypeClassifier(connection: connection)
        let types = try connection.query(
            """
            SELECT oid::int8, format_type(oid, NULL) FROM pg_type
            WHERE typtype <> 'd' AND NOT (typelem <> 0 AND typsubscript = 'array_subscript_handler'::regproc)
            """
        ).rows
        var rendered: [String] = []
        for row in types {
            let oid = Int64(row[0]!)!
            let encoding = try classifier.encoding(forType: oid)
            if try classifier.renderKind(forType: oid, encoding: encoding) != nil, encoding != .text {
                rendered.append(row[1]!)
            }
        }
        for name in rendered where Self.edges[name] == nil {
            Issue.record("the client renders \(name), which this test has no edge values for")
        }
        #expect(rendered.count >= 45)

        let source = try DirectBackupSource(connection: try ConnectionString(database.url), exportSnapshot: false)
        defer { try? source.finish() }
        let sourceTables = try source.tables(in: ["public"], filters: [])
        #expect(sourceTables.count == Self.edges.count)
        for table in sourceTables {
            let type = try #require(tables[table.name.name])
            // The value, its array and its domain go plain; the composite through to_json.
            let kinds = table.renderKinds
            #expect(kinds[1] != nil && kinds[3] != nil, "\(type) is rendered by the server")
            if type != "jsonb" && type != "box" { #expect(kinds[2] != nil && kinds[5] != nil, "\(type)[]") }
            // A composite holding jsonb is kept as text; others are rendered by the server.
            #expect(kinds[4] == nil || table.columns[4].encoding == .text)

            var client = Data()
            _ = try DirectBackupSource.copyRows(of: table, slice: nil, on: connection, rendering: .automatic) {
                client.append(contentsOf: $0)
            }
            // The reference: to_json of each column, jsonb's SQL NULL leaving its key out, and
            // values the archive keeps as text (arrays and composites holding jsonb) as their text.
            let members = table.columns.enumerated().map { index, column -> String in
                let name = SQL.quoteIdentifier(column.name) + (column.encoding == .text ? "::text" : "")
                let key = SQL.quoteLiteral((index == 0 ? "" : ",") + "\"\(column.name)\":")
                return column.encoding == .jsonOmitNull
                    ? "CASE WHEN \(name) IS NULL THEN '' ELSE \(key) || to_json(\(name))::text END"
                    : "\(key) || coalesce(to_json(\(name))::text, 'null')"
            }
            let expected = try connection.query(
                "SELECT '{' || \(members.joined(separator: " || ")) || '}' FROM public.\(table.name.name)"
            ).rows.map { $0[0]! }.sorted()
            let actual = String(decoding: client, as: UTF8.self).split(separator: "\n").map(String.init).sorted()
            #expect(actual.count == expected.count && expected.count > Self.values(type).count, "\(type)")
            for (mine, theirs) in zip(actual, expected) where mine != theirs {
                Issue.record("\(type):\n  client  \(mine)\n  to_json \(theirs)")
            }
        }

        // Over REST (PostgREST renders on the server) every table's lines are the same bytes.
        let server = try PostgRESTTestServer(databaseURL: database.url)
        let directory = try TemporaryDirectory()
        let direct = try backup(database, into: directory)
        Thread.sleep(forTimeInterval: 0.002)  // a distinct backup name
        let rest = try restBackup(server, into: directory, pageSize: 5)
        #expect(rest.manifest.tables.count == direct.manifest.tables.count)
        for table in direct.manifest.tables {
            let type = tables[table.name] ?? table.name
            // REST sees a domain or composite by its own name, not the jsonb inside (documented):
            // those columns are compared as values, everything else byte for byte.
            let restTable = try #require(rest.manifest.tables.first { $0.name == table.name })
            let blind = Set(
                zip(table.columns, restTable.columns).filter { $0.0.encoding != $0.1.encoding }.map(\.0.name))
            #expect(blind.isEmpty || type == "jsonb", "\(type): \(blind)")
            func comparable(_ lines: [String]) -> [String] {
                guard !blind.isEmpty else { return lines }
                return lines.map { line in
                    let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
                    let kept = object.filter { !blind.contains($0.key) }
                    let data = try? JSONSerialization.data(withJSONObject: kept, options: [.sortedKeys])
                    return String(decoding: data ?? Data(), as: UTF8.self)
                }.sorted()
            }
            let restLines = comparable(try sortedLines(rest, table.name))
            let directLines = comparable(try sortedLines(direct, table.name))
            #expect(restLines.count == directLines.count, "\(type)")
            for (viaREST, viaDirect) in zip(restLines, directLines) where viaREST != viaDirect {
                Issue.record("\(type):\n  REST    \(viaREST)\n  direct  \(viaDirect)")
                break
            }
        }
    }
}
