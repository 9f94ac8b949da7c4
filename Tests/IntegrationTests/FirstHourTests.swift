import Foundation
import SupabackupKit
import TestSupport
import Testing

/// What an operator with cron, a developer on a laptop and someone restoring after a disaster
/// meet in their first hour, through the built binary: nothing fails silently.
@Suite("First hour")
struct FirstHourTests {
    static func smallDatabase(_ label: String) throws -> TestDatabase {
        let database = try TestDatabase(label)
        try database.execute("CREATE TABLE public.t (id int PRIMARY KEY, v text); INSERT INTO public.t VALUES (1, 'a')")
        return database
    }

    @Test("a backup that selects no table exits 64 and writes nothing, -q and --json included; --allow-empty says so")
    func emptyBackup() throws {
        let empty = try TestDatabase("first_empty")
        let directory = try TemporaryDirectory()
        for extra in [[], ["-q"], ["--json"]] {
            let result = try CLI.run(["backup", "--db-url", empty.url, "--out", directory.path] + extra)
            #expect(result.status == 64, "\(extra): \(result.stderr)")
            #expect(result.stderr.contains("no tables to back up in public"), "\(extra): \(result.stderr)")
            #expect(result.stderr.contains("--allow-empty"))
            #expect(result.stdout.isEmpty)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)

        let allowed = try CLI.run(["backup", "--db-url", empty.url, "--out", directory.path, "--allow-empty", "--json"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(allowed.stdout.utf8)) as? [String: Any]
        let warnings = summary?["warnings"] as? [String] ?? []
        #expect(warnings.contains { $0.contains("no tables to back up in public") }, "\(allowed.stdout)")
        let name = try #require(summary?["name"] as? String)
        let archive = try BackupArchive.open(name: name, in: directory.path)
        #expect(archive.manifest.warnings.contains { $0.contains("no tables to back up") })
    }

    @Test("the cron line (-q --prune) against a URL that selects nothing fails and every earlier backup stays")
    func cronLineKeepsBackups() throws {
        let source = try Self.smallDatabase("first_cron")
        let empty = try TestDatabase("first_cron_empty")
        let directory = try TemporaryDirectory()
        var names: [String] = []
        for _ in 0..<2 {
            let backup = try CLI.run(["backup", "--db-url", source.url, "--out", directory.path])
            #expect(backup.status == 0, "\(backup.stderr)")
            names.append(backup.lastLine)
        }
        // One of them 40 days old, as a month of cron runs would leave it.
        let old = BackupName.make(Date().addingTimeInterval(-40 * 86_400))
        try FileManager.default.moveItem(atPath: directory.file(names[0]), toPath: directory.file(old))
        let cron = try CLI.run([
            "backup", "-q", "--db-url", empty.url, "--out", directory.path, "--prune", "--keep-days", "30",
        ])
        #expect(cron.status != 0)
        #expect(cron.stderr.contains("no tables to back up"), "\(cron.stderr)")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: directory.path)) == [old, names[1]])
    }

    @Test("prune never removes the newest backup holding data in favour of newer empty ones")
    func pruneKeepsData() throws {
        let source = try Self.smallDatabase("first_prune")
        let empty = try TestDatabase("first_prune_empty")
        let directory = try TemporaryDirectory()
        let real = try CLI.run(["backup", "--db-url", source.url, "--out", directory.path])
        #expect(real.status == 0, "\(real.stderr)")
        let old = BackupName.make(Date().addingTimeInterval(-40 * 86_400))
        try FileManager.default.moveItem(atPath: directory.file(real.lastLine), toPath: directory.file(old))
        for _ in 0..<2 {
            let hollow = try CLI.run(["backup", "--db-url", empty.url, "--out", directory.path, "--allow-empty"])
            #expect(hollow.status == 0, "\(hollow.stderr)")
        }
        let prune = try CLI.run(["prune", "--dir", directory.path, "--keep-days", "30"])
        #expect(prune.status == 0, "\(prune.stderr)")
        #expect(prune.stdout.contains("newest holding data"), "\(prune.stdout)")
        #expect(FileManager.default.fileExists(atPath: directory.file(old)))
    }
}

extension FirstHourTests {
    @Test("restore never takes its target from DATABASE_URL alone, and names the target before writing")
    func explicitTarget() throws {
        let source = try Self.smallDatabase("first_target_src")
        let target = try TestDatabase("first_target_dst")
        try target.execute("CREATE TABLE public.t (id int PRIMARY KEY, v text)")
        let directory = try TemporaryDirectory()
        let name = try CLI.run(["backup", "--db-url", source.url, "--out", directory.path]).lastLine
        try source.execute("UPDATE public.t SET v = 'changed since'")

        // DATABASE_URL points at the live source, as a backup job's environment does.
        let implicit = try CLI.run(
            ["restore", name, "--dir", directory.path], environment: ["DATABASE_URL": source.url])
        #expect(implicit.status == 64, "\(implicit.stderr)")
        #expect(implicit.stderr.contains("DATABASE_URL alone does not choose a restore target"), "\(implicit.stderr)")
        #expect(try source.scalar("SELECT v FROM public.t") == "changed since")

        let restore = try CLI.run(
            ["restore", name, "--dir", directory.path, "--db-url", target.url],
            environment: ["DATABASE_URL": source.url])
        #expect(restore.status == 0, "\(restore.stderr)")
        let said = "into database \(target.name) on 127.0.0.1:"
        #expect(restore.stderr.contains("supabackup: restoring \(name) \(said)"), "\(restore.stderr)")
        #expect(restore.stdout.contains("restored \(name) \(said)"), "\(restore.stdout)")
        #expect(try target.scalar("SELECT v FROM public.t") == "a")
        #expect(try source.scalar("SELECT v FROM public.t") == "changed since")

        let json = try CLI.run(["restore", name, "--dir", directory.path, "--db-url", target.url, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect((object?["target"] as? String)?.contains("database \(target.name) on") == true, "\(json.stdout)")
        // --mode direct takes DATABASE_URL on purpose.
        let chosen = try CLI.run(
            ["restore", name, "--dir", directory.path, "--mode", "direct"], environment: ["DATABASE_URL": target.url])
        #expect(chosen.status == 0, "\(chosen.stderr)")
    }
}

extension FirstHourTests {
    @Test("a short password is removed where it stands, not from every word of the error")
    func shortPassword() throws {
        let source = try Self.smallDatabase("first_short_pw")
        let port = try #require(URL(string: source.url)?.port)
        let directory = try TemporaryDirectory()
        let result = try CLI.run(
            [
                "backup", "--db-url", "postgresql://postgres:a@127.0.0.1:\(port)/\(source.name)", "--out",
                directory.path,
            ],
            environment: ["PGPASSWORD": ""])
        #expect(result.status == 1)
        #expect(result.stderr.contains("password authentication failed for user"), "\(result.stderr)")
        #expect(result.stderr.contains("connection to server at"), "\(result.stderr)")
        #expect(!result.stderr.contains("***"), "\(result.stderr)")
        // Where it does stand, it goes.
        let echoed = try ConnectionString("postgresql://u:a@h/db").redact("postgresql://u:a@h/db password=a \"a\" data")
        #expect(echoed == "postgresql://u:***@h/db password=*** \"***\" data")
    }
}

extension FirstHourTests {
    @Test("the dry run fails wherever the real restore would, says what to add, and changes nothing")
    func truthfulDryRun() throws {
        let source = try SupabaseProjectTests.project("first_dry_src")
        let directory = try TemporaryDirectory()
        let backup = try CLI.run(["backup", "--db-url", source.url, "--out", directory.path, "--with-auth"])
        #expect(backup.status == 0, "\(backup.stderr)")
        let name = backup.lastLine

        // A fresh project without --with-auth: the profiles reference users that are not there.
        let fresh = try SupabaseProjectTests.project("first_dry_fresh", app: false, data: false)
        let sequences = "SELECT count(*) FROM pg_class WHERE relkind = 'S' AND relnamespace = 'public'::regnamespace"
        for dry in [["--dry-run"], []] {
            let result = try CLI.run(
                ["restore", name, "--dir", directory.path, "--db-url", fresh.url, "--create-schema"] + dry)
            #expect(result.status == 1, "\(dry): \(result.stderr)")
            #expect(result.stderr.contains("add --with-auth"), "\(dry): \(result.stderr)")
            #expect(try fresh.scalar("SELECT to_regclass('public.profiles') IS NULL") == "t")
            #expect(try fresh.scalar(sequences) == "0")
        }
        let rehearsal = try CLI.run(
            [
                "restore", name, "--dir", directory.path, "--db-url", fresh.url, "--create-schema", "--with-auth",
                "--dry-run",
            ])
        #expect(rehearsal.status == 0, "\(rehearsal.stderr)")
        #expect(rehearsal.stdout.contains("rehearsed"), "\(rehearsal.stdout)")
        #expect(try fresh.scalar("SELECT to_regclass('public.profiles') IS NULL") == "t")
        #expect(try fresh.scalar("SELECT count(*) FROM auth.users") == "0")

        // No auth schema at all: the dry run says so, with what to do.
        let plain = try TestDatabase("first_dry_plain")
        let noAuth = try CLI.run(
            ["restore", name, "--dir", directory.path, "--db-url", plain.url, "--create-schema", "--dry-run"])
        #expect(noAuth.status == 1, "\(noAuth.stderr)")
        #expect(noAuth.stderr.contains("Supabase project"), "\(noAuth.stderr)")

        // Into the source itself without --with-auth: the auth tables left out are named.
        let partial = try CLI.run(["restore", name, "--dir", directory.path, "--db-url", source.url])
        #expect(partial.status == 0, "\(partial.stderr)")
        #expect(partial.stderr.contains("left out"), "\(partial.stderr)")
        #expect(partial.stderr.contains("auth.users (auth rows need --with-auth)"), "\(partial.stderr)")
    }
}

extension FirstHourTests {
    @Test("argument errors and a port that is not a number: one line, supabackup: error:, exit 64")
    func usageErrors() throws {
        let directory = try TemporaryDirectory()
        for arguments in [
            ["backup", "--jobs", "0", "--out", directory.path],
            ["backup", "--no-such-option"],
            ["restore", "NAME", "--dir", directory.path, "--jobs", "x"],
            ["backup", "--db-url", "postgresql://u:pw@127.0.0.1:5432:appdb", "--out", directory.path],
        ] {
            let result = try CLI.run(arguments)
            #expect(result.status == 64, "\(arguments): \(result.stderr)")
            #expect(result.stderr.hasPrefix("supabackup: error: "), "\(arguments): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(arguments): \(result.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }
}
