import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

@Suite("Type fidelity")
struct TypeFidelityTests {
    @Test("backup then restore into an empty copy reproduces every value exactly")
    func roundTrip() throws {
        let source = try TestDatabase("types_src")
        try source.run(sqlFile: "fixtures/types.sql")
        let target = try TestDatabase("types_dst")
        try target.run(sqlFile: "fixtures/types.sql")
        try target.execute("TRUNCATE public.types")
        let directory = try TemporaryDirectory()

        let result = try backup(source, into: directory)
        try restore(result.name, from: directory, into: target)

        let expected = try rowTexts(source, "public.types")
        #expect(expected.count == 4)
        #expect(try rowTexts(target, "public.types") == expected)
        // Column by column, so a failure names the column.
        let columns = try source.rows(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'public.types'::regclass AND attnum > 0 ORDER BY attnum")
        for column in columns.map({ $0[0]! }) {
            let query =
                "SELECT id, \(SQL.quoteIdentifier(column))::text, \(SQL.quoteIdentifier(column)) IS NULL FROM public.types ORDER BY 1"
            #expect(try target.rows(query) == source.rows(query), "column \(column)")
        }
    }

    @Test("client-side JSON rendering gives the server's row_to_json bytes: the type matrix and random values")
    func clientRendering() throws {
        let source = try TestDatabase("render")
        try source.run(sqlFile: "fixtures/types.sql")
        try source.execute(
            #"""
            CREATE TABLE public."odd ""names"" \ é" ("key ""q""" bigint PRIMARY KEY, "ü" text, "n\" numeric,
                f double precision, r real, b boolean, by bytea, jb jsonb, jbn jsonb NOT NULL, u uuid, vc varchar(40),
                i interval, tz timetz, ts timestamptz, tsn timestamp, d date, tsa timestamptz[], na numeric[],
                ba boolean[], lb integer[], ta text[], da date[], fa double precision[]);
            INSERT INTO public."odd ""names"" \ é"
            SELECT i,
                   CASE WHEN i % 7 = 0 THEN NULL ELSE (SELECT string_agg(chr(1 + (i * 31 + j * 17) % 126), '')
                        FROM generate_series(1, i % 60) j) || (ARRAY['é', '日本', '🎉', '\N', '\.', ''])[1 + i % 6] END,
                   CASE i % 5 WHEN 0 THEN 'NaN' WHEN 1 THEN (i * 1.000001)::numeric WHEN 2 THEN -i::numeric / 7 ELSE i END,
                   CASE i % 6 WHEN 0 THEN 'NaN' WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity' WHEN 3 THEN '-0'
                        ELSE i * pi() * 10 ^ (i % 40 - 20) END,
                   (i / 3.0)::real, CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END,
                   CASE WHEN i % 4 = 0 THEN NULL ELSE sha256(i::text::bytea) END,
                   CASE i % 3 WHEN 0 THEN NULL WHEN 1 THEN 'null' ELSE jsonb_build_object('s', E'q"\\\n\t' || i, 'n', i) END,
                   jsonb_build_array(i, E'\u0001', 'x'), md5(i::text)::uuid, repeat('"', i % 5) || i,
                   i * interval '1 minute 1.5 seconds', '12:00:00+05:30'::timetz + i * interval '1 second',
                   CASE i % 9 WHEN 0 THEN 'infinity' WHEN 1 THEN '-infinity' WHEN 2 THEN '0044-03-15 12:00:00+00 BC'
                        WHEN 3 THEN '12345-06-07 08:09:10.5+00' ELSE timestamptz '2025-01-01 00:00:00+00' + i * interval '1.001 s' END,
                   CASE i % 4 WHEN 0 THEN 'infinity' WHEN 1 THEN '0001-01-01 00:00:00 BC' ELSE timestamp '2000-02-29' + i * interval '1 h' END,
                   CASE i % 5 WHEN 0 THEN 'infinity' WHEN 1 THEN '4713-01-01 BC' ELSE date '2020-01-01' + i END,
                   ARRAY[timestamptz '2025-01-01 00:00:00+00' + i * interval '1 s', NULL, 'infinity'],
                   CASE WHEN i % 3 = 0 THEN '{}' ELSE ARRAY[i::numeric / 3, 'NaN', NULL] END,
                   ARRAY[i % 2 = 0, NULL],
                   CASE i % 3 WHEN 0 THEN '[0:1]={1,2}' WHEN 1 THEN '{{1,2},{3,NULL}}' ELSE ARRAY[i] END,
                   ARRAY['NULL', 'null', '', ' x ', 'a,b', '{c}', E'q"\\', chr(1 + i % 31), 'é 日本', NULL],
                   ARRAY[date '2020-01-01' + i, 'infinity'],
                   ARRAY[i * 1e-10, 'Infinity', '-Infinity', 'NaN', -0.0]::double precision[]
            FROM generate_series(1, 3000) i;
            """#)
        let connection = try PostgresConnection.open(try ConnectionString(source.url))
        defer { connection.close() }
        try Session.begin(connection, .backup(snapshot: nil))
        let reader = try DirectBackupSource(connection: try ConnectionString(source.url), exportSnapshot: false)
        let tables = try reader.tables(in: ["public"], filters: [])
        #expect(tables.count == 2)
        for table in tables {
            let renderer = try #require(ClientRendering(table.columns, kinds: table.renderKinds), "\(table.name)")
            // Most columns go plain; the rest (dates, arrays, composites, domains) through to_json.
            #expect(renderer.columns.filter { !$0.selectItem.hasPrefix("to_json(") }.count >= 20, "\(table.name)")
            var server = Data()
            var client = Data()
            let serverRows = try DirectBackupSource.copyRows(of: table, slice: nil, on: connection, rendering: .server)
            {
                server.append(contentsOf: $0)
            }
            let clientRows = try DirectBackupSource.copyRows(
                of: table, slice: nil, on: connection, rendering: .automatic
            ) {
                client.append(contentsOf: $0)
            }
            #expect(serverRows == clientRows && serverRows > 0)
            let serverLines = server.split(separator: 0x0A)
            let clientLines = client.split(separator: 0x0A)
            #expect(serverLines.count == clientLines.count)
            for (a, b) in zip(serverLines, clientLines) where a != b {
                Issue.record(
                    "\(table.name): server \(String(decoding: a, as: UTF8.self))\n  client \(String(decoding: b, as: UTF8.self))"
                )
                break
            }
            #expect(server == client, "\(table.name)")
        }
    }

    @Test("restore --create-schema of composite values (the upsert path) into a database without the tables")
    func freshDatabase() throws {
        let source = try TestDatabase("types_fresh_src")
        try source.run(sqlFile: "fixtures/types.sql")
        let target = try TestDatabase("types_fresh_dst")
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)
        var options = RestoreOptions(
            connection: try ConnectionString(target.url), directory: directory.path, name: result.name)
        options.createSchema = true
        let restored = try RestoreEngine(options: options, logger: silentLogger).run()
        // Composite values cannot go through COPY text: this table takes the upsert, which needs
        // its primary key while the keys of other new tables wait for their rows.
        #expect(restored.tables.first { $0.table.name == "types" }?.path == .upsertJSON)
        #expect(try rowTexts(target, "public.types") == rowTexts(source, "public.types"))
        let keys =
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'public.types'::regclass"
        #expect(try target.rows(keys) == source.rows(keys))
    }

    @Test("JSON null and SQL NULL stay distinct in json and jsonb columns")
    func jsonNulls() throws {
        let source = try TestDatabase("jsonnull_src")
        try source.execute(
            """
            CREATE TABLE t (id int PRIMARY KEY, j json, jb jsonb);
            INSERT INTO t VALUES (1, 'null', 'null'), (2, NULL, NULL), (3, '{"a":null}', '{"a":null}');
            """)
        let target = try TestDatabase("jsonnull_dst")
        try target.execute("CREATE TABLE t (id int PRIMARY KEY, j json, jb jsonb)")
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)
        try restore(result.name, from: directory, into: target)
        let query = "SELECT id, j IS NULL, j::text, jb IS NULL, jb::text FROM t ORDER BY id"
        #expect(try target.rows(query) == source.rows(query))
        #expect(try target.scalar("SELECT count(*) FROM t WHERE jb IS NULL") == "1")
    }

    @Test("every NDJSON line is one JSON object without raw newlines")
    func linesAreSafe() throws {
        let source = try TestDatabase("lines")
        try source.run(sqlFile: "fixtures/types.sql")
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)
        let table = try #require(result.manifest.tables.first { $0.name == "types" })
        let path = result.path + "/" + table.file
        let text = try decompress(path)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 4)
        for line in lines {
            #expect(JSONValidator.isObject(String(line)))
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil)
        }
        // jsonb SQL NULL leaves the key out; JSON null is written as null.
        let row3 = try #require(lines.first { $0.hasPrefix("{\"id\":3,") })
        #expect(!row3.contains("\"jb\":"))
        let row2 = try #require(lines.first { $0.hasPrefix("{\"id\":2,") })
        #expect(row2.contains("\"jb\":null"))
        #expect(row2.contains("\"j\":\"null\""))
        #expect(table.columns.first { $0.name == "j" }?.encoding == .text)
        #expect(table.columns.first { $0.name == "jb" }?.encoding == .jsonOmitNull)
        #expect(table.columns.first { $0.name == "djb" }?.encoding == .jsonOmitNull)
        #expect(table.columns.first { $0.name == "ja" }?.encoding == .text)
        #expect(table.columns.first { $0.name == "n" }?.encoding == .json)
        // Big numbers are written as the server printed them, digit for digit.
        #expect(text.contains("\"i8\":9223372036854775807"))
        #expect(text.contains("\"n\":123456789012345678901234567890123456789012.1234567890123"))
    }

    @Test("every line is byte for byte what the server renders per column (to_json, text, jsonb), split or not")
    func serverRendering() throws {
        let source = try TestDatabase("rendering")
        try source.run(sqlFile: "fixtures/types.sql")
        try source.run(sqlFile: "sample/schema.sql")
        try source.run(sqlFile: "sample/data.sql")
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)
        try source.execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'"
        )
        let archive = try BackupArchive.open(name: result.name, in: directory.path)
        for table in archive.manifest.tables {
            // An independent rendering: one to_json piece per column, SQL-NULL jsonb left out.
            let pieces = table.columns.map { column -> String in
                let name = "\"" + column.name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                let key = "to_json(\(SQLText.literal(column.name))::text)::text || ':' || "
                switch column.encoding {
                case .json: return key + "coalesce(to_json(\(name))::text, 'null')"
                case .text: return key + "coalesce(to_json(\(name)::text)::text, 'null')"
                case .jsonOmitNull: return "CASE WHEN \(name) IS NULL THEN NULL ELSE \(key)\(name)::text END"
                }
            }
            let expected = try source.rows(
                "SELECT '{' || coalesce(concat_ws(',', \(pieces.joined(separator: ", "))), '') || '}' FROM \(table.tableName.quoted)"
            ).map { $0[0] ?? "" }.sorted()
            let lines = String(decoding: try ndjson(archive, table), as: UTF8.self).split(separator: "\n").map(
                String.init
            ).sorted()
            #expect(lines.count == expected.count, "\(table.tableName)")
            #expect(lines == expected, "\(table.tableName)")
        }
        #expect(archive.manifest.tables.contains { ($0.parts?.count ?? 0) > 1 } || TestJobs.jobs == 1)
    }
}

/// The decompressed text of a `.zst` file, through the zstd command line tool.
func decompress(_ path: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["zstd", "-dc", path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    return String(decoding: data, as: UTF8.self)
}

@Suite("Type fidelity through client-side COPY text")
struct CopyTextFidelityTests {
    @Test("every type but composites goes through COPY text, into empty and into full tables, exactly")
    func copyText() throws {
        let source = try TestDatabase("copytext_src")
        try source.run(sqlFile: "fixtures/types.sql")
        try source.execute("ALTER TABLE public.types DROP COLUMN comp")
        let target = try TestDatabase("copytext_dst")
        try target.run(sqlFile: "fixtures/types.sql")
        try target.execute("ALTER TABLE public.types DROP COLUMN comp; TRUNCATE public.types")
        let directory = try TemporaryDirectory()
        let name = try backup(source, into: directory).name

        let first = try restore(name, from: directory, into: target)
        #expect(first.tables.map(\.path) == [.copy])
        #expect(try rowTexts(target, "public.types") == rowTexts(source, "public.types"))

        // Into a full table: changed rows come back through the typed stage and the upsert.
        try target.execute("UPDATE public.types SET t = 'changed', jb = '{\"x\": 2}', ia = '{9}' WHERE id IN (1, 4)")
        let second = try restore(name, from: directory, into: target)
        #expect(second.tables.map(\.path) == [.upsert])
        #expect(second.tables[0].written == 2)
        #expect(try rowTexts(target, "public.types") == rowTexts(source, "public.types"))

        // With a composite column the table takes the server-side JSON path, still exact.
        let composite = try TestDatabase("copytext_comp")
        try composite.run(sqlFile: "fixtures/types.sql")
        try composite.execute("TRUNCATE public.types")
        let withComposite = try TestDatabase("copytext_comp_src")
        try withComposite.run(sqlFile: "fixtures/types.sql")
        let compositeName = try backup(withComposite, into: directory).name
        let third = try restore(compositeName, from: directory, into: composite)
        #expect(third.tables.map(\.path) == [.upsertJSON])
        #expect(try rowTexts(composite, "public.types") == rowTexts(withComposite, "public.types"))
    }
}

/// SQL string literals for test queries.
enum SQLText {
    static func literal(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
}
