import Foundation
import SupabackupKit
import TestSupport
import Testing

/// REST mode from the command line: configuration from the environment and key files, and
/// failures that stop at once with one clear line.
@Suite("Command line, REST mode")
struct CommandLineRESTTests {
    static func database() throws -> TestDatabase {
        let database = try TestDatabase("cli_rest")
        try database.execute(
            "CREATE TABLE public.items (id int PRIMARY KEY, name text); INSERT INTO public.items SELECT i, 'n' || i FROM generate_series(1, 50) i"
        )
        return database
    }

    @Test("SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY select REST mode; restore goes back the same way")
    func environment() throws {
        let database = try Self.database()
        let server = try PostgRESTTestServer(databaseURL: database.url)
        let directory = try TemporaryDirectory()
        let env = ["SUPABASE_URL": server.url, "SUPABASE_SERVICE_ROLE_KEY": server.options.serviceKey]
        let backup = try CLI.run(["backup", "--out", directory.path], environment: env)
        #expect(backup.status == 0, "\(backup.stderr)")
        let archive = try BackupArchive.open(name: backup.lastLine, in: directory.path)
        #expect(archive.manifest.mode == .rest && archive.manifest.foreignKeysComplete == false)
        #expect(!backup.stderr.contains(server.options.serviceKey))

        try database.execute("UPDATE public.items SET name = 'changed'; DELETE FROM public.items WHERE id > 40")
        // The environment gives the key, never the target: a restore names it on the command line.
        let implicit = try CLI.run(["restore", backup.lastLine, "--dir", directory.path], environment: env)
        #expect(implicit.status == 64 && implicit.stderr.contains("SUPABASE_URL alone"), "\(implicit.stderr)")
        #expect(try database.scalar("SELECT count(*) FROM public.items") == "40")
        let restore = try CLI.run(
            ["restore", backup.lastLine, "--dir", directory.path, "--rest-url", server.url], environment: env)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(restore.stderr.contains("restoring \(backup.lastLine) into the REST API at \(server.url)/rest/v1"))
        #expect(try database.scalar("SELECT count(*) FROM public.items WHERE name = 'n' || id") == "50")
    }

    @Test(
        "the project URL (hosted, supabase start, self-hosted), a /rest/v1 root and a bare PostgREST all back up and restore"
    )
    func urlForms() throws {
        let database = try Self.database()
        let gateway = try PostgRESTTestServer(databaseURL: database.url)
        var bareOptions = PostgRESTTestServer.Options()
        bareOptions.gateway = false
        let bare = try PostgRESTTestServer(databaseURL: database.url, options: bareOptions)
        let directory = try TemporaryDirectory()
        // The gateway's root is its own 404, as on the hosted platform and `supabase start`.
        #expect(gateway.url.hasPrefix("http://127.0.0.1:") && !gateway.url.contains("/rest"))
        for (url, isBare) in [
            (gateway.url, false), (gateway.url + "/", false), (gateway.url + "/rest/v1/", false), (bare.url, true),
        ] {
            let env = ["SUPABASE_URL": url, "SUPABASE_SERVICE_ROLE_KEY": gateway.options.serviceKey]
            let backup = try CLI.run(["backup", "--out", directory.path], environment: env)
            #expect(backup.status == 0, "\(url): \(backup.stderr)")
            #expect(backup.stderr.contains("serves PostgREST itself") == isBare, "\(url): \(backup.stderr)")
            try database.execute("UPDATE public.items SET name = 'changed' WHERE id < 5")
            let restore = try CLI.run(
                ["restore", backup.lastLine, "--dir", directory.path, "--rest-url", url], environment: env)
            #expect(restore.status == 0, "\(url): \(restore.stderr)")
            #expect(try database.scalar("SELECT count(*) FROM public.items WHERE name = 'n' || id") == "50")
        }
        // A bare PostgREST has no Auth API beside it: --with-auth says so in one line.
        let auth = try CLI.run(
            ["backup", "--with-auth", "--out", directory.path],
            environment: ["SUPABASE_URL": bare.url, "SUPABASE_SERVICE_ROLE_KEY": bare.options.serviceKey])
        #expect(auth.status != 0)
        #expect(auth.stderr.contains("no Auth API"), "\(auth.stderr)")
        // Neither /rest/v1 nor the root serves PostgREST: the gateway's 404, with what to give.
        let wrong = try CLI.run(
            ["backup", "--out", directory.path],
            environment: [
                "SUPABASE_URL": gateway.url + "/nothing", "SUPABASE_SERVICE_ROLE_KEY": gateway.options.serviceKey,
            ])
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("404") && wrong.stderr.contains("project URL"), "\(wrong.stderr)")
    }

    @Test("--service-key-file reads the key from a file")
    func keyFile() throws {
        let database = try Self.database()
        let server = try PostgRESTTestServer(databaseURL: database.url)
        let directory = try TemporaryDirectory()
        let keyFile = directory.file("key")
        try (server.options.serviceKey + "\n").write(toFile: keyFile, atomically: true, encoding: .utf8)
        let result = try CLI.run(
            [
                "backup", "--mode", "rest", "--rest-url", server.url, "--service-key-file", keyFile, "--out",
                directory.file("b"),
            ])
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test("auto mode says why the direct connection failed and falls back to REST")
    func fallback() throws {
        let database = try Self.database()
        let server = try PostgRESTTestServer(databaseURL: database.url)
        let directory = try TemporaryDirectory()
        let result = try CLI.run(
            ["backup", "--out", directory.path],
            environment: [
                "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "SUPABASE_URL": server.url,
                "SUPABASE_SERVICE_ROLE_KEY": server.options.serviceKey,
            ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("could not be reached") && result.stderr.contains("port 1"), "\(result.stderr)")
        let manifest = try BackupArchive.open(name: result.lastLine, in: directory.path).manifest
        #expect(manifest.mode == .rest)
        #expect(manifest.warnings.contains { $0.contains("backed up over REST instead") })
    }

    @Test("a wrong password or an unknown database never becomes a REST backup: exit 1, nothing written")
    func noFallbackOnRefusal() throws {
        let database = try Self.database()
        let server = try PostgRESTTestServer(databaseURL: database.url)
        let directory = try TemporaryDirectory()
        let port = try #require(URL(string: database.url)?.port)
        for url in [
            "postgresql://postgres:wrong-password@127.0.0.1:\(port)/\(database.name)",
            "postgresql://postgres@127.0.0.1:\(port)/no_such_database",
        ] {
            for quiet in [[], ["-q"]] {
                let result = try CLI.run(
                    ["backup", "--out", directory.path] + quiet,
                    environment: [
                        "DATABASE_URL": url, "SUPABASE_URL": server.url,
                        "SUPABASE_SERVICE_ROLE_KEY": server.options.serviceKey,
                    ])
                #expect(result.status == 1, "\(url): \(result.stderr)")
                #expect(result.stderr.contains("the server answered"), "\(result.stderr)")
                #expect(!result.stderr.contains("wrong-password"))
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test("a wrong key, an unexposed schema, an unreachable URL and an anon key each fail fast with one line")
    func failures() throws {
        let database = try Self.database()
        let server = try PostgRESTTestServer(databaseURL: database.url)
        let directory = try TemporaryDirectory()
        func run(_ arguments: [String], key: String, url: String? = nil) throws -> (CLI.Result, TimeInterval) {
            let started = Date()
            let result = try CLI.run(
                ["backup", "--mode", "rest", "--out", directory.path] + arguments,
                environment: ["SUPABASE_URL": url ?? server.url, "SUPABASE_SERVICE_ROLE_KEY": key])
            return (result, Date().timeIntervalSince(started))
        }
        let (wrongKey, _) = try run([], key: "not-the-key")
        #expect(wrongKey.status == 1)
        #expect(wrongKey.stderr.contains("Invalid API key") && wrongKey.stderr.contains("service_role"))

        let (schema, _) = try run(["--schema", "private"], key: server.options.serviceKey)
        #expect(schema.status == 1)
        #expect(schema.stderr.contains("not exposed") && schema.stderr.contains("private"))

        let (unreachable, seconds) = try run([], key: server.options.serviceKey, url: "http://127.0.0.1:1/rest/v1")
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.contains("cannot reach"))
        #expect(seconds < 10)

        // A JWT whose role claim is anon: RLS would make the backup silently partial.
        let anon =
            "eyJhbGciOiJIUzI1NiJ9."
            + Data(#"{"role":"anon"}"#.utf8).base64EncodedString()
            .replacingOccurrences(of: "=", with: "") + ".c2ln"
        let (anonKey, _) = try run([], key: anon)
        #expect(anonKey.status == 64)
        #expect(anonKey.stderr.contains("silently partial"))
        let (publishable, _) = try run([], key: "sb_publishable_abc123")
        #expect(publishable.status == 64)

        for result in [wrongKey, schema, unreachable, anonKey, publishable] {
            #expect(
                result.stderr.split(separator: "\n").filter { $0.contains("error:") }.count == 1, "\(result.stderr)")
            #expect(!result.stderr.contains(anon) && !result.stderr.contains("not-the-key"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }
}
