import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

/// Backups in S3-compatible object storage, through the command line as users run it, against
/// moto's S3 server with signature checking on.
@Suite("Object storage")
struct ObjectStorageTests {
    private func storage(_ location: String) throws -> S3Storage {
        S3Storage(configuration: try S3Configuration.resolve(location, environment: try TestS3.environment()))
    }

    /// Runs `aws` with the test keys (from the environment, never argv).
    private func aws(_ arguments: [String]) throws -> CLI.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["aws", "--endpoint-url", try TestS3.endpoint()] + arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in try TestS3.environment() where key != "HOME" { env[key] = value }
        process.environment = env
        let directory = try TemporaryDirectory()
        _ = FileManager.default.createFile(atPath: directory.file("out"), contents: nil)
        _ = FileManager.default.createFile(atPath: directory.file("err"), contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: directory.file("out")))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: directory.file("err")))
        try process.run()
        process.waitUntilExit()
        return CLI.Result(
            status: process.terminationStatus,
            stdout: try String(contentsOfFile: directory.file("out"), encoding: .utf8),
            stderr: try String(contentsOfFile: directory.file("err"), encoding: .utf8))
    }

    @Test("backup, list, verify, cat and restore with s3:// wherever a folder goes")
    func roundTrip() throws {
        let (source, target) = try sourceAndTarget("s3rt", schema: "sample/schema.sql", data: "sample/data.sql")
        let location = try TestS3.location()
        let env = try TestS3.environment()
        let backup = try CLI.run(["backup", "--db-url", source.url, "--out", location], environment: env)
        #expect(backup.status == 0, "\(backup.stderr)")
        let name = backup.lastLine
        #expect(BackupName.date(of: name) != nil)

        let list = try CLI.run(["list", "--dir", location], environment: env)
        #expect(list.status == 0 && list.stdout.contains(name) && list.stdout.contains("12655"), "\(list.stderr)")
        let verify = try CLI.run(["verify", name, "--dir", location], environment: env)
        #expect(verify.status == 0 && verify.stdout.contains("intact"), "\(verify.stderr)")
        let full = try CLI.run(["verify", name, "--dir", location, "--read-data"], environment: env)
        #expect(full.status == 0 && full.stdout.contains("intact"), "\(full.stderr)")

        let cat = try CLI.run(["cat", name, "public.users", "--dir", location], environment: env)
        #expect(cat.status == 0 && cat.stdout.split(separator: "\n").count == 200, "\(cat.stderr)")

        let restore = try CLI.run(["restore", name, "--dir", location, "--db-url", target.url], environment: env)
        #expect(restore.status == 0, "\(restore.stderr)")
        for table in ["public.users", "public.projects", "public.slides"] {
            #expect(try target.digest(table) == source.digest(table))
        }
        // The layout is the local one: no reservation or stray object is left beside the backup.
        let objects = try storage(location).list(prefix: name + "/", recursive: true).map(\.name)
        #expect(objects.contains(name + "/manifest.json") && objects.contains(name + "/schema.sql"))
        #expect(
            objects.allSatisfy {
                $0 == name + "/manifest.json" || $0 == name + "/schema.sql" || $0.hasPrefix(name + "/data/")
            })
    }

    @Test("the aws CLI reads what supabackup wrote, and supabackup reads what aws s3 sync uploaded")
    func interoperability() throws {
        let source = try TestDatabase("s3sync")
        try source.execute(
            "CREATE TABLE public.t (id int PRIMARY KEY, note text); INSERT INTO public.t SELECT i, 'n' || i FROM generate_series(1, 5000) i"
        )
        let env = try TestS3.environment()
        // supabackup -> S3 -> aws s3 sync -> local folder, verified by supabackup.
        let written = try TestS3.location()
        let name = try CLI.run(["backup", "--db-url", source.url, "--out", written], environment: env).lastLine
        let local = try TemporaryDirectory()
        let down = try aws(["s3", "sync", written, local.path])
        #expect(down.status == 0, "\(down.stderr)")
        let verified = try CLI.run(["verify", name, "--dir", local.path, "--deep"])
        #expect(verified.status == 0 && verified.stdout.contains("intact"), "\(verified.stdout) \(verified.stderr)")

        // A local backup -> aws s3 sync -> S3, read and restored by supabackup.
        let folder = try TemporaryDirectory()
        let other = try CLI.run(["backup", "--db-url", source.url, "--out", folder.path]).lastLine
        let uploaded = try TestS3.location()
        let up = try aws(["s3", "sync", folder.path, uploaded])
        #expect(up.status == 0, "\(up.stderr)")
        let list = try CLI.run(["list", "--dir", uploaded], environment: env)
        #expect(list.stdout.contains(other), "\(list.stderr)")
        try source.execute("DELETE FROM public.t WHERE id > 10")
        let restore = try CLI.run(["restore", other, "--dir", uploaded, "--db-url", source.url], environment: env)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try source.scalar("SELECT count(*) FROM public.t") == "5000")
    }

    @Test("wrong secret, unknown key, missing bucket, no credentials, unreachable endpoint: one line each, no secret")
    func refusals() throws {
        let source = try TestDatabase("s3bad")
        try source.execute("CREATE TABLE public.t (id int PRIMARY KEY)")
        let secret = "wrong-secret-\(UUID().uuidString)"
        var cases: [(env: [String: String], location: String, expect: String)] = [
            (try TestS3.environment(secret: secret), try TestS3.location(), "SignatureDoesNotMatch"),
            (try TestS3.environment(), "s3://no-such-bucket-here/x", "NoSuchBucket"),
        ]
        var unknown = try TestS3.environment()
        unknown["AWS_ACCESS_KEY_ID"] = "AKIAUNKNOWNKEY000000"
        cases.append((unknown, try TestS3.location(), "InvalidAccessKeyId"))
        var none = try TestS3.environment()
        none["AWS_ACCESS_KEY_ID"] = ""
        none["AWS_SECRET_ACCESS_KEY"] = ""
        cases.append((none, try TestS3.location(), "no S3 credentials"))
        var unreachable = try TestS3.environment()
        unreachable["AWS_ENDPOINT_URL"] = "http://127.0.0.1:1"
        cases.append((unreachable, try TestS3.location(), "cannot reach the S3 endpoint"))
        for (env, location, expected) in cases {
            let backup = try CLI.run(["backup", "--db-url", source.url, "--out", location], environment: env)
            #expect(backup.status == 1 || backup.status == 64, "\(expected): \(backup.stderr)")
            let lines = backup.stderr.split(separator: "\n").filter { $0.contains("error") }
            #expect(lines.count == 1 && lines[0].contains(expected), "\(expected): \(backup.stderr)")
            #expect(!backup.stderr.contains(secret) && !backup.stdout.contains(secret))
            let list = try CLI.run(["list", "--dir", location], environment: env)
            #expect(list.status != 0 && list.stderr.contains(expected), "\(expected): \(list.stderr)")
        }
        // Nothing was written by the failed attempts: each prefix in the test bucket is still empty.
        #expect(
            try storage(try TestS3.location("")).list(prefix: "", recursive: false).allSatisfy {
                !$0.name.hasPrefix("no-such")
            })
        for (_, location, _) in cases where location.hasPrefix("s3://\(try TestS3.bucket())/") {
            #expect(try storage(location).list(prefix: "", recursive: true).isEmpty, "\(location)")
            #expect(try storage(location).uploads(under: "").isEmpty, "\(location)")
        }
    }

    @Test("prune keeps the policy's backups, deletes manifests first, and clears abandoned uploads")
    func prune() throws {
        let source = try TestDatabase("s3prune")
        try source.execute("CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t VALUES (1)")
        let location = try TestS3.location()
        let env = try TestS3.environment()
        var names: [String] = []
        for _ in 0..<3 {
            names.append(try CLI.run(["backup", "--db-url", source.url, "--out", location], environment: env).lastLine)
        }
        // An abandoned backup: a reservation and a multipart upload that nothing will finish.
        let store = try storage(location)
        let abandoned = try #require(try store.beginBackup(named: "2020-01-01T00-00-00-000Z") as? S3PendingBackup)
        let writer = try abandoned.create("data/big.ndjson.zst")
        try writer.write(Data(repeating: 7, count: S3ObjectWriter.defaultPart + 10))
        #expect(try store.uploads(under: "").count == 1)
        let pruned = try Pruner.prune(
            in: store, policy: RetentionPolicy(keepLast: 1), dryRun: false, now: Date().addingTimeInterval(7200))
        #expect(Set(pruned.removed) == Set(names.dropLast()))
        #expect(pruned.stalePartials.contains("2020-01-01T00-00-00-000Z/"))
        #expect(try store.uploads(under: "").isEmpty)
        let list = try CLI.run(["list", "--dir", location, "--json"], environment: env)
        #expect(list.stdout.contains(names[2]) && !list.stdout.contains(names[0]))
        #expect(try store.list(prefix: names[0] + "/", recursive: true).isEmpty)
        withExtendedLifetime(writer) {}
    }

    @Test("a damaged object in S3 is refused before the restore writes, exit 3")
    func damaged() throws {
        let source = try TestDatabase("s3damage")
        try source.execute(
            "CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t SELECT generate_series(1, 1000)")
        let location = try TestS3.location()
        let env = try TestS3.environment()
        let name = try CLI.run(["backup", "--db-url", source.url, "--out", location], environment: env).lastLine
        let store = try storage(location)
        let file = try #require(try store.list(prefix: name + "/data/", recursive: false).first).name
        var bytes = try store.read(file, limit: 1 << 20)
        bytes[bytes.count / 2] ^= 0xFF
        let pending = try #require(try store.beginBackup(named: "2020-01-01T00-00-00-000Z"))
        pending.discard()
        _ = try store.client.send(.PUT, key: try store.key(file), body: Array(bytes))
        #expect(try CLI.run(["verify", name, "--dir", location, "--read-data"], environment: env).status == 3)
        try source.execute("DELETE FROM public.t")
        let restore = try CLI.run(["restore", name, "--dir", location, "--db-url", source.url], environment: env)
        #expect(restore.status == 3, "\(restore.stderr)")
        #expect(try source.scalar("SELECT count(*) FROM public.t") == "0")
        // A fresh restore over several connections, which commits in parts, reads it all first:
        // not even the empty table is created.
        let fresh = try TestDatabase("s3damage_fresh")
        let parallel = try CLI.run(
            ["restore", name, "--dir", location, "--db-url", fresh.url, "--create-schema", "--jobs", "2"],
            environment: env)
        #expect(parallel.status == 3, "\(parallel.stderr)")
        #expect(try fresh.scalar("SELECT to_regclass('public.t') IS NULL") == "t")
    }
}
