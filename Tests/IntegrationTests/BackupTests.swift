import Foundation
import SupabackupKit
import TestSupport
import Testing

@Suite("Backup")
struct BackupTests {
    @Test("partitioned tables are backed up once through their root; views never")
    func tableSelection() throws {
        let source = try TestDatabase("select")
        try source.run(sqlFile: "sample/schema.sql")
        try source.run(sqlFile: "sample/data.sql")
        try source.execute(
            "CREATE MATERIALIZED VIEW public.mv AS SELECT 1 AS x; CREATE SCHEMA other; CREATE TABLE other.t (id int)")
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)
        let names = Set(result.manifest.tables.map(\.name))
        #expect(names.count == 12)
        #expect(names.contains("analytics_events"))
        #expect(
            !names.contains("analytics_events_2025") && !names.contains("published_projects") && !names.contains("mv"))
        #expect(!names.contains("t"))
        let events = try #require(result.manifest.tables.first { $0.name == "analytics_events" })
        #expect(events.kind == "partitioned")
        #expect(events.rows == 5000)
        #expect(result.manifest.consistentSnapshot && result.manifest.mode == .direct)
        #expect(result.manifest.source.database == source.name)
    }

    @Test("--table and --exclude-table take name or schema.name; unknown names are errors naming them")
    func filters() throws {
        let source = try TestDatabase("filters")
        try source.execute(
            #"""
            CREATE TABLE public.a (id int); CREATE TABLE public.b (id int); CREATE SCHEMA s2;
            CREATE TABLE s2.a (id int); CREATE TABLE public."We.ird ""name""" (id int);
            """#)
        let directory = try TemporaryDirectory()
        let only = try backup(source, into: directory, tables: ["a"])
        #expect(only.manifest.tables.map(\.tableName) == [TableName(schema: "public", name: "a")])

        let both = try backup(source, into: directory, schemas: ["public", "s2"], tables: ["a"])
        #expect(both.manifest.tables.map(\.schema) == ["public", "s2"])

        let qualified = try backup(source, into: directory, tables: ["s2.a", "\"We.ird \"\"name\"\"\""])
        #expect(Set(qualified.manifest.tables.map(\.name)) == ["a", "We.ird \"name\""])

        let excluded = try backup(source, into: directory, exclude: ["public.b"])
        #expect(Set(excluded.manifest.tables.map(\.name)) == ["a", "We.ird \"name\""])

        #expect { try backup(source, into: directory, tables: ["missing"]) } throws: { "\($0)".contains("missing") }
        #expect { try backup(source, into: directory, exclude: ["s9.x"]) } throws: { "\($0)".contains("s9.x") }
        #expect { try backup(source, into: directory, schemas: ["nope"]) } throws: { "\($0)".contains("nope") }
    }

    @Test("a failed backup leaves no folder that looks complete, and earlier backups untouched")
    func failedBackupLeavesNothing() throws {
        let source = try TestDatabase("failed")
        try source.execute(
            """
            CREATE TABLE public.a (id int); INSERT INTO public.a VALUES (1);
            CREATE TABLE public.z_secret (id int); INSERT INTO public.z_secret VALUES (1);
            ALTER TABLE public.z_secret ENABLE ROW LEVEL SECURITY;
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'supabackup_limited') THEN
                CREATE ROLE supabackup_limited LOGIN PASSWORD 'limited-pw';
              END IF;
            END $$;
            GRANT SELECT ON ALL TABLES IN SCHEMA public TO supabackup_limited;
            """)
        let directory = try TemporaryDirectory()
        let first = try backup(source, into: directory)
        let limited = try TestServer.url(database: source.name)
            .replacingOccurrences(of: "postgres@", with: "supabackup_limited:limited-pw@")
        let options = BackupOptions(connection: try ConnectionString(limited), outputDirectory: directory.path)
        #expect {
            try BackupEngine(options: options.forTests, logger: silentLogger).run()
        } throws: { error in
            let text = "\(error)"
            return text.contains("z_secret") && text.contains("row") && !text.contains("limited-pw")
        }
        let entries = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(entries == [first.name])
        #expect(try BackupListing.list(in: directory.path).map(\.name) == [first.name])
        #expect(ArchiveVerifier.verify(try BackupArchive.open(name: first.name, in: directory.path)).isIntact)
    }

    @Test("two backups started in the same millisecond get different names")
    func sameMillisecond() throws {
        let source = try TestDatabase("samems")
        try source.execute("CREATE TABLE public.a (id int)")
        let directory = try TemporaryDirectory()
        let now = Date()
        let options = BackupOptions(connection: try ConnectionString(source.url), outputDirectory: directory.path)
        let one = try BackupEngine(options: options.forTests, logger: silentLogger).run(now: now)
        let two = try BackupEngine(options: options.forTests, logger: silentLogger).run(now: now)
        #expect(one.name != two.name)
        #expect(one.name == BackupName.make(now))
    }

    @Test("backup folders are 0700 and files 0600 whatever the umask")
    func permissions() throws {
        let source = try TestDatabase("perms")
        try source.execute("CREATE TABLE public.a (id int)")
        let directory = try TemporaryDirectory()
        let previous = umask(0)
        defer { umask(previous) }
        let result = try backup(source, into: directory)
        func mode(_ path: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
        }
        #expect(try mode(result.path) == 0o700)
        #expect(try mode(result.path + "/data") == 0o700)
        #expect(try mode(result.path + "/manifest.json") == 0o600)
        #expect(try mode(result.path + "/" + result.manifest.tables[0].file) == 0o600)
    }
}
