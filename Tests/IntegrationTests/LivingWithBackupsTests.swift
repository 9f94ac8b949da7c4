import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

/// Retention on real folders, open archives, and machine-readable output.
@Suite("Living with backups")
struct LivingWithBackupsTests {
    static func smallDatabase(_ label: String) throws -> TestDatabase {
        let database = try TestDatabase(label)
        try database.execute(
            """
            CREATE TABLE public.parents (id int PRIMARY KEY, name text);
            CREATE TABLE public.children (id int PRIMARY KEY, parent_id int REFERENCES public.parents(id), note text);
            INSERT INTO public.parents SELECT i, 'p' || i FROM generate_series(1, 20) i;
            INSERT INTO public.children SELECT i, 1 + i % 20, 'c' || i FROM generate_series(1, 100) i;
            """)
        return database
    }

    @Test("prune removes what the policy drops, keeps the newest, touches nothing else, and spares running backups")
    func prune() throws {
        let database = try Self.smallDatabase("prune")
        let directory = try TemporaryDirectory()
        let options = BackupOptions(connection: try ConnectionString(database.url), outputDirectory: directory.path)
        let now = Date()
        var names: [String] = []
        for days in [0.0, 1, 29.9, 31, 45] {
            names.append(
                try BackupEngine(options: options.forTests, logger: silentLogger).run(
                    now: now.addingTimeInterval(-days * 86_400)
                ).name)
        }
        // Things prune must leave alone: a user's file, a folder that only looks like a backup.
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: directory.file("notes.txt")))
        try FileManager.default.createDirectory(
            atPath: directory.file("2020-01-01T00-00-00-000Z"), withIntermediateDirectories: false)
        // A stale leftover of a crashed backup, and a running one (its lock is held).
        let stale = directory.file(".2020-02-02T00-00-00-000Z.partial")
        try FileManager.default.createDirectory(atPath: stale, withIntermediateDirectories: false)
        try FileManager.default.setAttributes([.modificationDate: now.addingTimeInterval(-7200)], ofItemAtPath: stale)
        let running = try PartialBackupFolder(in: directory.path, startingAt: now.addingTimeInterval(-86_400 * 60))
        try FileManager.default.setAttributes(
            [.modificationDate: now.addingTimeInterval(-7200)], ofItemAtPath: running.location)

        let dry = try CLI.run(["prune", "--dir", directory.path, "--dry-run"])
        #expect(dry.status == 0)
        #expect(dry.stdout.contains("would remove \(names[3])") && dry.stdout.contains("would remove \(names[4])"))
        #expect(try BackupListing.list(in: directory.path).count == 5)

        // Without a rule, prune removes nothing (restic's forget refuses too).
        let bare = try CLI.run(["prune", "--dir", directory.path])
        #expect(bare.status == 64 && bare.stderr.contains("prune needs a rule"), "\(bare.stderr)")
        #expect(try BackupListing.list(in: directory.path).count == 5)

        let result = try CLI.run(["prune", "--dir", directory.path, "--keep-days", "30", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let entries = try #require(json["backups"] as? [[String: Any]])
        #expect(
            entries.filter { $0["keep"] as? Bool == false }.compactMap { $0["name"] as? String }.sorted()
                == [names[3], names[4]].sorted())
        #expect(json["stale_partials"] as? [String] == [".2020-02-02T00-00-00-000Z.partial"])

        let left = Set(try FileManager.default.contentsOfDirectory(atPath: directory.path))
        #expect(left.isSuperset(of: [names[0], names[1], names[2], "notes.txt", "2020-01-01T00-00-00-000Z"]))
        #expect(
            !left.contains(names[3]) && !left.contains(names[4]) && !left.contains(".2020-02-02T00-00-00-000Z.partial"))
        #expect(FileManager.default.fileExists(atPath: running.location))
        running.discard()

        // The newest backup survives any policy.
        let strict = try CLI.run(["prune", "--dir", directory.path, "--keep-last", "0", "--keep-days", "0"])
        #expect(strict.status == 0)
        #expect(try BackupListing.list(in: directory.path).map(\.name) == [names[0]])
    }

    @Test("backup --prune prunes after a successful backup, and never after a failed one")
    func backupThenPrune() throws {
        let database = try Self.smallDatabase("bprune")
        let directory = try TemporaryDirectory()
        let options = BackupOptions(connection: try ConnectionString(database.url), outputDirectory: directory.path)
        let old = try BackupEngine(options: options.forTests, logger: silentLogger).run(
            now: Date().addingTimeInterval(-40 * 86_400)
        ).name

        let failed = try CLI.run([
            "backup", "--db-url", database.url, "--out", directory.path, "--table", "nope", "--prune",
        ])
        #expect(failed.status == 64)
        #expect(try BackupListing.list(in: directory.path).map(\.name) == [old])

        let ok = try CLI.run([
            "backup", "--db-url", database.url, "--out", directory.path, "--prune", "--keep-days", "30",
        ])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(try BackupListing.list(in: directory.path).map(\.name) == [ok.lastLine])
        #expect(ok.stderr.contains("1 removed"))
    }

    @Test("cat streams a table as NDJSON; DuckDB reads the .ndjson.zst file directly with the same rows")
    func openArchive() throws {
        let database = try Self.smallDatabase("cat")
        let directory = try TemporaryDirectory()
        let name = try CLI.run(["backup", "--db-url", database.url, "--out", directory.path]).lastLine
        let cat = try CLI.run(["cat", name, "children", "--dir", directory.path])
        #expect(cat.status == 0)
        let lines = cat.stdout.split(separator: "\n")
        #expect(lines.count == 100)
        #expect(lines.contains("{\"id\":7,\"parent_id\":8,\"note\":\"c7\"}"))
        #expect(try CLI.run(["cat", name, "nope", "--dir", directory.path]).status == 64)

        let archive = try BackupArchive.open(name: name, in: directory.path)
        let file = archive.path + "/" + (try #require(archive.manifest.tables.first { $0.name == "children" })).file
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c",
            "import duckdb, sys; print(duckdb.sql(\"SELECT count(*), sum(id), sum(parent_id), min(note) FROM read_json('\" + sys.argv[1] + \"', format='newline_delimited')\").fetchall()[0])",
            file,
        ]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "duckdb is installed by scripts/test.sh")
        let expected = try database.scalar(
            "SELECT '(' || count(*) || ', ' || sum(id) || ', ' || sum(parent_id) || ', ''' || min(note) || ''')' FROM public.children"
        )
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == expected)
    }

    @Test("verify --deep finds a planted orphan and a duplicate key; intact archives pass")
    func deepVerify() throws {
        let database = try Self.smallDatabase("deep")
        let directory = try TemporaryDirectory()
        let intact = try CLI.run(["backup", "--db-url", database.url, "--out", directory.path]).lastLine
        let ok = try CLI.run(["verify", intact, "--dir", directory.path, "--deep"])
        #expect(ok.status == 0 && ok.stdout.contains("keys unique"))

        // The same data with an orphan child and a duplicated parent key, written as a backup.
        try database.execute(
            """
            ALTER TABLE public.children DROP CONSTRAINT children_parent_id_fkey;
            INSERT INTO public.children VALUES (1000, 999, 'orphan');
            ALTER TABLE public.parents DROP CONSTRAINT parents_pkey;
            INSERT INTO public.parents VALUES (5, 'again');
            ALTER TABLE public.parents ADD CONSTRAINT parents_pkey_fake UNIQUE (name);
            """)
        var archive = try backup(database, into: directory)
        // The source no longer declares the keys; the manifest keeps the originals' to check against.
        archive.manifest.tables = archive.manifest.tables.map { table in
            var table = table
            if table.name == "parents" { table.primaryKey = ["id"] }
            if table.name == "children" {
                table.foreignKeys = [
                    Manifest.ForeignKey(
                        name: "children_parent_id_fkey", columns: ["parent_id"], referencedSchema: "public",
                        referencedTable: "parents", referencedColumns: ["id"], deferrable: false)
                ]
            }
            return table
        }
        try archive.manifest.encoded().write(to: URL(fileURLWithPath: archive.path + "/manifest.json"))
        let bad = try CLI.run(["verify", archive.name, "--dir", directory.path, "--deep", "--json"])
        #expect(bad.status == 3)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(bad.stdout.utf8)) as? [String: Any])
        let findings = try #require(json["findings"] as? [[String: Any]])
        #expect(
            findings.contains {
                $0["kind"] as? String == "orphan" && ($0["message"] as? String)?.contains("999") == true
            })
        #expect(
            findings.contains {
                $0["kind"] as? String == "duplicate-key" && ($0["message"] as? String)?.contains("(5)") == true
            })
    }

    @Test(
        "backup and restore --json print one result; the summary and per-table lines go to stderr; progress is reported"
    )
    func machineReadable() throws {
        let database = try Self.smallDatabase("json")
        let directory = try TemporaryDirectory()
        let backup = try CLI.run(["backup", "--db-url", database.url, "--out", directory.path, "--json"])
        #expect(backup.status == 0)
        let result = try #require(try JSONSerialization.jsonObject(with: Data(backup.stdout.utf8)) as? [String: Any])
        #expect(result["rows"] as? Int == 120 && result["mode"] as? String == "direct")
        #expect((result["raw_bytes"] as? Int ?? 0) > (result["bytes"] as? Int ?? 0))
        #expect(backup.stderr.contains("table done") && backup.stderr.contains("public.children"))
        #expect(
            backup.stderr.contains("120 rows") && backup.stderr.contains("compressed")
                && backup.stderr.contains("rows/s"))
        let name = try #require(result["name"] as? String)

        let restore = try CLI.run([
            "restore", name, "--dir", directory.path, "--db-url", database.url, "--json", "--quiet",
        ])
        #expect(restore.status == 0, "\(restore.stderr)")
        let restored = try #require(try JSONSerialization.jsonObject(with: Data(restore.stdout.utf8)) as? [String: Any])
        let tables = try #require(restored["tables"] as? [[String: Any]])
        #expect(tables.count == 2 && tables.allSatisfy { $0["unchanged"] as? Int == $0["rows"] as? Int })
        #expect(restore.stderr.isEmpty)

        let verify = try CLI.run(["verify", name, "--dir", directory.path, "--json"])
        #expect(
            (try JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any])?["intact"] as? Bool
                == true)

        // Progress events while a bigger table is read.
        try database.execute(
            "CREATE TABLE public.big AS SELECT i AS id, repeat('x', 200) AS pad FROM generate_series(1, 300000) i; ANALYZE public.big"
        )
        let events = ProgressLog()
        var options = BackupOptions(
            connection: try ConnectionString(database.url), outputDirectory: directory.path,
            tables: [try TableFilter(parsing: "big")])
        options.progress = { events.append($0) }
        _ = try BackupEngine(options: options.forTests, logger: silentLogger).run()
        let seen = events.all
        #expect(!seen.isEmpty)
        #expect(seen.allSatisfy { $0.table.name == "big" && $0.estimatedRows == 300_000 })
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.rows <= $1.rows })
    }
}

final class ProgressLog: @unchecked Sendable {
    // @unchecked: guarded by the lock.
    private let lock = NSLock()
    private var events: [BackupProgress] = []
    func append(_ event: BackupProgress) { lock.withLock { events.append(event) } }
    var all: [BackupProgress] { lock.withLock { events } }
}
