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

    @Test("every kind of object comes back at pg_dump parity: 0 missing, 0 extra, 0 different")
    func zooParity() throws {
        let source = try Self.zoo()
        let target = try TestDatabase("zoo_restored")
        let run = try Self.backupAndRestore(source, into: target, backup: ["--schema", "zoo", "--schema", "zoo_api"])
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

    @Test("a Supabase app restored into a fresh project is the same app: pg_dump parity and its own pgTAP suite")
    func supabaseApp() throws {
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
            restore: ["--with-auth"])
        #expect(try SchemaParity.differences(source: source.url, target: target.url) == [])
        #expect(try pgTAP(on: target) == 30)
        #expect(try target.digest("saas.accounts") == source.digest("saas.accounts"))
        _ = run
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
