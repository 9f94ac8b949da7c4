import Foundation
import SupabackupKit
import TestSupport
import Testing

/// Supabase Storage files through the CLI, against the Storage-API test server: round trips with
/// awkward names, incremental backups, the v1 listing's traps, faults, keys that cannot see.
@Suite("Supabase Storage files")
struct StorageTests {
    /// A Supabase project: platform and storage schemas, a table, and its Storage API.
    final class Project {
        let database: TestDatabase
        let server: PostgRESTTestServer

        init(_ label: String, options: StorageTestAPI.Options = .init(), serviceKey: String? = nil) throws {
            database = try TestDatabase(label)
            try database.run(sqlFile: "fixtures/supabase/platform.sql")
            try database.run(sqlFile: "fixtures/supabase/storage.sql")
            try database.execute(
                "CREATE TABLE public.documents (id int PRIMARY KEY, path text); INSERT INTO public.documents VALUES (1, 'docs/report.pdf')"
            )
            var serverOptions = PostgRESTTestServer.Options()
            serverOptions.storage = options
            if let serviceKey { serverOptions.serviceKey = serviceKey }
            server = try PostgRESTTestServer(databaseURL: database.url, options: serverOptions)
        }

        var env: [String: String] {
            ["SUPABASE_URL": server.url, "SUPABASE_SERVICE_ROLE_KEY": server.options.serviceKey]
        }
        func contents() throws -> [String: String] { try server.storageContents(database.connection) }
        func buckets() throws -> [String] { try server.storageBuckets(database.connection) }
    }

    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 6_364_136_223_846_793_005 &+ 1
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    /// Bucket `bucket` with `count` objects `prefix<i>` of `size + i` bytes.
    static func fillBucket(_ project: Project, _ bucket: String, count: Int, size: Int, prefix: String = "o") throws {
        try project.server.createBucket(bucket)
        for index in 0..<count {
            try project.server.upload(bucket, "\(prefix)\(index)", bytes(size + index, seed: UInt64(index)))
        }
    }

    /// `backup --with-storage` of `project` into `directory` (direct mode).
    static func backup(
        _ project: Project, into location: String, _ extra: [String] = [], environment: [String: String] = [:]
    )
        throws -> CLI.Result
    {
        try CLI.run(
            ["backup", "--db-url", project.database.url, "--with-storage", "--out", location] + extra,
            environment: project.env.merging(environment) { $1 })
    }

    /// Three buckets: public avatars, private docs with MIME and size limits, and a deep one
    /// with awkward names, case twins and objects from 0 bytes to more than two read ranges.
    static func fill(_ project: Project) throws {
        let server = project.server
        try server.createBucket("avatars", public: true)
        try server.createBucket("docs", fileSizeLimit: 30_000_000, allowedMimeTypes: ["application/pdf", "text/plain"])
        try server.createBucket("deep files")
        try server.upload(
            "avatars", "u1/me.png", bytes(5000, seed: 1), contentType: "image/png", cacheControl: "max-age=3600",
            userMetadata: #"{"owner":"u1","tags":["a","b"],"n":3}"#)
        try server.upload("avatars", ".emptyFolderPlaceholder", [], contentType: "application/octet-stream")
        try server.upload("docs", "report.pdf", bytes(20_000_017, seed: 2), contentType: "application/pdf")
        try server.upload("docs", "notes.txt", Array("hello\n".utf8), contentType: "text/plain")
        // Downloads serve text/html as text/plain; the type must come from the row's metadata.
        try server.upload("avatars", "index.html", Array("<p>hi</p>".utf8), contentType: "text/html; charset=utf-8")
        for (index, key) in [
            "a b/c d.txt", "x/y/z/deep+plus.bin", "Foo/a", "foo/a", "foo/b", "q?x=1;y=(2)&z=$@!,:'*.txt",
            "dir/with space/file",
        ].enumerated() {
            try server.upload("deep files", key, bytes(100 + index * 37, seed: UInt64(10 + index)))
        }
        // Names no write path accepts, made by SQL: they back up, and restore reports them.
        try server.insertObject("deep files", "unicode/café ☕.txt", Array("ü\n".utf8), on: project.database.connection)
        try server.insertObject("deep files", "50%#off.txt", Array("pct\n".utf8), on: project.database.connection)
    }

    @Test("three buckets with awkward names, 0 B to 20 MB and user metadata back up and restore into an empty project")
    func roundTrip() throws {
        let source = try Project("st_src")
        try Self.fill(source)
        try source.database.execute(
            #"CREATE POLICY "avatars are public" ON storage.objects FOR SELECT TO anon USING (bucket_id = 'avatars')"#)
        let directory = try TemporaryDirectory()
        let backup = try Self.backup(source, into: directory.path)
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(!backup.stderr.contains(source.server.options.serviceKey))
        let name = backup.lastLine
        let archive = try BackupArchive.open(name: name, in: directory.path)
        let section = try #require(archive.manifest.storage)
        #expect(section.snapshot == false && section.listing == "list-v2" && section.missing.isEmpty)
        #expect(section.objects.count == 14 && section.buckets.map(\.id) == ["avatars", "deep files", "docs"])
        #expect(section.objects.first { $0.name == "index.html" }?.contentType == "text/html; charset=utf-8")
        #expect(section.objects.contains { $0.name == "Foo/a" } && section.objects.contains { $0.name == "foo/a" })
        let docs = try #require(section.buckets.first { $0.id == "docs" })
        #expect(docs.fileSizeLimit == 30_000_000 && docs.allowedMimeTypes == ["application/pdf", "text/plain"])

        let verify = try CLI.run(["verify", name, "--dir", directory.path])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let cat = try CLI.run(["cat-object", name, "docs/notes.txt", "--dir", directory.path])
        #expect(cat.status == 0 && cat.stdout == "hello\n")
        let out = directory.file("report.pdf")
        let catFile = try CLI.run(["cat-object", name, "docs/report.pdf", "--dir", directory.path, "-o", out])
        #expect(catFile.status == 0, "\(catFile.stderr)")
        #expect(FileManager.default.contents(atPath: out).map(Array.init) == Self.bytes(20_000_017, seed: 2))
        let missing = try CLI.run(["cat-object", name, "docs/REPORT.pdf", "--dir", directory.path])
        #expect(missing.status == 64 && missing.stderr.contains("no Storage object"))

        // An empty project: the platform's schemas, no buckets, no app tables.
        let target = try Project("st_dst")
        try target.database.execute("DROP TABLE public.documents")
        let restore = try CLI.run(
            [
                "restore", name, "--db-url", target.database.url, "--with-storage", "--create-schema", "--dir",
                directory.path,
            ],
            environment: target.env)
        // The two names no API accepts are listed by name; everything else is restored.
        #expect(restore.status == ExitStatus.partial, "\(restore.stdout)\(restore.stderr)")
        #expect(restore.stderr.contains("not restored: deep files/unicode/café ☕.txt"))
        #expect(restore.stderr.contains("not restored: deep files/50%#off.txt"))
        #expect(try target.database.scalar("SELECT path FROM public.documents") == "docs/report.pdf")
        // The app's policy on storage.objects came back with --create-schema.
        #expect(
            try target.database.scalar(
                "SELECT qual FROM pg_policies WHERE schemaname = 'storage' AND policyname = 'avatars are public'")
                == "(bucket_id = 'avatars'::text)")
        var expected = try source.contents()
        expected.removeValue(forKey: "deep files/unicode/café ☕.txt")
        expected.removeValue(forKey: "deep files/50%#off.txt")
        #expect(try target.contents() == expected)
        #expect(try target.buckets() == source.buckets())

        // A rerun uploads nothing: every object is already there.
        target.server.storage.resetCounters()
        let again = try CLI.run(
            ["restore", name, "--db-url", target.database.url, "--with-storage", "--dir", directory.path],
            environment: target.env)
        #expect(again.status == ExitStatus.partial)
        #expect(again.stdout.contains("0 objects uploaded") && again.stdout.contains("12 already there"))
        #expect(target.server.storage.counters.uploads == 0)
    }

    @Test(
        "a second backup after changing 2 of 100 objects downloads 2; prune keeps shared bytes; the older backup still restores"
    )
    func incremental() throws {
        let source = try Project("st_inc")
        try Self.fillBucket(source, "media", count: 100, size: 2000, prefix: "f/")
        let directory = try TemporaryDirectory()
        let arguments = ["backup", "--db-url", source.database.url, "--with-storage", "--out", directory.path]
        let first = try CLI.run(arguments, environment: source.env)
        #expect(first.status == 0, "\(first.stderr)")
        let before = try source.contents()
        Thread.sleep(forTimeInterval: 1.1)  // last-modified has one-second precision
        try source.server.upload("media", "f/3", Self.bytes(50, seed: 99))
        try source.server.upload("media", "f/70", Self.bytes(60, seed: 98))
        source.server.storage.resetCounters()
        let second = try CLI.run(arguments + ["--json"], environment: source.env)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(source.server.storage.counters.downloads == 2)
        let report = try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any]
        let storage = report?["storage"] as? [String: Any]
        #expect(storage?["downloaded"] as? Int == 2 && storage?["reused"] as? Int == 98)
        let secondName = try #require(report?["name"] as? String)
        let secondArchive = try BackupArchive.open(name: secondName, in: directory.path)
        #expect(secondArchive.manifest.storage?.objects.filter { $0.reusedFrom == first.lastLine }.count == 98)
        // A hard link: one inode, two names.
        let shared = try #require(secondArchive.manifest.storage?.objects.first { $0.reusedFrom != nil })
        let links =
            try FileManager.default.attributesOfItem(atPath: directory.path + "/\(secondName)/\(shared.file)")[
                .referenceCount] as? Int
        #expect(links == 2)

        // Without --with-storage only the rows come back, and the user is told about the files.
        let rowsOnly = try Project("st_inc_rows")
        let plain = try CLI.run(["restore", first.lastLine, "--db-url", rowsOnly.database.url, "--dir", directory.path])
        #expect(
            plain.status == 0 && plain.stderr.contains("100 Storage objects; add --with-storage"), "\(plain.stderr)")
        #expect(try rowsOnly.contents().isEmpty)
        // The older backup restores completely (its own bytes, not the changed ones).
        let target = try Project("st_inc_dst")
        let restore = try CLI.run(
            ["restore", first.lastLine, "--db-url", target.database.url, "--with-storage", "--dir", directory.path],
            environment: target.env)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try target.contents() == before)

        // Pruning the first backup leaves the second whole.
        let prune = try CLI.run(["prune", "--dir", directory.path, "--keep-last", "1"])
        #expect(prune.status == 0, "\(prune.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/" + first.lastLine))
        let verify = try CLI.run(["verify", secondName, "--dir", directory.path])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let fresh = try Project("st_inc_dst2")
        let restoreSecond = try CLI.run(
            ["restore", secondName, "--db-url", fresh.database.url, "--with-storage", "--dir", directory.path],
            environment: fresh.env)
        #expect(restoreSecond.status == 0, "\(restoreSecond.stderr)")
        #expect(try fresh.contents() == source.contents())
    }

    @Test("without list-v2 (400 FeatureNotEnabled or 404) the v1 walk is used; a case twin it cannot name is reported")
    func listV1Fallback() throws {
        for mode in [StorageTestAPI.ListV2.featureNotEnabled, .notFound] {
            var options = StorageTestAPI.Options()
            options.listV2 = mode
            // A server older than list-v2 is older than info's JSON body too.
            options.infoHeadersOnly = mode == .notFound
            let source = try Project("st_v1", options: options)
            try source.server.createBucket("b")
            for index in 0..<1205 { try source.server.upload("b", "many/\(index)", [UInt8(index & 0xFF)]) }
            try source.server.upload("b", "Foo/a", [1])
            try source.server.upload("b", "foo/a", [2])
            try source.server.upload("b", "top.txt", [3])
            let directory = try TemporaryDirectory()
            let backup = try Self.backup(source, into: directory.path)
            #expect(backup.status == 0, "\(backup.stderr)")
            let section = try #require(
                try BackupArchive.open(name: backup.lastLine, in: directory.path).manifest.storage)
            #expect(section.listing == "list-v1")
            // 1205 pages past the 1000-entry page and the 1500 cap's reach. One twin is
            // unnameable; without info's ids (the older server) neither can be told apart.
            let unnamed = options.infoHeadersOnly ? 2 : 1
            #expect(section.objects.count == 1208 - unnamed, "\(section.objects.count)")
            #expect(section.missing.count == unnamed && section.missing.allSatisfy { $0.contains("case twin") })
            #expect(backup.stderr.contains("case twin"))
            #expect(section.objects.contains { $0.name == "top.txt" && $0.size == 1 })
            // Every key backed up is exact: its bytes are the object's under that key.
            if let twin = section.objects.first(where: { $0.name.lowercased() == "foo/a" }) {
                let cat = try CLI.run(["cat-object", backup.lastLine, "b/" + twin.name, "--dir", directory.path])
                #expect(Array(cat.stdout.utf8) == (twin.name == "Foo/a" ? [1] : [2]))
            }
        }
    }

    @Test("dropped downloads, 500s and lock timeouts are retried; an object deleted mid-backup is a warning")
    func faults() throws {
        var options = StorageTestAPI.Options()
        options.faults = [
            .init(route: "GET /object/authenticated/", every: 3, kind: .dropMidBody, limit: 6),
            .init(route: "GET /object/info/", every: 4, kind: .status500, limit: 4),
            .init(route: "POST /object/list-v2/", every: 1, kind: .lockTimeout, limit: 1),
            .init(route: "GET /object/authenticated/", every: 7, kind: .slow(0.3)),
        ]
        let source = try Project("st_fault", options: options)
        try Self.fillBucket(source, "b", count: 20, size: 10_000)
        try source.server.upload("b", "large", Self.bytes(17_000_000, seed: 7))
        try source.server.upload("b", "gone", [1, 2, 3])
        source.server.storage.vanishOnDownload("b", "gone")
        let directory = try TemporaryDirectory()
        let backup = try Self.backup(source, into: directory.path)
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(backup.stderr.contains("b/gone") && backup.stderr.contains("deleted"))
        let section = try #require(try BackupArchive.open(name: backup.lastLine, in: directory.path).manifest.storage)
        #expect(section.objects.count == 21 && section.missing.count == 1)
        #expect(source.server.storage.injectedFaults == [6, 4, 1, 3], "\(source.server.storage.injectedFaults)")

        // Uploads failing with 500 or cut off unanswered are retried.
        var targetOptions = StorageTestAPI.Options()
        targetOptions.faults = [
            // Limited, so that no upload can meet more faults in a row than it has attempts.
            .init(route: "POST /object/", every: 3, kind: .status500, limit: 5),
            .init(route: "POST /object/", every: 4, kind: .dropConnection, limit: 3),
        ]
        let target = try Project("st_fault_dst", options: targetOptions)
        let restore = try CLI.run(
            ["restore", backup.lastLine, "--db-url", target.database.url, "--with-storage", "--dir", directory.path],
            environment: target.env)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(target.server.storage.injectedFaults == [5, 3])
        var expected = try source.contents()
        expected.removeValue(forKey: "b/gone")
        #expect(try target.contents() == expected)
    }

    @Test(
        "a key that sees no buckets warns loudly; --bucket it cannot see, a missing project URL and a bad bearer fail in one line"
    )
    func keysAndConfiguration() throws {
        let source = try Project("st_keys")
        try source.server.createBucket("private")
        try source.server.upload("private", "secret.txt", [1])
        let directory = try TemporaryDirectory()
        let base = ["backup", "--db-url", source.database.url, "--with-storage", "--out", directory.path]
        var anon = source.env
        anon["SUPABASE_SERVICE_ROLE_KEY"] = source.server.options.anonKey
        let partial = try CLI.run(base, environment: anon)
        #expect(
            partial.status == 0 && partial.stderr.contains("lists no buckets")
                && partial.stderr.contains("service_role"))
        let named = try CLI.run(base + ["--bucket", "private"], environment: anon)
        #expect(named.status == 64 && named.stderr.contains("--bucket private"), "\(named.stderr)")
        // An anon JWT is refused before any request.
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9." + Data(#"{"role":"anon"}"#.utf8).base64EncodedString() + ".c2lnbmF0dXJl"
        var jwtEnv = source.env
        jwtEnv["SUPABASE_SERVICE_ROLE_KEY"] = jwt
        let refused = try CLI.run(base, environment: jwtEnv)
        #expect(refused.status == 64 && refused.stderr.contains("silently partial"))
        #expect(!refused.stderr.contains(jwt))
        let noURL = try CLI.run(base)
        #expect(noURL.status == 64 && noURL.stderr.contains("SUPABASE_URL"), "\(noURL.stderr)")
        #expect(noURL.stderr.split(separator: "\n").count == 1)
        let bucketWithout = try CLI.run([
            "backup", "--db-url", source.database.url, "--bucket", "x", "--out", directory.path,
        ])
        #expect(bucketWithout.status == 64)
        // Nothing was written by the failed runs, and the warned one holds no objects.
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { !$0.hasPrefix(".") }
        #expect(names.count == 1)
    }

    @Test("objects above the target's upload limit are listed with the reason; the rest and the rows are restored")
    func targetLimits() throws {
        let source = try Project("st_lim")
        try source.server.createBucket("b")
        try source.server.upload("b", "small", [1, 2, 3])
        try source.server.upload("b", "big", Self.bytes(3_000_000, seed: 3))
        let directory = try TemporaryDirectory()
        let backup = try Self.backup(source, into: directory.path)
        #expect(backup.status == 0, "\(backup.stderr)")
        var options = StorageTestAPI.Options()
        options.globalFileSizeLimit = 1_000_000  // a Free-plan-like limit
        let target = try Project("st_lim_dst", options: options)
        try target.database.execute("DELETE FROM public.documents")
        let restore = try CLI.run(
            [
                "restore", backup.lastLine, "--db-url", target.database.url, "--with-storage", "--dir", directory.path,
                "--json",
            ],
            environment: target.env)
        #expect(restore.status == ExitStatus.partial, "\(restore.stderr)")
        #expect(
            restore.stderr.contains("not restored: b/big") && restore.stderr.contains("more than the target accepts"))
        #expect(try target.contents().keys.sorted() == ["b/small"])
        #expect(try target.database.scalar("SELECT count(*) FROM public.documents") == "1")
    }

    @Test("encrypted: objects are age files, keyless verify checks them, restore needs the key")
    func encrypted() throws {
        let source = try Project("st_enc")
        try source.server.createBucket("b")
        try source.server.upload("b", "x/secret-name.txt", Array("top secret\n".utf8), contentType: "text/plain")
        let directory = try TemporaryDirectory()
        let identity = directory.file("key.txt")
        let keygen = try CLI.run(["keygen", "-o", identity])
        #expect(keygen.status == 0)
        let recipient = try CLI.run(["keygen", "-y", identity]).lastLine
        let backup = try CLI.run(
            [
                "backup", "--db-url", source.database.url, "--with-storage", "--out", directory.path, "--recipient",
                recipient,
            ],
            environment: source.env)
        #expect(backup.status == 0, "\(backup.stderr)")
        let folder = directory.path + "/" + backup.lastLine
        let stored = try FileManager.default.contentsOfDirectory(atPath: folder + "/storage")
        #expect(stored == ["000001.age"])
        let manifest = try String(contentsOfFile: folder + "/manifest.json", encoding: .utf8)
        #expect(manifest.contains("storage/000001.age") && !manifest.contains("secret-name"))
        #expect(try CLI.run(["verify", backup.lastLine, "--dir", directory.path, "--read-data"]).status == 0)
        // The next backup to the same key reuses the unchanged file by its tag, without a key;
        // one to another key downloads it again.
        source.server.storage.resetCounters()
        let again = try CLI.run(
            [
                "backup", "--db-url", source.database.url, "--with-storage", "--out", directory.path, "--recipient",
                recipient,
            ],
            environment: source.env)
        #expect(again.status == 0 && source.server.storage.counters.downloads == 0, "\(again.stderr)")
        #expect(again.stderr.contains("1 unchanged taken from the previous backup"))
        let otherKey = directory.file("other.txt")
        _ = try CLI.run(["keygen", "-o", otherKey])
        let otherRecipient = try CLI.run(["keygen", "-y", otherKey]).lastLine
        let third = try CLI.run(
            [
                "backup", "--db-url", source.database.url, "--with-storage", "--out", directory.path, "--recipient",
                otherRecipient,
            ],
            environment: source.env)
        #expect(third.status == 0 && source.server.storage.counters.downloads == 1, "\(third.stderr)")
        let target = try Project("st_enc_dst")
        let locked = try CLI.run(
            ["restore", backup.lastLine, "--db-url", target.database.url, "--with-storage", "--dir", directory.path],
            environment: target.env)
        #expect(try locked.status == 64 && target.contents().isEmpty)
        let restore = try CLI.run(
            [
                "restore", backup.lastLine, "--db-url", target.database.url, "--with-storage", "--dir", directory.path,
                "--identity", identity,
            ],
            environment: target.env)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try target.contents() == source.contents())
        // A flipped byte in an object's file: verify and restore refuse it, nothing uploaded.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: folder + "/storage/000001.age"))
        bytes[bytes.count - 5] ^= 1
        try bytes.write(to: URL(fileURLWithPath: folder + "/storage/000001.age"))
        #expect(try CLI.run(["verify", backup.lastLine, "--dir", directory.path, "--read-data"]).status == 3)
        let other = try Project("st_enc_dst2")
        let damaged = try CLI.run(
            [
                "restore", backup.lastLine, "--db-url", other.database.url, "--with-storage", "--dir", directory.path,
                "--identity", identity,
            ],
            environment: other.env)
        #expect(try damaged.status == 3 && other.contents().isEmpty && other.buckets().isEmpty)
    }

    @Test("REST mode: the same files over the project URL only")
    func restMode() throws {
        let source = try Project("st_rest")
        try Self.fill(source)
        let directory = try TemporaryDirectory()
        let backup = try CLI.run(
            [
                "backup", "--mode", "rest", "--with-storage", "--bucket", "avatars", "--bucket", "docs", "--out",
                directory.path,
            ],
            environment: source.env)
        #expect(backup.status == 0, "\(backup.stderr)")
        let section = try #require(try BackupArchive.open(name: backup.lastLine, in: directory.path).manifest.storage)
        #expect(section.buckets.map(\.id) == ["avatars", "docs"])
        // The new project hands out secret keys (sb_secret_...), sent as apikey and as the Bearer.
        let target = try Project("st_rest_dst", serviceKey: "sb_secret_restTarget0123")
        let restore = try CLI.run(
            [
                "restore", backup.lastLine, "--mode", "rest", "--with-storage", "--exclude-bucket", "docs", "--dir",
                directory.path,
            ],
            environment: target.env)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try target.contents() == source.contents().filter { $0.key.hasPrefix("avatars/") })
    }

    @Test("a restore that fails mid-upload changes no rows; the rerun uploads only what is missing")
    func restartable() throws {
        let source = try Project("st_restart")
        try Self.fillBucket(source, "b", count: 40, size: 3000)
        let directory = try TemporaryDirectory()
        let backup = try Self.backup(source, into: directory.path)
        #expect(backup.status == 0, "\(backup.stderr)")
        var options = StorageTestAPI.Options()
        options.faults = [.init(route: "POST /object/", every: 25, kind: .accessDenied, limit: 1)]
        let target = try Project("st_restart_dst", options: options)
        try target.database.execute("DELETE FROM public.documents")
        let arguments = [
            "restore", backup.lastLine, "--db-url", target.database.url, "--with-storage", "--dir", directory.path,
            "--jobs", "2",
        ]
        let failed = try CLI.run(arguments, environment: target.env)
        #expect(failed.status == 1 && failed.stderr.contains("jwt expired"), "\(failed.stderr)")
        #expect(failed.stderr.split(separator: "\n").filter { $0.contains("error") }.count == 1)
        #expect(try target.database.scalar("SELECT count(*) FROM public.documents") == "0")
        let first = target.server.storage.counters.uploads
        #expect(first >= 24 && first < 40)
        target.server.storage.resetCounters()
        let rerun = try CLI.run(arguments, environment: target.env)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(target.server.storage.counters.uploads == 40 - first)
        #expect(try target.contents() == source.contents())
        #expect(try target.database.scalar("SELECT count(*) FROM public.documents") == "1")
    }

    @Test("in object storage, unchanged objects are server-side copies of the previous backup's")
    func incrementalInS3() throws {
        let source = try Project("st_s3")
        try Self.fillBucket(source, "b", count: 10, size: 5000)
        let location = try TestS3.location()
        let env = try TestS3.environment().merging(source.env) { $1 }
        let arguments = ["backup", "--db-url", source.database.url, "--with-storage", "--out", location, "--json"]
        let first = try CLI.run(arguments, environment: env)
        #expect(first.status == 0, "\(first.stderr)")
        Thread.sleep(forTimeInterval: 1.1)
        try source.server.upload("b", "o4", [4])
        source.server.storage.resetCounters()
        let second = try CLI.run(arguments, environment: env)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(source.server.storage.counters.downloads == 1)
        let report = try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any]
        let name = try #require(report?["name"] as? String)
        #expect((report?["storage"] as? [String: Any])?["reused"] as? Int == 9)
        let verify = try CLI.run(["verify", name, "--dir", location, "--read-data"], environment: env)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let target = try Project("st_s3_dst")
        let restore = try CLI.run(
            ["restore", name, "--db-url", target.database.url, "--with-storage", "--dir", location],
            environment: try TestS3.environment().merging(target.env) { $1 })
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try target.contents() == source.contents())
    }

    @Test("the v1 listing before v1.34 (LIKE wildcards in prefixes, case twins listed twice) still gives exact keys")
    func legacyV1() throws {
        var options = StorageTestAPI.Options()
        options.listV2 = .notFound
        options.legacyV1 = true
        let source = try Project("st_v1old", options: options)
        try source.server.createBucket("b")
        for (key, byte) in [("a_b/x", 1), ("axb/y", 2), ("Foo/a", 3), ("foo/a", 4), ("1_0/z", 5), ("100/w", 6)] {
            try source.server.upload("b", key, [UInt8(byte)])
        }
        let directory = try TemporaryDirectory()
        let backup = try Self.backup(source, into: directory.path)
        #expect(backup.status == 0, "\(backup.stderr)")
        let archive = try BackupArchive.open(name: backup.lastLine, in: directory.path)
        let section = try #require(archive.manifest.storage)
        #expect(section.listing == "list-v1" && section.missing.isEmpty, "\(section.missing)")
        #expect(section.objects.map(\.name) == ["100/w", "1_0/z", "Foo/a", "a_b/x", "axb/y", "foo/a"])
        let target = try Project("st_v1old_dst")
        let restore = try CLI.run(
            ["restore", backup.lastLine, "--db-url", target.database.url, "--with-storage", "--dir", directory.path],
            environment: target.env)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try target.contents() == source.contents())
    }
}
