import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

func restSettings(_ server: PostgRESTTestServer, pageSize: Int = 1000, key: String? = nil) throws -> RESTSettings {
    var settings = try RESTSettings(url: server.url, key: try APIKey(key ?? server.options.serviceKey))
    settings.pageSize = pageSize
    settings.retry = RetryPolicy(attempts: 6, baseDelay: 0.01, maxDelay: 0.05)
    return settings
}

func restBackup(
    _ server: PostgRESTTestServer, into directory: TemporaryDirectory, pageSize: Int = 1000,
    schemas: [String] = ["public"],
    tables: [String] = []
) throws -> BackupResult {
    let options = BackupOptions(
        transport: .rest(try restSettings(server, pageSize: pageSize)), outputDirectory: directory.path,
        schemas: schemas,
        tables: try tables.map { try TableFilter(parsing: $0) })
    return try BackupEngine(options: options.forTests, logger: silentLogger).run()
}

@discardableResult
func restRestore(
    _ name: String, from directory: TemporaryDirectory, into server: PostgRESTTestServer, dryRun: Bool = false
)
    throws -> RestoreResult
{
    let options = RestoreOptions(
        target: .rest(try restSettings(server)), directory: directory.path, name: name, dryRun: dryRun)
    return try RestoreEngine(options: options, logger: silentLogger).run()
}

/// A table's lines, sorted (REST reads in key order, direct in physical order).
func sortedLines(_ result: BackupResult, _ table: String) throws -> [String] {
    let entry = try #require(result.manifest.tables.first { $0.name == table })
    return try decompress(result.path + "/" + entry.file).split(separator: "\n").map(String.init).sorted()
}

@Suite("REST mode")
struct RESTTests {
    @Test(
        "a REST backup equals the direct backup row for row, byte for byte (jsonb JSON null kept apart from SQL NULL)",
        arguments: ["sample", "types"])
    func sameAsDirect(_ fixture: String) throws {
        let database = try TestDatabase("rest_" + fixture)
        if fixture == "sample" {
            try database.run(sqlFile: "sample/schema.sql")
            try database.run(sqlFile: "sample/data.sql")
        } else {
            try database.run(sqlFile: "fixtures/types.sql")
        }
        var options = PostgRESTTestServer.Options()
        options.maxRows = 100
        options.integerFormatsAsInt32 = fixture == "types"
        let server = try PostgRESTTestServer(databaseURL: database.url, options: options)
        let directory = try TemporaryDirectory()
        let direct = try backup(database, into: directory)
        let rest = try restBackup(server, into: directory, pageSize: 250)

        #expect(rest.manifest.mode == .rest && !rest.manifest.consistentSnapshot)
        #expect(rest.manifest.sequences.isEmpty && !rest.manifest.warnings.isEmpty)
        #expect(Set(rest.manifest.tables.map(\.name)) == Set(direct.manifest.tables.map(\.name)))
        for table in direct.manifest.tables {
            let restTable = try #require(rest.manifest.tables.first { $0.name == table.name })
            #expect(restTable.rows == table.rows, "\(table.name)")
            #expect(restTable.primaryKey == table.primaryKey, "\(table.name)")
            // A domain over jsonb shows over REST under its own name: REST cannot tell its SQL NULL
            // from JSON null (documented), so only those columns are compared with nulls left out.
            let blind = restTable.columns.filter { column in
                column.encoding != table.columns.first { $0.name == column.name }?.encoding
            }.map(\.name)
            func normalized(_ lines: [String]) -> [String] {
                lines.map { line in
                    blind.reduce(line) { line, name in
                        line.replacingOccurrences(of: ",\"\(name)\":null", with: "").replacingOccurrences(
                            of: "\"\(name)\":null,", with: "")
                    }
                }.sorted()
            }
            #expect(blind.count <= 1, "\(blind)")
            #expect(
                try normalized(sortedLines(rest, table.name)) == normalized(sortedLines(direct, table.name)),
                "\(table.name)")
        }
        // Foreign keys the OpenAPI document shows are in the manifest.
        let slides = try #require(rest.manifest.tables.first { $0.name == "slides" || $0.name == "types" })
        if slides.name == "slides" { #expect(slides.foreignKeys.map(\.referencedTable) == ["projects"]) }
    }

    @Test(
        "a max-rows cap below the page size, composite keys with , \" ( ) + and faults lose and duplicate nothing",
        arguments: [PostgRESTTestServer.Fault.status503, .drop])
    func pagingUnderFaults(_ fault: PostgRESTTestServer.Fault) throws {
        let database = try TestDatabase("rest_paging")
        try database.execute(
            #"""
            CREATE TABLE public.events (
                source text NOT NULL, at timestamptz NOT NULL, seq int NOT NULL, payload jsonb,
                PRIMARY KEY (source, at, seq));
            INSERT INTO public.events
            SELECT (ARRAY['a,b', 'say "hi"', '(x)', 'c+d', 'plain', 'back\slash', '{brace}', 'semi;colon'])[1 + i % 8],
                   timestamptz '2025-01-01 00:00:00+00' + ((i % 5) || ' hours')::interval, i,
                   CASE WHEN i % 9 = 0 THEN NULL ELSE jsonb_build_object('i', i) END
            FROM generate_series(1, 400) AS i;
            """#)
        var options = PostgRESTTestServer.Options()
        options.maxRows = 7
        options.faultEvery = 5
        options.fault = fault
        let server = try PostgRESTTestServer(databaseURL: database.url, options: options)
        let directory = try TemporaryDirectory()
        let rest = try restBackup(server, into: directory, pageSize: 50)
        let direct = try backup(database, into: directory)
        #expect(server.faultCount > 5)
        #expect(rest.manifest.tables[0].rows == 400)
        #expect(try sortedLines(rest, "events") == sortedLines(direct, "events"))
    }

    @Test("restore over REST reproduces the data; cross-mode restores work both ways")
    func restoreAndCrossMode() throws {
        let source = try TestDatabase("rest_src")
        try source.run(sqlFile: "sample/schema.sql")
        try source.run(sqlFile: "sample/data.sql")
        let sourceServer = try PostgRESTTestServer(databaseURL: source.url)
        let directory = try TemporaryDirectory()
        let restArchive = try restBackup(sourceServer, into: directory)
        let directArchive = try backup(source, into: directory)
        let tables = [
            "users", "projects", "slides", "project_comments", "project_analytics", "nr_courses", "nr_modules",
            "videos",
        ]

        // REST backup -> REST restore, direct backup -> REST restore.
        for archive in [restArchive, directArchive] {
            let target = try TestDatabase("rest_dst")
            try target.run(sqlFile: "sample/schema.sql")
            try target.run(sqlFile: "rest/supabackup_setval.sql")
            let server = try PostgRESTTestServer(databaseURL: target.url)
            let result = try restRestore(archive.name, from: directory, into: server)
            for table in tables {
                #expect(
                    try target.digest("public.\(table)") == source.digest("public.\(table)"),
                    "\(archive.manifest.mode): \(table)")
            }
            // JSON null in jsonb survives a direct backup restored over REST only as SQL NULL.
            #expect(try target.scalar("SELECT count(*) FROM public.analytics_events") == "5000")
            if archive.manifest.mode == .direct {
                #expect(result.sequences.contains { $0.sequence.name == "projects_id_seq" && $0.value == 500 })
                let id = try target.scalar(
                    "INSERT INTO public.projects (owner_id, title) SELECT owner_id, 'new' FROM public.projects LIMIT 1 RETURNING id"
                )
                #expect(id == "501")
            }
            // A rerun converges: same data.
            try restRestore(archive.name, from: directory, into: server)
            #expect(try target.digest("public.users") == source.digest("public.users"))
        }

        // REST backup -> direct restore.
        let target = try TestDatabase("rest_direct")
        try target.run(sqlFile: "sample/schema.sql")
        try restore(restArchive.name, from: directory, into: target)
        for table in tables {
            #expect(try target.digest("public.\(table)") == source.digest("public.\(table)"), "rest->direct: \(table)")
        }
    }

    @Test("without the RPC function, the restore says which sequences need resetting and how")
    func sequencesWithoutRPC() throws {
        let (source, target) = try sourceAndTarget("rest_seq", schema: "fixtures/graph.sql")
        try target.execute("TRUNCATE public.authors, public.posts, public.teams, public.players")
        try target.execute("ALTER TABLE public.authors ALTER COLUMN id SET GENERATED BY DEFAULT")
        let directory = try TemporaryDirectory()
        let archive = try backup(source, into: directory, tables: ["authors", "posts"])
        let server = try PostgRESTTestServer(databaseURL: target.url)
        let result = try restRestore(archive.name, from: directory, into: server)
        let posts = try #require(result.sequences.first { $0.sequence.name == "posts_id_seq" })
        #expect(posts.value == nil)
        #expect(posts.note?.contains("setval('\"public\".\"posts_id_seq\"', greatest(3,") == true)
        #expect(try target.digest("public.posts") == source.digest("public.posts"))
    }

    @Test("an identity GENERATED ALWAYS key cannot be written over REST, and the error says what to do")
    func identityAlways() throws {
        let (source, target) = try sourceAndTarget("rest_always", schema: "fixtures/graph.sql")
        try target.execute("TRUNCATE public.authors, public.posts, public.teams, public.players")
        let directory = try TemporaryDirectory()
        let archive = try backup(source, into: directory, tables: ["authors"])
        let server = try PostgRESTTestServer(databaseURL: target.url)
        #expect {
            try restRestore(archive.name, from: directory, into: server)
        } throws: { error in
            "\(error)".contains("GENERATED ALWAYS") && "\(error)".contains("--db-url")
        }
    }
}
