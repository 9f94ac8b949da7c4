import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

/// Encrypted archives (age) through the command line, in a local folder and in object storage,
/// opened by supabackup and by `age` itself.
@Suite("Encryption")
struct EncryptionTests {
    /// A key pair: the identity file (mode 0600) and the public key.
    struct Keys {
        let directory: TemporaryDirectory
        let identityFile: String
        let recipient: String
        let secret: String

        init() throws {
            directory = try TemporaryDirectory()
            let identity = AgeIdentity.generate()
            identityFile = directory.file("backup.key")
            _ = FileManager.default.createFile(
                atPath: identityFile, contents: Data(identity.fileContents().utf8),
                attributes: [.posixPermissions: 0o600])
            recipient = identity.recipient!.description
            secret = identity.secretString!
        }
    }

    enum Location: String, CaseIterable, CustomTestStringConvertible {
        case local, s3
        var testDescription: String { rawValue }

        func make() throws -> (location: String, environment: [String: String], keep: TemporaryDirectory?) {
            switch self {
            case .local:
                let directory = try TemporaryDirectory()
                return (directory.file("backups"), [:], directory)
            case .s3:
                return (try TestS3.location(), try TestS3.environment(), nil)
            }
        }
    }

    private func storage(_ location: String, _ environment: [String: String]) throws -> any BackupStorage {
        location.hasPrefix("s3://")
            ? S3Storage(configuration: try S3Configuration.resolve(location, environment: try TestS3.environment()))
            : LocalStorage(root: location)
    }

    @Test(
        "backup to a public key; list, verify and prune without the key; cat, verify and restore with it",
        arguments: Location.allCases)
    func roundTrip(_ kind: Location) throws {
        let (source, target) = try sourceAndTarget(
            "enc_\(kind.rawValue)", schema: "sample/schema.sql", data: "sample/data.sql")
        let fresh = try TestDatabase("enc_fresh_\(kind.rawValue)")
        let keys = try Keys()
        let (location, env, _keep) = try kind.make()
        _ = _keep
        // Block ranges too: part files are joined into one age file per table.
        let backup = try CLI.run(
            [
                "backup", "--db-url", source.url, "--out", location, "--recipient", keys.recipient, "--jobs", "3",
                "--split-tables-larger-than", "64kB",
            ], environment: env)
        #expect(backup.status == 0, "\(backup.stderr)")
        let name = backup.lastLine
        #expect(backup.stderr.contains("encrypted to 1 recipient"))

        // What is stored: numbered age files; no table name, column or row in readable form.
        let store = try storage(location, env)
        let objects = try store.list(prefix: name + "/", recursive: true).map {
            String($0.name.dropFirst(name.count + 1))
        }
        #expect(
            objects.contains("manifest.json") && objects.contains("manifest.age") && objects.contains("schema.sql.age"))
        #expect(
            objects.filter { $0.hasPrefix("data/") }.allSatisfy {
                $0.range(of: #"^data/\d{4}\.ndjson\.zst\.age$"#, options: .regularExpression) != nil
            })
        let readable = String(decoding: try store.read(name + "/manifest.json", limit: 1 << 20), as: UTF8.self)
        for secretWord in ["users", "projects", "email", "rows", "sequences", "127.0.0.1", "postgres"] {
            #expect(!readable.contains(secretWord), "manifest.json gives away '\(secretWord)'")
        }
        for object in objects where object != "manifest.json" {
            let head = try store.read(name + "/" + object, limit: 64 << 20).prefix(22)
            #expect(String(decoding: head, as: UTF8.self) == "age-encryption.org/v1\n", "\(object)")
        }

        let list = try CLI.run(["list", "--dir", location], environment: env)
        #expect(list.status == 0 && list.stdout.contains(name) && list.stdout.contains("encrypted"), "\(list.stderr)")
        let keyless = try CLI.run(["verify", name, "--dir", location, "--read-data"], environment: env)
        #expect(keyless.status == 0 && keyless.stdout.contains("intact"), "\(keyless.stderr)")
        let verify = try CLI.run(
            ["verify", name, "--dir", location, "--deep", "--identity", keys.identityFile], environment: env)
        #expect(verify.status == 0 && verify.stdout.contains("12655 rows"), "\(verify.stderr)")

        let cat = try CLI.run(
            ["cat", name, "public.users", "--dir", location, "--identity", keys.identityFile], environment: env)
        #expect(cat.status == 0 && cat.stdout.split(separator: "\n").count == 200, "\(cat.stderr)")

        // Into empty tables, and into an empty database from the encrypted schema.sql.
        let restore = try CLI.run(
            ["restore", name, "--dir", location, "--db-url", target.url],
            environment: env.merging(["SUPABACKUP_IDENTITY_FILE": keys.identityFile]) { $1 })
        #expect(restore.status == 0, "\(restore.stderr)")
        let created = try CLI.run(
            [
                "restore", name, "--dir", location, "--db-url", fresh.url, "--create-schema", "--identity",
                keys.identityFile,
            ], environment: env)
        #expect(created.status == 0, "\(created.stderr)")
        for table in ["public.users", "public.projects", "public.slides", "public.analytics_events"] {
            #expect(try target.digest(table) == source.digest(table))
            #expect(try fresh.digest(table) == source.digest(table))
        }
        for result in [backup, list, keyless, verify, cat, restore, created] {
            #expect(!result.stderr.contains(keys.secret) && !result.stdout.contains(keys.secret))
        }

        // prune treats encrypted backups like any other.
        let prune = try CLI.run(["prune", "--dir", location, "--keep-last", "1", "--dry-run"], environment: env)
        #expect(prune.status == 0 && prune.stdout.contains(name), "\(prune.stdout)\(prune.stderr)")
    }

    @Test("REST mode: an encrypted backup over PostgREST restores over PostgREST")
    func restMode() throws {
        let database = try CommandLineRESTTests.database()
        let server = try PostgRESTTestServer(databaseURL: database.url)
        let keys = try Keys()
        let directory = try TemporaryDirectory()
        let env = [
            "SUPABASE_URL": server.url, "SUPABASE_SERVICE_ROLE_KEY": server.options.serviceKey,
            "SUPABACKUP_RECIPIENTS": keys.recipient,
        ]
        let backup = try CLI.run(["backup", "--out", directory.path], environment: env)
        #expect(backup.status == 0 && backup.stderr.contains("encrypted to 1 recipient"), "\(backup.stderr)")
        try database.execute("UPDATE public.items SET name = 'changed'; DELETE FROM public.items WHERE id > 40")
        let refused = try CLI.run(
            ["restore", backup.lastLine, "--dir", directory.path, "--rest-url", server.url], environment: env)
        #expect(refused.status == 64, "\(refused.stderr)")
        #expect(try database.scalar("SELECT count(*) FROM public.items") == "40")
        let restore = try CLI.run(
            [
                "restore", backup.lastLine, "--dir", directory.path, "--rest-url", server.url, "--identity",
                keys.identityFile,
            ],
            environment: env)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try database.scalar("SELECT count(*) FROM public.items WHERE name = 'n' || id") == "50")
    }

    @Test("age -d and zstd -d open every file without supabackup")
    func ageOpensTheArchive() throws {
        let source = try TestDatabase("enc_age")
        try source.execute(
            "CREATE TABLE public.t (id int PRIMARY KEY, note text); INSERT INTO public.t SELECT i, repeat('n', i % 50) FROM generate_series(1, 20000) i"
        )
        let keys = try Keys()
        let directory = try TemporaryDirectory()
        let backup = try CLI.run([
            "backup", "--db-url", source.url, "--out", directory.path, "--recipient", keys.recipient,
        ])
        #expect(backup.status == 0, "\(backup.stderr)")
        let folder = directory.file(backup.lastLine)
        let manifest = try Tool.run(["age", "-d", "-i", keys.identityFile, folder + "/manifest.age"])
        let full = try Manifest.decode(Data(manifest))
        let table = try #require(full.table(TableName(schema: "public", name: "t")))
        let sealed = try Tool.run(["age", "-d", "-i", keys.identityFile, folder + "/" + table.file])
        let lines = try Tool.run(["zstd", "-d", "-c"], input: sealed)
        let cat = try CLI.run(["cat", backup.lastLine, "t", "--dir", directory.path, "--identity", keys.identityFile])
        #expect(lines == Array(cat.stdout.utf8))
        #expect(lines.split(separator: 0x0A).count == 20000)
        let schema = try Tool.run(["age", "-d", "-i", keys.identityFile, folder + "/schema.sql.age"])
        #expect(String(decoding: schema, as: UTF8.self).contains("CREATE TABLE public.t"))
    }

    @Test("no identity, a wrong one, or a recipient that is not a key: one line, the right exit code, nothing written")
    func refusals() throws {
        let (source, target) = try sourceAndTarget("enc_refuse", schema: "sample/schema.sql", data: "sample/data.sql")
        let keys = try Keys()
        let other = try Keys()
        let directory = try TemporaryDirectory()
        let name = try CLI.run([
            "backup", "--db-url", source.url, "--out", directory.path, "--recipient", keys.recipient,
        ]).lastLine

        // No key: a usage error (64); a key that does not open it: its own code (4).
        for (arguments, fragment, status) in [
            ([String](), "is encrypted: give the identity file", Int32(64)),
            (["--identity", other.identityFile], "no identity given opens it", Int32(4)),
        ] {
            let restore = try CLI.run(["restore", name, "--dir", directory.path, "--db-url", target.url] + arguments)
            #expect(restore.status == status, "\(restore.stderr)")
            #expect(
                restore.stderr.contains(fragment) && restore.stderr.split(separator: "\n").count == 1,
                "\(restore.stderr)")
            let cat = try CLI.run(["cat", name, "users", "--dir", directory.path] + arguments)
            #expect(cat.status == status && cat.stdout.isEmpty)
        }
        #expect(try target.scalar("SELECT count(*) FROM public.users") == "0")
        let deep = try CLI.run(["verify", name, "--dir", directory.path, "--deep"])
        #expect(deep.status == 64 && deep.stderr.contains("--identity"))

        let empty = try TemporaryDirectory()
        for bad in ["age1notakey", other.secret, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"] {
            let refused = try CLI.run(["backup", "--db-url", source.url, "--out", empty.path, "--recipient", bad])
            #expect(refused.status == 64, "\(refused.stderr)")
            #expect(refused.stderr.split(separator: "\n").count == 1 && !refused.stderr.contains(other.secret))
        }
        let nonsense = empty.file("recipients.txt")
        try "# team\n\(keys.recipient)\nnot-a-key\n".write(toFile: nonsense, atomically: true, encoding: .utf8)
        let file = try CLI.run(["backup", "--db-url", source.url, "--out", empty.path, "--recipients-file", nonsense])
        #expect(file.status == 64 && file.stderr.contains("line 3"), "\(file.stderr)")
        // A recipients file with no key is refused even beside one that has keys.
        let good = empty.file("team.txt")
        let blank = empty.file("blank.txt")
        try "\(keys.recipient)\n".write(toFile: good, atomically: true, encoding: .utf8)
        try "# nobody yet\n".write(toFile: blank, atomically: true, encoding: .utf8)
        let none = try CLI.run(
            [
                "backup", "--db-url", source.url, "--out", empty.path, "--recipients-file", good, "--recipients-file",
                blank,
            ])
        #expect(none.status == 64 && none.stderr.contains("blank.txt holds no age public key"), "\(none.stderr)")
        let listed = try FileManager.default.contentsOfDirectory(atPath: empty.path).filter { !$0.hasSuffix(".txt") }
        #expect(listed.isEmpty, "\(listed)")
    }

    @Test("damage: a flipped bit, a truncated file, a data file swapped in from another backup to the same key")
    func damage() throws {
        let (source, target) = try sourceAndTarget("enc_damage", schema: "sample/schema.sql", data: "sample/data.sql")
        let keys = try Keys()
        let directory = try TemporaryDirectory()
        func makeBackup() throws -> String {
            let result = try CLI.run([
                "backup", "--db-url", source.url, "--out", directory.path, "--recipient", keys.recipient,
            ])
            #expect(result.status == 0, "\(result.stderr)")
            return result.lastLine
        }
        let first = try makeBackup()
        try source.execute(
            "UPDATE public.users SET email = 'changed-' || email WHERE id IN (SELECT id FROM public.users LIMIT 3)")
        let second = try makeBackup()
        let full = try BackupArchive.open(
            name: first, in: directory.path,
            identities: try AgeIdentity.parseFile(
                Array(try Data(contentsOf: URL(fileURLWithPath: keys.identityFile))), source: "key", passphrase: { "" })
        )
        let users = try #require(full.manifest.table(TableName(schema: "public", name: "users")))

        func damaged(_ name: String, _ change: (String) throws -> Void, _ label: Comment) throws {
            let copy = name
            let path = directory.file(copy + "/" + users.file)
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            defer { try? original.write(to: URL(fileURLWithPath: path)) }
            try change(path)
            let verify = try CLI.run(["verify", copy, "--dir", directory.path])
            #expect(verify.status == 3 && verify.stderr.contains(users.file), label)
            let keyed = try CLI.run(["verify", copy, "--dir", directory.path, "--identity", keys.identityFile])
            #expect(keyed.status == 3, label)
            let restore = try CLI.run([
                "restore", copy, "--dir", directory.path, "--db-url", target.url, "--identity", keys.identityFile,
            ])
            #expect(
                restore.status == 3 && restore.stderr.split(separator: "\n").count == 1, "\(label): \(restore.stderr)")
            #expect(try target.scalar("SELECT count(*) FROM public.users") == "0", label)
        }
        try damaged(
            first,
            { path in
                var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                bytes[bytes.count / 2] ^= 0x04
                try bytes.write(to: URL(fileURLWithPath: path))
            }, "a flipped bit")
        try damaged(
            first,
            { path in
                let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                try bytes.prefix(bytes.count - 20).write(to: URL(fileURLWithPath: path))
            }, "truncated")
        try damaged(
            first,
            { path in
                let other = directory.file(second + "/" + users.file)
                try Data(contentsOf: URL(fileURLWithPath: other)).write(to: URL(fileURLWithPath: path))
            }, "the same table's file from the next backup, encrypted to the same key")
        // Both backups intact again once the files are back.
        #expect(try CLI.run(["verify", first, "--dir", directory.path, "--identity", keys.identityFile]).status == 0)

        // manifest.json's checksums rewritten to match a swapped file: manifest.age still disagrees.
        let swappedIn = try Data(contentsOf: URL(fileURLWithPath: directory.file(second + "/" + users.file)))
        let manifestPath = directory.file(first + "/manifest.json")
        var sealed =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
            as! [String: Any]
        sealed["files"] = (sealed["files"] as! [[String: Any]]).map { entry in
            guard entry["file"] as? String == users.file else { return entry }
            return ["file": users.file, "bytes": swappedIn.count, "sha256": (try? sha256(swappedIn)) ?? ""]
        }
        try JSONSerialization.data(withJSONObject: sealed).write(to: URL(fileURLWithPath: manifestPath))
        try swappedIn.write(to: URL(fileURLWithPath: directory.file(first + "/" + users.file)))
        let restore = try CLI.run([
            "restore", first, "--dir", directory.path, "--db-url", target.url, "--identity", keys.identityFile,
        ])
        #expect(
            restore.status == 3 && restore.stderr.contains("manifest.age") && restore.stderr.contains("swapped"),
            "\(restore.stderr)")
    }

    @Test("keys from the environment and files: SUPABACKUP_RECIPIENTS, keygen, a passphrase-protected identity file")
    func keyHandling() throws {
        let source = try TestDatabase("enc_keys")
        try source.execute(
            "CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t SELECT generate_series(1, 10)")
        let work = try TemporaryDirectory()
        // keygen writes a 0600 identity file age-keygen -y agrees with, and refuses to overwrite it.
        let keygen = try CLI.run(["keygen", "-o", work.file("k.key")])
        #expect(keygen.status == 0 && keygen.stderr.hasPrefix("Public key: age1"), "\(keygen.stderr)")
        let recipient = String(keygen.stderr.dropFirst("Public key: ".count)).trimmingCharacters(
            in: .whitespacesAndNewlines)
        let mode = try FileManager.default.attributesOfItem(atPath: work.file("k.key"))[.posixPermissions] as! Int
        #expect(mode == 0o600)
        #expect(
            String(decoding: try Tool.run(["age-keygen", "-y", work.file("k.key")]), as: UTF8.self) == recipient + "\n")
        #expect(try CLI.run(["keygen", "-y", work.file("k.key")]).stdout == recipient + "\n")
        #expect(try CLI.run(["keygen", "-o", work.file("k.key")]).status == 64)
        let escrow = try Keys()

        // Two recipients from the environment; a relative one-letter backups folder.
        let backup = try CLI.run(
            ["backup", "--db-url", source.url, "--out", "b"],
            environment: ["SUPABACKUP_RECIPIENTS": "\(recipient) \(escrow.recipient)"], directory: work.path)
        #expect(backup.status == 0 && backup.stderr.contains("encrypted to 2 recipients"), "\(backup.stderr)")
        let name = backup.lastLine
        for key in [work.file("k.key"), escrow.identityFile] {
            let cat = try CLI.run(["cat", name, "t", "--dir", work.file("b"), "--identity", key])
            #expect(cat.status == 0 && cat.stdout.split(separator: "\n").count == 10, "\(cat.stderr)")
        }

        // The identity file encrypted with a passphrase (pyrage; age -p needs a terminal).
        let script =
            "import sys, pyrage; sys.stdout.buffer.write(pyrage.passphrase.encrypt(sys.stdin.buffer.read(), 'tr0ub4dor'))"
        let protected = try Tool.run(
            ["python3", "-c", script], input: Array(try Data(contentsOf: URL(fileURLWithPath: work.file("k.key")))))
        try Data(protected).write(to: URL(fileURLWithPath: work.file("k.key.age")))
        try "tr0ub4dor\n".write(toFile: work.file("pass"), atomically: true, encoding: .utf8)
        let opened = try CLI.run(
            ["cat", name, "t", "--dir", work.file("b"), "--identity", work.file("k.key.age")],
            environment: ["SUPABACKUP_PASSPHRASE_FILE": work.file("pass")])
        #expect(opened.status == 0 && opened.stdout.split(separator: "\n").count == 10, "\(opened.stderr)")
        let noTerminal = try CLI.run(["cat", name, "t", "--dir", work.file("b"), "--identity", work.file("k.key.age")])
        #expect(
            noTerminal.status == 64 && noTerminal.stderr.contains("SUPABACKUP_PASSPHRASE_FILE"), "\(noTerminal.stderr)")
        try "wrong\n".write(toFile: work.file("pass"), atomically: true, encoding: .utf8)
        let wrong = try CLI.run(
            ["cat", name, "t", "--dir", work.file("b"), "--identity", work.file("k.key.age")],
            environment: ["SUPABACKUP_PASSPHRASE_FILE": work.file("pass")])
        #expect(wrong.status == 64 && wrong.stderr.contains("passphrase does not open"), "\(wrong.stderr)")
    }

    private func sha256(_ data: Data) throws -> String {
        let reader = HashingReader(MemoryReader(Array(data)))
        try reader.forEachChunk { _ in }
        return reader.sha256
    }
}
