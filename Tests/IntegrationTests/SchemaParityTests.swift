import Foundation
import SupabackupKit
import TestSupport
import Testing

/// A fresh-project restore gives back the whole database: `pg_dump --schema-only` of the
/// restored database equals the source's, object by object, grants included.
@Suite("Schema parity with pg_dump")
struct SchemaParityTests {
    /// Roles the zoo fixture grants to (cluster-wide, so created once and left).
    static func zooRoles() throws {
        let admin = try TestServer.connect()
        defer { admin.close() }
        for role in ["zoo_reader", "zoo_writer"] {
            try admin.execute(
                "DO $$ BEGIN CREATE ROLE \(role); EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            )
        }
    }

    static func zoo() throws -> TestDatabase {
        try zooRoles()
        let source = try TestDatabase("zoo")
        try source.run(sqlFile: "fixtures/zoo.sql")
        return source
    }

    /// `supabackup backup` then `restore --create-schema` through the binary, as a user runs them.
    static func backupAndRestore(
        _ source: TestDatabase, into target: TestDatabase, backup flags: [String], restore restoreFlags: [String] = []
    ) throws -> (name: String, backup: CLI.Result, restore: CLI.Result) {
        let directory = try TemporaryDirectory()
        let backup = try CLI.run(["backup", "--db-url", source.url, "--out", directory.path] + flags)
        #expect(backup.status == 0, "\(backup.stderr)")
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: directory.path).first)
        let restore = try CLI.run(
            ["restore", name, "--dir", directory.path, "--db-url", target.url, "--create-schema"] + restoreFlags)
        #expect(restore.status == 0, "\(restore.stderr)")
        if restoreFlags.contains("--jobs") {
            #expect(restore.stderr.contains("connections=3"), "the parallel path did not run: \(restore.stderr)")
        }
        return (name, backup, restore)
    }

    @Test("the comparison is the oracle's: zero differences after pg_dump | pg_restore, and it sees a missing view")
    func comparisonIsProven() throws {
        let source = try Self.zoo()
        let target = try TestDatabase("zoo_pg_restore")
        let archive = try Tool.run(["pg_dump", "--format=custom", "--dbname", source.url])
        try Tool.run(["pg_restore", "--exit-on-error", "--dbname", target.url], input: archive)
        #expect(try SchemaParity.differences(source: source.url, target: target.url) == [])
        try target.execute("DROP VIEW zoo.very_heavy")
        try target.execute("GRANT INSERT ON zoo.keepers TO zoo_reader")
        let differences = try SchemaParity.differences(source: source.url, target: target.url)
        #expect(differences.contains("missing VIEW zoo.very_heavy"))
        #expect(differences.contains { $0.hasPrefix("different ACL zoo.TABLE keepers") })
    }

    @Test(
        "every kind of object comes back at pg_dump parity: 0 missing, 0 extra, 0 different (also over 3 connections)",
        arguments: [[], ["--jobs", "3", "--verbose"]])
    func zooParity(_ restoreFlags: [String]) throws {
        let source = try Self.zoo()
        let target = try TestDatabase("zoo_restored")
        let run = try Self.backupAndRestore(
            source, into: target, backup: ["--schema", "zoo", "--schema", "zoo_api"], restore: restoreFlags)
        #expect(!run.backup.stderr.contains("warning:"), "\(run.backup.stderr)")
        #expect(try SchemaParity.differences(source: source.url, target: target.url) == [])
        // The materialized view was refreshed after the rows; the one created WITH NO DATA was not.
        #expect(try target.scalar("SELECT n FROM zoo.diet_counts WHERE diet = 'herbivore'") == "2")
        #expect(
            try target.scalar("SELECT relispopulated FROM pg_class WHERE oid = 'zoo.popular_diets'::regclass") == "f")
        #expect(try target.digest("zoo.feedings") == source.digest("zoo.feedings"))
    }

    @Test("schema.sql is ordered by dependency: a view on a function returning a table's rows, a view on a view")
    func dependencyOrder() throws {
        let source = try Self.zoo()
        let directory = try TemporaryDirectory()
        let name = try backup(source, into: directory, schemas: ["zoo", "zoo_api"]).manifest.name
        let script = try #require(try BackupArchive.open(name: name, in: directory.path).schemaScript())
        func position(_ kind: String, _ name: String) throws -> Int {
            try #require(script.statements.firstIndex { $0.kind == kind && $0.name == name }, "\(kind) \(name)")
        }
        #expect(try position("table", "zoo.animals") < position("function", "zoo_api.animals_in(integer)"))
        #expect(
            try position("function", "zoo_api.animals_in(integer)")
                < position("view", "zoo_api.first_enclosure_animals"))
        #expect(try position("view", "zoo.heavy_animals") < position("view", "zoo.very_heavy"))
        #expect(try position("function", "zoo.is_valid_name(text)") < position("table", "zoo.keepers"))
        #expect(
            try position("materialized-view", "zoo.diet_counts") < position("materialized-view", "zoo.popular_diets"))
        #expect(try position("index", "zoo.diet_counts_diet") < position("refresh", "zoo.diet_counts"))
        #expect(try position("index", "zoo.feedings_animal") < position("index", "zoo.feedings_2024_animal_id_idx"))
        let sections = script.statements.map(\.section)
        let firstPostData = try #require(sections.firstIndex(of: .postData))
        #expect(sections[firstPostData...].allSatisfy { $0 == .postData })
    }

    @Test("a view on a table the backup leaves out is left out with a warning naming both")
    func dependentsOfExcludedTables() throws {
        let source = try Self.zoo()
        let directory = try TemporaryDirectory()
        let result = try backup(
            source, into: directory, schemas: ["zoo", "zoo_api"], exclude: ["zoo.keepers"])
        let script = try #require(try BackupArchive.open(name: result.manifest.name, in: directory.path).schemaScript())
        #expect(!script.statements.contains { $0.name == "zoo.keeper_names" })
        #expect(
            result.manifest.warnings.contains {
                $0.contains("view zoo.keeper_names") && $0.contains("zoo.keepers")
            }, "\(result.manifest.warnings)")
    }

    @Test(
        "a Supabase app restored into a fresh project is the same app: pg_dump parity and its own pgTAP suite (also over 3 connections)",
        arguments: [[], ["--jobs", "3", "--verbose"]])
    func supabaseApp(_ restoreFlags: [String]) throws {
        func project(_ label: String, app: Bool) throws -> TestDatabase {
            let database = try TestDatabase(label)
            for file in ["platform", "storage"] + (app ? ["saas"] : []) {
                try database.run(sqlFile: "fixtures/supabase/\(file).sql")
            }
            return database
        }
        let source = try project("saas", app: true)
        try source.execute(
            "INSERT INTO auth.users (id, email) VALUES ('33333333-3333-3333-3333-333333333333', 'early@example.com')")
        #expect(try pgTAP(on: source) == 30)
        let target = try project("saas_fresh", app: false)
        let run = try Self.backupAndRestore(
            source, into: target, backup: ["--schema", "public", "--schema", "saas", "--with-auth"],
            restore: ["--with-auth"] + restoreFlags)
        #expect(try SchemaParity.differences(source: source.url, target: target.url) == [])
        #expect(try pgTAP(on: target) == 30)
        #expect(try target.digest("saas.accounts") == source.digest("saas.accounts"))
        _ = run
    }

    @Test("restore --schema-only creates every object and no row; cat --schema prints schema.sql, also encrypted")
    func schemaOnlyAndPrint() throws {
        let source = try Self.zoo()
        let keys = try TemporaryDirectory()
        let identity = AgeIdentity.generate()
        let identityFile = keys.file("backup.key")
        #expect(
            FileManager.default.createFile(
                atPath: identityFile, contents: Data(identity.fileContents().utf8),
                attributes: [.posixPermissions: 0o600]))
        let directory = try TemporaryDirectory()
        let backup = try CLI.run(
            [
                "backup", "--db-url", source.url, "--out", directory.path, "--schema", "zoo", "--schema", "zoo_api",
                "--recipient", identity.recipient!.description, "--quiet",
            ])
        #expect(backup.status == 0, "\(backup.stderr)")
        let name = backup.lastLine

        let target = try TestDatabase("zoo_schema_only")
        let restore = try CLI.run(
            [
                "restore", name, "--dir", directory.path, "--db-url", target.url, "--schema-only", "--identity",
                identityFile,
            ])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(!restore.stderr.contains("left out"), "\(restore.stderr)")
        #expect(try SchemaParity.differences(source: source.url, target: target.url) == [])
        #expect(try target.scalar("SELECT count(*) FROM zoo.animals") == "0")
        #expect(try target.scalar("SELECT relispopulated FROM pg_class WHERE oid = 'zoo.diet_counts'::regclass") == "f")

        // The printed script is what psql applies, into a database of its own, to the same schema.
        let printed = try CLI.run(["cat", name, "--schema", "--dir", directory.path, "--identity", identityFile])
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(printed.stdout.contains("CREATE VIEW zoo.very_heavy"))
        let applied = try TestDatabase("zoo_psql")
        try Tool.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", applied.url], input: Array(printed.stdout.utf8))
        #expect(try SchemaParity.differences(source: target.url, target: applied.url) == [])

        let locked = try CLI.run(["cat", name, "--schema", "--dir", directory.path])
        #expect(locked.status != 0 && locked.stdout.isEmpty, "\(locked.stdout)")
        let neither = try CLI.run(["cat", name, "--dir", directory.path])
        #expect(neither.status == 64 && neither.stderr.contains("--schema"), "\(neither.stderr)")
    }

    @Test("a name the target gives to something else fails the restore in one line, and the target is unchanged")
    func nameTakenBySomethingElse() throws {
        let source = try Self.zoo()
        let directory = try TemporaryDirectory()
        let name = try backup(source, into: directory, schemas: ["zoo", "zoo_api"]).manifest.name
        let target = try TestDatabase("zoo_taken")
        try target.execute("CREATE SCHEMA zoo; CREATE TABLE zoo.heavy_animals (id int)")
        let before = try SchemaParity.objects(url: target.url)
        let result = try CLI.run(["restore", name, "--dir", directory.path, "--db-url", target.url, "--create-schema"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("view zoo.heavy_animals") && result.stderr.contains("a table of that name"))
        #expect(result.stderr.split(separator: "\n").filter { $0.hasPrefix("supabackup: error") }.count == 1)
        #expect(try SchemaParity.objects(url: target.url) == before)
    }

    /// Runs saas.sql's own pgTAP suite; returns how many tests passed, failing on any that did not.
    func pgTAP(on database: TestDatabase) throws -> Int {
        let path = Repository.sqlDirectory + "/fixtures/supabase/saas-tests.sql"
        let output = String(
            decoding: try Tool.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", path, database.url]),
            as: UTF8.self)
        let failures = output.split(separator: "\n").filter { $0.hasPrefix("not ok") || $0.hasPrefix("# Failed") }
        #expect(failures.isEmpty, "\(output)")
        return output.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count
    }
}
