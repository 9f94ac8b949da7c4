import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

/// Faults injected on purpose: each leaves a clear non-zero exit, no folder that looks like a
/// complete backup, earlier backups untouched, and targets as they were.
@Suite("Reliability")
struct ReliabilityTests {
    /// `public.small` (a few rows) and `public.big` (enough rows that a backup takes a while).
    static func database(_ label: String, rows: Int = 400_000) throws -> TestDatabase {
        let database = try TestDatabase(label)
        try database.execute(
            """
            CREATE TABLE public.small (id int PRIMARY KEY, note text);
            INSERT INTO public.small SELECT i, 'n' || i FROM generate_series(1, 10) i;
            CREATE TABLE public.big (id int PRIMARY KEY, pad text);
            INSERT INTO public.big SELECT i, repeat(md5(i::text), 8) FROM generate_series(1, \(rows)) i;
            ANALYZE;
            """)
        return database
    }

    /// Starts the CLI without waiting for it; its stdout is drained in the background.
    static func start(_ arguments: [String]) throws -> (Process, Pipe) {
        let (process, out, err) = try CLI.start(arguments)
        DispatchQueue.global().async { _ = out.fileHandleForReading.readDataToEndOfFile() }
        return (process, err)
    }

    /// Waits until a partial backup folder holds some data (the backup is mid-write).
    static func waitForPartialData(in directory: String, timeout: TimeInterval = 60) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            where entry.hasSuffix(".partial") {
                // All files together: a table read in slices grows several part files at once.
                let data = directory + "/" + entry + "/data"
                let files = (try? FileManager.default.contentsOfDirectory(atPath: data)) ?? []
                if files.reduce(0, { $0 + (FileSystem.fileSize(data + "/" + $1) ?? 0) }) > 200_000 {
                    return entry
                }
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        throw TestEnvironmentError(description: "no partial backup appeared in \(directory)")
    }

    static func finish(_ process: Process, _ errors: Pipe) -> String {
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }

    @Test("SIGINT and SIGTERM mid-write remove the unfinished backup and exit 130/143", arguments: [SIGINT, SIGTERM])
    func interrupted(_ number: Int32) throws {
        let database = try Self.database("signal")
        let directory = try TemporaryDirectory()
        let earlier = try CLI.run(["backup", "--db-url", database.url, "--out", directory.path, "--table", "small"])
            .lastLine
        let (process, errors) = try Self.start(["backup", "--db-url", database.url, "--out", directory.path])
        _ = try Self.waitForPartialData(in: directory.path)
        kill(process.processIdentifier, number)
        let stderr = Self.finish(process, errors)
        #expect(process.terminationStatus == (number == SIGINT ? 130 : 143), "\(stderr)")
        #expect(stderr.contains("interrupted"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == [earlier])
        #expect(ArchiveVerifier.verify(try BackupArchive.open(name: earlier, in: directory.path)).isIntact)
    }

    @Test("SIGKILL mid-write leaves only a hidden leftover that list, restore and prune never take for a backup")
    func killed() throws {
        let database = try Self.database("sigkill")
        let directory = try TemporaryDirectory()
        let earlier = try CLI.run(["backup", "--db-url", database.url, "--out", directory.path, "--table", "small"])
            .lastLine
        let (process, errors) = try Self.start(["backup", "--db-url", database.url, "--out", directory.path])
        let partial = try Self.waitForPartialData(in: directory.path)
        kill(process.processIdentifier, SIGKILL)
        _ = Self.finish(process, errors)
        #expect(try BackupListing.list(in: directory.path).map(\.name) == [earlier])
        let name = String(partial.dropFirst().dropLast(".partial".count))
        #expect(try CLI.run(["restore", name, "--dir", directory.path, "--db-url", database.url]).status == 64)
        // The lock died with the process: prune removes the leftover once it is old enough.
        try FileManager.default.setAttributes(
            [.modificationDate: Date().addingTimeInterval(-7200)], ofItemAtPath: directory.path + "/" + partial)
        let pruned = try Pruner.prune(in: directory.path, policy: .default, dryRun: false)
        #expect(pruned.stalePartials == [partial] && pruned.removed.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == [earlier])
    }

    @Test("a full disk (file size limit) and an unwritable folder fail clearly and leave nothing")
    func diskFull() throws {
        let database = try Self.database("diskfull", rows: 100_000)
        let directory = try TemporaryDirectory()
        let earlier = try CLI.run(["backup", "--db-url", database.url, "--out", directory.path, "--table", "small"])
            .lastLine
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [
            "-c", "ulimit -f 1024; exec \"$0\" backup --db-url \"$1\" --out \"$2\"", CLI.binary, database.url,
            directory.path,
        ]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = Self.finish(process, errors)
        #expect(process.terminationStatus == 1, "\(stderr)")
        #expect(stderr.contains("File too large") && stderr.contains("error:"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == [earlier])

        let unwritable = try CLI.run(["backup", "--db-url", database.url, "--out", "/proc/supabackup-test"])
        #expect(unwritable.status == 1)
        #expect(
            unwritable.stderr.split(separator: "\n").count == 1 && unwritable.stderr.contains("/proc/supabackup-test"))
    }

    @Test("the server ending the session mid-table fails the backup with the cause and leaves no folder")
    func terminatedBackup() throws {
        let database = try Self.database("terminate")
        let directory = try TemporaryDirectory()
        let (process, errors) = try Self.start(["backup", "--db-url", database.url, "--out", directory.path])
        _ = try Self.waitForPartialData(in: directory.path)
        let admin = try TestServer.connect()
        defer { admin.close() }
        _ = try admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'supabackup backup'",
            [database.name])
        let stderr = Self.finish(process, errors)
        #expect(process.terminationStatus == 1, "\(stderr)")
        #expect(stderr.contains("terminat"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test("a restore whose connection is killed midway leaves the target exactly as before")
    func terminatedRestore() throws {
        let source = try Self.database("kill_src")
        let directory = try TemporaryDirectory()
        let name = try backup(source, into: directory).name
        let target = try Self.database("kill_dst", rows: 1000)
        try target.execute("UPDATE public.small SET note = 'target'")
        let before = [try target.digest("public.small"), try target.digest("public.big")]
        // The restore must wait on a lock this session holds on big, inside its transaction, so
        // the kill always lands mid-restore however fast or slow the machine.
        let blocker = try TestServer.connect(database: target.name)
        defer { blocker.close() }
        try blocker.execute("BEGIN; LOCK TABLE public.big IN ACCESS EXCLUSIVE MODE")
        let (process, errors) = try Self.start(["restore", name, "--dir", directory.path, "--db-url", target.url])
        let admin = try TestServer.connect()
        defer { admin.close() }
        var killed = false
        for _ in 0..<6000 where !killed && process.isRunning {
            let result = try admin.query(
                """
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE datname = $1 AND application_name = 'supabackup restore' AND wait_event_type = 'Lock'
                """, [target.name])
            killed = !result.rows.isEmpty
            if !killed { Thread.sleep(forTimeInterval: 0.01) }
        }
        try blocker.execute("ROLLBACK")
        let stderr = Self.finish(process, errors)
        #expect(killed)
        #expect(process.terminationStatus == 1, "\(stderr)")
        #expect([try target.digest("public.small"), try target.digest("public.big")] == before)
    }

    @Test("REST: 5xx past the retry budget and a 401 mid-way stop with the cause and leave no folder")
    func restFaults() throws {
        let database = try Self.database("rest_faults", rows: 3000)
        let directory = try TemporaryDirectory()
        var failing = PostgRESTTestServer.Options()
        failing.faultEvery = 1
        failing.faultAfter = 2
        let server = try PostgRESTTestServer(databaseURL: database.url, options: failing)
        #expect {
            try restBackup(server, into: directory, pageSize: 500)
        } throws: { "\($0)".contains("503") && "\($0)".contains("attempts") }
        #expect(server.requestCount == 2 + 6)

        var revoked = PostgRESTTestServer.Options()
        revoked.faultEvery = 1
        revoked.faultAfter = 3
        revoked.fault = .unauthorized
        let server401 = try PostgRESTTestServer(databaseURL: database.url, options: revoked)
        #expect {
            try restBackup(server401, into: directory, pageSize: 500)
        } throws: { "\($0)".contains("401") && "\($0)".contains("service_role") }
        #expect(server401.requestCount == 4)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test("REST: a restore failing midway, then rerun, converges to the backup")
    func restRestoreRerun() throws {
        let source = try Self.database("rest_rerun_src", rows: 5000)
        let directory = try TemporaryDirectory()
        let name = try backup(source, into: directory).name
        let target = try Self.database("rest_rerun_dst", rows: 10)
        try target.execute("UPDATE public.big SET pad = 'old'")
        var options = PostgRESTTestServer.Options()
        options.faultEvery = 1
        options.faultAfter = 4
        options.faultLimit = 1
        options.fault = .unauthorized
        let server = try PostgRESTTestServer(databaseURL: target.url, options: options)
        var settings = try restSettings(server)
        settings.batchBytes = 64 * 1024
        #expect(throws: RESTError.self) {
            try RestoreEngine(
                options: RestoreOptions(target: .rest(settings), directory: directory.path, name: name),
                logger: silentLogger
            ).run()
        }
        #expect(try target.digest("public.big") != source.digest("public.big"))
        _ = try RestoreEngine(
            options: RestoreOptions(target: .rest(settings), directory: directory.path, name: name),
            logger: silentLogger
        ).run()
        #expect(try target.digest("public.big") == source.digest("public.big"))
        #expect(try target.digest("public.small") == source.digest("public.small"))
    }

    @Test("writers committing linked rows during a backup: the restore has no orphans and matches one snapshot")
    func underLoad() throws {
        let database = try TestDatabase("load")
        try database.execute(
            """
            CREATE TABLE public.orders (id bigserial PRIMARY KEY, created_at timestamptz DEFAULT now());
            CREATE TABLE public.order_lines (id bigserial PRIMARY KEY, order_id bigint NOT NULL REFERENCES public.orders(id), qty int);
            CREATE TABLE public.counters (name text PRIMARY KEY, value bigint NOT NULL);
            INSERT INTO public.counters VALUES ('orders', 0);
            CREATE TABLE public.filler AS SELECT i, repeat('x', 500) AS pad FROM generate_series(1, 200000) i;
            """)
        let stop = StopFlag()
        let url = database.url
        let writer = Thread {
            guard let connection = try? PostgresConnection(conninfo: url) else { return }
            while !stop.isSet {
                try? connection.execute(
                    """
                    BEGIN;
                    WITH o AS (INSERT INTO public.orders DEFAULT VALUES RETURNING id)
                    INSERT INTO public.order_lines (order_id, qty) SELECT id, 1 FROM o;
                    UPDATE public.counters SET value = value + 1 WHERE name = 'orders';
                    COMMIT;
                    """)
            }
            connection.close()
        }
        writer.start()
        defer { stop.set() }
        Thread.sleep(forTimeInterval: 0.3)
        let directory = try TemporaryDirectory()
        let result = try backup(database, into: directory)
        let server = try PostgRESTTestServer(databaseURL: database.url)
        let rest = try restBackup(server, into: directory, tables: ["orders", "order_lines"])
        stop.set()
        #expect(!rest.manifest.consistentSnapshot && result.manifest.consistentSnapshot)

        let target = try TestDatabase("load_dst")
        try target.execute(
            """
            CREATE TABLE public.orders (id bigserial PRIMARY KEY, created_at timestamptz DEFAULT now());
            CREATE TABLE public.order_lines (id bigserial PRIMARY KEY, order_id bigint NOT NULL REFERENCES public.orders(id), qty int);
            CREATE TABLE public.counters (name text PRIMARY KEY, value bigint NOT NULL);
            CREATE TABLE public.filler (i int, pad text);
            """)
        try restore(result.name, from: directory, into: target)
        let orders = try #require(Int(try target.scalar("SELECT count(*) FROM public.orders") ?? ""))
        #expect(orders > 0)
        #expect(try target.scalar("SELECT count(*) FROM public.order_lines") == String(orders))
        #expect(try target.scalar("SELECT value FROM public.counters") == String(orders))
        #expect(
            try target.scalar(
                "SELECT count(*) FROM public.order_lines l LEFT JOIN public.orders o ON o.id = l.order_id WHERE o.id IS NULL"
            ) == "0")
    }

    @Test("a role without SELECT gets an error naming the table; a role without restore rights, one before any write")
    func privileges() throws {
        let database = try Self.database("privs", rows: 10)
        try database.execute(
            """
            DO $$ BEGIN
              CREATE ROLE supabackup_reader LOGIN PASSWORD 'reader-pw';
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$;
            GRANT SELECT ON public.small TO supabackup_reader;
            REVOKE ALL ON public.big FROM supabackup_reader;
            """)
        let directory = try TemporaryDirectory()
        let reader = try TestServer.url(database: database.name).replacingOccurrences(
            of: "postgres@", with: "supabackup_reader:reader-pw@")
        let denied = try CLI.run(
            ["backup", "--db-url", reader, "--out", directory.path], environment: ["PGPASSWORD": ""])
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("big") && denied.stderr.contains("permission denied"))

        let name = try backup(database, into: directory, tables: ["small"]).name
        try database.execute("UPDATE public.small SET note = 'unchanged'")
        let before = try database.digest("public.small")
        let restore = try CLI.run(
            ["restore", name, "--dir", directory.path, "--db-url", reader], environment: ["PGPASSWORD": ""])
        #expect(restore.status == 1)
        #expect(restore.stderr.contains("lacks INSERT on public.small"))
        #expect(try database.digest("public.small") == before)
    }

    @Test("identifiers with quotes, semicolons and unicode are quoted everywhere and round-trip")
    func hostileIdentifiers() throws {
        let ddl = #"""
            CREATE SCHEMA "Sch; ema""";
            CREATE TABLE "Sch; ema"""."Tä;ble ""x""" ("i""d" int PRIMARY KEY, "a;b c" text, "日本" jsonb);
            CREATE TABLE "Sch; ema"""."child'); DROP TABLE x; --" ("id" int PRIMARY KEY,
              "p" int REFERENCES "Sch; ema"""."Tä;ble ""x""" ("i""d"));
            """#
        let source = try TestDatabase("idents")
        try source.execute(ddl)
        try source.execute(
            #"""
            INSERT INTO "Sch; ema"""."Tä;ble ""x""" VALUES (1, 'x''); DROP TABLE y; --', '{"k": null}'), (2, NULL, NULL);
            INSERT INTO "Sch; ema"""."child'); DROP TABLE x; --" VALUES (10, 1), (11, 2);
            """#)
        let target = try TestDatabase("idents_dst")
        try target.execute(ddl)
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory, schemas: ["Sch; ema\""])
        #expect(result.manifest.tables.count == 2)
        try restore(result.name, from: directory, into: target)
        for table in [#""Sch; ema"""."Tä;ble ""x""""#, #""Sch; ema"""."child'); DROP TABLE x; --""#] {
            #expect(try target.digest(table) == source.digest(table))
        }
        let cat = try CLI.run(["cat", result.name, #""Sch; ema"""."Tä;ble ""x""""#, "--dir", directory.path])
        #expect(cat.status == 0 && cat.stdout.contains(#""日本":{"k": null}"#))
    }

    @Test("list warns about backups others can read")
    func readableWarning() throws {
        let database = try Self.database("perm_warn", rows: 10)
        let directory = try TemporaryDirectory()
        let name = try backup(database, into: directory).name
        #expect(try CLI.run(["list", "--dir", directory.path]).stderr.isEmpty)
        chmod(directory.path + "/" + name, 0o755)
        let list = try CLI.run(["list", "--dir", directory.path])
        #expect(list.stderr.contains("can be read by other users") && list.stderr.contains(name))
    }
}

final class StopFlag: @unchecked Sendable {
    // @unchecked: guarded by the lock.
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

@Suite("Reliability: server stopping")
struct ServerStopTests {
    @Test("the server stopping mid-backup fails the backup with the cause and leaves no folder")
    func serverStops() throws {
        // A server of its own (the shared one serves the other tests), started by scripts/lib/pg.sh.
        let repository = URL(fileURLWithPath: Repository.sqlDirectory).deletingLastPathComponent().path
        let directory = try TemporaryDirectory()
        let script = """
            set -u
            source "$REPO/scripts/lib/pg.sh"
            pg_start || exit 90
            psql -q -c "CREATE TABLE big AS SELECT i, repeat(md5(i::text), 8) AS pad FROM generate_series(1, 600000) i" || exit 91
            "$BIN" backup --db-url "postgresql://postgres@127.0.0.1:$PGPORT/postgres" --out "$OUT" 2> "$OUT.err" &
            pid=$!
            for _ in $(seq 3000); do
              ls "$OUT"/.*.partial/data/* >/dev/null 2>&1 && [ "$(du -sk "$OUT" | cut -f1)" -gt 200 ] && break
              sleep 0.01
            done
            pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_TMP/data" -m fast -w stop >/dev/null
            wait $pid
            echo "status=$?"
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        var env = ProcessInfo.processInfo.environment
        env["REPO"] = repository
        env["BIN"] = CLI.binary
        env["OUT"] = directory.file("backups")
        for key in ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PG_TMP", "PG_BINDIR"] {
            env.removeValue(forKey: key)
        }
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let stderr = (try? String(contentsOfFile: directory.file("backups.err"), encoding: .utf8)) ?? ""
        #expect(output.contains("status=1"), "\(output) \(stderr)")
        #expect(
            stderr.contains("error:")
                && (stderr.contains("terminat") || stderr.contains("closed") || stderr.contains("shut")), "\(stderr)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: directory.file("backups"))) ?? []
        #expect(left.isEmpty, "\(left)")
    }
}
