import Foundation
import SupabackupKit
import TestSupport
import Testing

/// The command line as users' scripts see it: stdout, stderr, exit codes.
@Suite("Command line")
struct CommandLineTests {
    @Test("backup prints the name as its last stdout line; list, verify and restore take it")
    func endToEnd() throws {
        let (source, target) = try sourceAndTarget("cli", schema: "sample/schema.sql", data: "sample/data.sql")
        let directory = try TemporaryDirectory()
        let backup = try CLI.run(["backup", "--db-url", source.url, "--out", directory.path])
        #expect(backup.status == 0, "\(backup.stderr)")
        let name = backup.lastLine
        #expect(BackupName.date(of: name) != nil)
        #expect(backup.stderr.contains("public.users"))

        let list = try CLI.run(["list", "--dir", directory.path])
        #expect(list.status == 0)
        #expect(list.stdout.contains(name) && list.stdout.contains("direct") && list.stdout.contains("12655"))

        let json = try CLI.run(["list", "--dir", directory.path, "--json"])
        let entries = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(entries?.first?["name"] as? String == name)
        #expect(entries?.first?["rows"] as? Int == 12655)

        let verify = try CLI.run(["verify", name, "--dir", directory.path])
        #expect(verify.status == 0)
        #expect(verify.stdout.contains("intact"))

        let dry = try CLI.run(["restore", name, "--dir", directory.path, "--db-url", target.url, "--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("public.users: 200 rows, upsert on (id)"))
        #expect(try target.scalar("SELECT count(*) FROM public.users") == "0")

        let restore = try CLI.run(["restore", name, "--dir", directory.path, "--db-url", target.url])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try target.digest("public.projects") == source.digest("public.projects"))
    }

    @Test("cat into a reader that stops early (| head) ends quietly, without a crash")
    func catIntoHead() throws {
        let source = try TestDatabase("cathead")
        try source.execute(
            "CREATE TABLE public.t (id int PRIMARY KEY, v text); INSERT INTO public.t SELECT i, repeat('x', 200) FROM generate_series(1, 200000) i"
        )
        let directory = try TemporaryDirectory()
        let name = try CLI.run(["backup", "--db-url", source.url, "--out", directory.path]).lastLine
        let (process, out, err) = try CLI.start(["cat", name, "public.t", "--dir", directory.path])
        #expect(out.fileHandleForReading.readData(ofLength: 1000).count == 1000)
        try out.fileHandleForReading.close()
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // Like cat: killed by SIGPIPE where it is not ignored, else a quiet exit 0.
        let pipeSignal = process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGPIPE
        #expect(pipeSignal || process.terminationStatus == 0, "\(errors)")
        #expect(!errors.contains("crashed") && !errors.contains("Fatal error"), "\(errors)")
    }

    @Test("restore without a name lists the backups, says how to pick one, and restores nothing")
    func restoreWithoutName() throws {
        let source = try TestDatabase("noname")
        try source.execute("CREATE TABLE public.a (id int PRIMARY KEY)")
        let directory = try TemporaryDirectory()
        let name = try CLI.run(["backup", "--db-url", source.url, "--out", directory.path]).lastLine
        let result = try CLI.run(["restore", "--dir", directory.path, "--db-url", source.url])
        #expect(result.status == 64)
        #expect(result.stdout.contains(name))
        #expect(result.stderr.contains("supabackup restore \(name)"))
    }

    @Test(
        "names that are paths, dot-dot, or unknown are refused with one line",
        arguments: ["../x", "..", ".", "/etc", "a/b", "2025-01-01T00-00-00-000Z", "x;rm -rf", "a\u{1}b", "'quoted'"])
    func badNames(_ name: String) throws {
        let directory = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory.file("x"), withIntermediateDirectories: true)
        for command in [["verify", name], ["restore", name, "--db-url", "postgresql://127.0.0.1:1/none"]] {
            let result = try CLI.run(command + ["--dir", directory.path])
            #expect(result.status == 64, "\(command): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
            #expect(result.stderr.hasPrefix("supabackup: error: "))
        }
    }

    @Test("the password in a URL appears nowhere: not in output, errors, or the archive")
    func noPasswordLeaks() throws {
        let password = "S3cret-pass_word~42"
        let source = try TestDatabase("secrets")
        try source.execute(
            """
            CREATE TABLE public.a (id int PRIMARY KEY, note text); INSERT INTO public.a VALUES (1, 'hello');
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'supabackup_pw') THEN
                CREATE ROLE supabackup_pw LOGIN SUPERUSER PASSWORD '\(password)';
              END IF;
            END $$;
            """)
        let url = try TestServer.url(database: source.name).replacingOccurrences(
            of: "postgres@", with: "supabackup_pw:\(password)@")
        let environment = ["PGPASSWORD": "", "PGUSER": ""]
        let directory = try TemporaryDirectory()
        let backup = try CLI.run(["backup", "--db-url", url, "--out", directory.path], environment: environment)
        #expect(backup.status == 0, "\(backup.stderr)")
        let verify = try CLI.run(["verify", backup.lastLine, "--dir", directory.path])
        let restore = try CLI.run(
            ["restore", backup.lastLine, "--dir", directory.path, "--db-url", url], environment: environment)
        #expect(restore.status == 0, "\(restore.stderr)")
        let wrong = try CLI.run(
            [
                "backup", "--db-url", url.replacingOccurrences(of: password, with: password + "X"), "--out",
                directory.path,
            ],
            environment: environment)
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("password authentication failed"))
        let conninfo = try CLI.run(
            [
                "backup", "--db-url", "host=127.0.0.1 port=1 user=x password=\(password) dbname=none", "--out",
                directory.path,
            ])
        #expect(conninfo.status == 1)
        let malformed = try CLI.run([
            "backup", "--db-url", "postgresql://u:\(password)@host:notaport/db", "--out", directory.path,
        ])
        #expect(malformed.status == 64, "\(malformed.stderr)")
        // No database in the URL: libpq takes the user's name, which does not exist here.
        let noDatabase = try CLI.run(
            ["backup", "--db-url", url.replacingOccurrences(of: "/\(source.name)", with: ""), "--out", directory.path],
            environment: ["PGDATABASE": ""])
        #expect(noDatabase.status == 1 && noDatabase.stderr.contains("supabackup_pw"))
        #expect(noDatabase.stderr.split(separator: "\n").count == 1, "\(noDatabase.stderr)")

        for result in [backup, verify, restore, wrong, conninfo, malformed, noDatabase] {
            #expect(!result.stdout.contains(password) && !result.stderr.contains(password))
        }
        let archive = directory.path + "/" + backup.lastLine
        let manifest = try String(contentsOfFile: archive + "/manifest.json", encoding: .utf8)
        #expect(!manifest.contains(password))
        #expect(manifest.contains("supabackup_pw"))
        for file in try FileManager.default.contentsOfDirectory(atPath: archive + "/data") {
            #expect(!(try decompress(archive + "/data/" + file)).contains(password))
        }
    }

    @Test("DATABASE_URL is used when --db-url is absent")
    func databaseURLFromEnvironment() throws {
        let source = try TestDatabase("envurl")
        try source.execute("CREATE TABLE public.from_env (id int)")
        let directory = try TemporaryDirectory()
        let result = try CLI.run(["backup", "--out", directory.path], environment: ["DATABASE_URL": source.url])
        #expect(result.status == 0, "\(result.stderr)")
        let archive = try BackupArchive.open(name: result.lastLine, in: directory.path)
        #expect(archive.manifest.tables.map(\.name) == ["from_env"])
    }

    @Test("an unknown table is a usage error naming it, and creates no backup folder")
    func unknownTable() throws {
        let source = try TestDatabase("unknown")
        try source.execute("CREATE TABLE public.a (id int)")
        let directory = try TemporaryDirectory()
        let result = try CLI.run(["backup", "--db-url", source.url, "--out", directory.path, "--table", "nosuch"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("nosuch"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test("a database URL that names no database: the error says where it looked; a malformed URL is a usage error")
    func noDatabaseInURL() throws {
        let database = try TestDatabase("cli_nodb")
        try database.execute("CREATE TABLE public.items (id int PRIMARY KEY)")
        let directory = try TemporaryDirectory()
        // libpq falls back to the database named like the user (postgres), which lacks the table.
        let bare = String(database.url[..<database.url.range(of: "/", options: .backwards)!.lowerBound])
        let result = try CLI.run(
            ["backup", "--db-url", bare, "--table", "items", "--out", directory.path], environment: ["PGDATABASE": ""])
        #expect(result.status == 64, "\(result.stderr)")
        #expect(
            result.stderr.contains("no table items") && result.stderr.contains("database postgres"), "\(result.stderr)")
        #expect(result.stderr.contains("names no database"), "\(result.stderr)")

        for url in ["not-a-url", "postgresql://u:hunter2@127.0.0.1/x?nosuchoption=1"] {
            let malformed = try CLI.run(["backup", "--db-url", url, "--out", directory.path])
            #expect(malformed.status == 64, "\(malformed.stderr)")
            #expect(malformed.stderr.contains("invalid database URL") && !malformed.stderr.contains("hunter2"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test("restore --create-schema: a summary by default, detail with --verbose, nothing with --quiet")
    func restoreOutput() throws {
        let source = try TestDatabase("cli_out_src")
        try source.run(sqlFile: "sample/schema.sql")
        try source.run(sqlFile: "sample/data.sql")
        let directory = try TemporaryDirectory()
        let name = try CLI.run(["backup", "--db-url", source.url, "--out", directory.path, "--quiet"]).lastLine
        func restore(_ flags: [String]) throws -> CLI.Result {
            let target = try TestDatabase("cli_out_dst")
            let result = try CLI.run(
                ["restore", name, "--dir", directory.path, "--db-url", target.url, "--create-schema"] + flags)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(try target.digest("public.projects") == source.digest("public.projects"))
            return result
        }
        let quiet = try restore(["--quiet"])
        #expect(quiet.stdout.isEmpty && quiet.stderr.isEmpty, "\(quiet.stdout)\(quiet.stderr)")

        let plain = try restore([])
        let lines = plain.stdout.split(separator: "\n")
        #expect(lines.count <= 3, "\(plain.stdout)")
        #expect(plain.stdout.contains("restored \(name) into database "), "\(plain.stdout)")
        #expect(plain.stdout.contains(": 12 tables, 12655 rows"), "\(plain.stdout)")
        #expect(plain.stdout.contains("objects created"))

        let verbose = try restore(["--verbose"])
        #expect(verbose.stdout.contains("created table public.users"))
        #expect(verbose.stdout.contains("public.users: 200 rows"))
        #expect(verbose.stdout.split(separator: "\n").count > 30)
    }
}
