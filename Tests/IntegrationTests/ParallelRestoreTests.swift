import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

/// `restore --create-schema --jobs N` into a fresh target: tables load and indexes build over N
/// connections, each table committed on its own; a failure leaves whole tables, and the same
/// restore run again completes it.
@Suite("Parallel fresh restore")
struct ParallelRestoreTests {
    static func tables(of database: TestDatabase) throws -> [String] {
        try database.rows(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).compactMap { $0[0] }
    }

    /// A new database, as a fresh project's: schema public and nothing in it.
    static func freshTarget(_ label: String) throws -> TestDatabase { try TestDatabase(label) }

    static func backup(_ source: TestDatabase, into directory: TemporaryDirectory) throws -> String {
        let result = try CLI.run(["backup", "--db-url", source.url, "--out", directory.path, "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        return try #require(try FileManager.default.contentsOfDirectory(atPath: directory.path).first)
    }

    /// The sample app backed up, then restored into a fresh database (reached through `url`)
    /// with `--create-schema --jobs N --verbose`; every table compared with the source.
    static func restoreSample(_ label: String, jobs: Int, url: (TestDatabase) throws -> String = { $0.url }) throws
        -> (source: TestDatabase, target: TestDatabase)
    {
        let source = try InterfaceTests.sample()
        let directory = try TemporaryDirectory()
        let name = try backup(source, into: directory)
        let target = try freshTarget(label)
        let run = try CLI.run(
            [
                "restore", name, "--dir", directory.path, "--db-url", try url(target), "--create-schema", "--jobs",
                "\(jobs)", "--verbose",
            ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("connections=\(jobs)"), "the parallel path did not run: \(run.stderr)")
        for table in try tables(of: source) {
            #expect(try target.digest(table) == source.digest(table), "\(table)")
        }
        return (source, target)
    }

    @Test("the sample app (partitions, identity and generated columns, a foreign-key cycle) comes back whole")
    func sampleApp() throws {
        let (source, target) = try Self.restoreSample("parallel_sample", jobs: 4)
        let differences = try SchemaParity.differences(source: source.url, target: target.url)
        #expect(differences == [], "\(differences)")
        // Sequences were set: the next key is above every restored one.
        let next = try target.scalar(
            "INSERT INTO public.projects (owner_id, title) SELECT owner_id, 'new' FROM public.projects LIMIT 1 RETURNING id"
        )
        let highest = try source.scalar("SELECT max(id) FROM public.projects")
        #expect(Int(next ?? "0")! > Int(highest ?? "0")!)
    }

    @Test("through a transaction-mode pooler with more connections asked for than its pool holds")
    func throughThePooler() throws {
        // The pool has 4 server connections; 8 workers and the restore's own connection share them.
        _ = try Self.restoreSample("parallel_pooler", jobs: 8, url: PoolerTests.poolerURL)
    }

    @Test("killed mid-load: each table is whole or empty, keyed; the same restore run again completes it")
    func killedThenRerun() throws {
        let source = try ReliabilityTests.database("parallel_kill_src")
        try source.execute(
            """
            CREATE TABLE public.child (id int PRIMARY KEY, big_id int REFERENCES public.big (id));
            INSERT INTO public.child SELECT i, i FROM generate_series(1, 50000) i;
            CREATE INDEX child_big ON public.child (big_id);
            """)
        let directory = try TemporaryDirectory()
        let name = try Self.backup(source, into: directory)
        let target = try Self.freshTarget("parallel_kill_dst")
        let arguments = [
            "restore", name, "--dir", directory.path, "--db-url", target.url, "--create-schema", "--jobs", "2",
        ]
        let (process, errors) = try ReliabilityTests.start(arguments)
        // Killed while big's rows stream in, after the empty tables were committed.
        let admin = try TestServer.connect()
        defer { admin.close() }
        var copying = false
        for _ in 0..<6000 where !copying && process.isRunning {
            copying =
                try admin.query(
                    """
                    SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'supabackup restore'
                      AND query LIKE 'COPY "public"."big"%' AND state = 'active'
                    """, [target.name]
                ).rows.count == 1
            if !copying { Thread.sleep(forTimeInterval: 0.005) }
        }
        #expect(copying)
        kill(process.processIdentifier, SIGKILL)
        _ = ReliabilityTests.finish(process, errors)
        // The server ends the killed client's transactions.
        for _ in 0..<500
        where try admin.query(
            "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'supabackup restore'",
            [target.name]
        ).rows.count > 0 {
            Thread.sleep(forTimeInterval: 0.01)
        }
        #expect(try target.scalar("SELECT count(*) FROM public.big") == "0")
        for table in ["public.small", "public.child"] {
            let rows = try target.scalar("SELECT count(*) FROM \(table)")
            let whole = try target.digest(table) == source.digest(table)
            #expect(rows == "0" || whole, "\(table)")
        }
        #expect(
            try target.scalar(
                "SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND connamespace = 'public'::regnamespace")
                == "3")

        let again = try CLI.run(arguments)
        #expect(again.status == 0, "\(again.stderr)")
        for table in ["public.small", "public.big", "public.child"] {
            #expect(try target.digest(table) == source.digest(table), "\(table)")
        }
        let differences = try SchemaParity.differences(source: source.url, target: target.url)
        #expect(differences == [], "\(differences)")
    }

    @Test("a failure after the tables were committed says so and how to finish, in one line")
    func failureSaysWhatStays() throws {
        let source = try TestDatabase("parallel_fail_src")
        try source.execute(
            """
            CREATE TABLE public.parent (id int PRIMARY KEY);
            CREATE TABLE public.kid (id int PRIMARY KEY, parent_id int REFERENCES public.parent (id));
            INSERT INTO public.parent SELECT generate_series(1, 100);
            INSERT INTO public.kid SELECT i, i FROM generate_series(1, 100) i;
            """)
        let directory = try TemporaryDirectory()
        let name = try Self.backup(source, into: directory)
        let target = try Self.freshTarget("parallel_fail_dst")
        // Only kid's rows: the foreign key, added after them, finds no parents.
        let run = try CLI.run(
            [
                "restore", name, "--dir", directory.path, "--db-url", target.url, "--create-schema", "--jobs", "2",
                "--table", "kid",
            ])
        #expect(run.status == 1, "\(run.stderr)")
        let lines = run.stderr.split(separator: "\n").filter { $0.contains("error:") }
        #expect(lines.count == 1, "\(run.stderr)")
        #expect(run.stderr.contains("kid_parent_id_fkey"), "\(run.stderr)")
        #expect(run.stderr.contains("run the same restore again"), "\(run.stderr)")
        #expect(!run.stderr.contains("nothing was changed"), "\(run.stderr)")
        #expect(try target.scalar("SELECT count(*) FROM public.kid") == "100")
    }

    @Test(
        "the schedule reads each index's and foreign key's tables as PostgreSQL names them (zoo: quoted names, partitions)"
    )
    func namesAgainstTheCatalog() throws {
        let source = try SchemaParityTests.zoo()
        let directory = try TemporaryDirectory()
        let backup = try CLI.run(
            [
                "backup", "--db-url", source.url, "--out", directory.path, "--schema", "zoo", "--schema", "zoo_api",
                "--quiet",
            ])
        #expect(backup.status == 0, "\(backup.stderr)")
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: directory.path).first)
        let script = try SchemaScript(
            parsing: String(contentsOfFile: directory.file("\(name)/schema.sql"), encoding: .utf8))
        func table(_ sql: String, _ parameter: String) throws -> TableName? {
            try source.rows(sql.replacingOccurrences(of: "$1", with: SQL.quoteLiteral(parameter))).first.map {
                TableName(schema: $0[0] ?? "", name: $0[1] ?? "")
            }
        }
        var indexes = 0
        for statement in script.statements where statement.kind == "index" {
            let expected = try table(
                """
                SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.indexrelid = $1::regclass
                """, statement.name)
            #expect(FreshRestoreGraph.indexTable(statement.sql) == expected, "\(statement.sql)")
            indexes += 1
        }
        var keys = 0
        for statement in script.statements where statement.kind == "foreign-key" {
            let parsed = try #require(FreshRestoreGraph.foreignKeyTables(statement.sql), "\(statement.sql)")
            let count = try source.scalar(
                """
                SELECT count(*) FROM pg_constraint k
                JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
                JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
                WHERE k.contype = 'f' AND cn.nspname = \(SQL.quoteLiteral(parsed.child.schema))
                  AND c.relname = \(SQL.quoteLiteral(parsed.child.name))
                  AND pn.nspname = \(SQL.quoteLiteral(parsed.parent.schema))
                  AND p.relname = \(SQL.quoteLiteral(parsed.parent.name))
                """)
            #expect(count != "0", "\(statement.sql)")
            keys += 1
        }
        #expect(indexes >= 5 && keys >= 3, "the zoo has indexes and foreign keys to read")
    }
}
