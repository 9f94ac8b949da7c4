import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

/// PostgREST lists an auto-updatable view exactly like a table (with `post` and a key inferred
/// from its base table); its rows are the base table's and must be neither stored as a table nor
/// written twice.
@Suite("Updatable views over REST")
struct RESTViewTests {
    static let schema = """
        CREATE TABLE public.users (id int PRIMARY KEY, email text NOT NULL, active boolean NOT NULL DEFAULT true);
        CREATE VIEW public.vw_active_users AS SELECT id, email FROM public.users WHERE active;
        CREATE VIEW public.user_count AS SELECT count(*) AS n FROM public.users;
        """
    static let rows =
        "INSERT INTO public.users SELECT i, 'u' || i || '@example.com', i % 3 <> 0 FROM generate_series(1, 30) i"

    static func database(_ label: String, data: Bool = true) throws -> TestDatabase {
        let database = try TestDatabase(label)
        try database.execute(schema)
        if data { try database.execute(rows) }
        return database
    }

    @Test("the test server lists the auto-updatable view as insertable with its base table's key, like PostgREST")
    func listedLikeATable() throws {
        let source = try Self.database("rv_list")
        let server = try PostgRESTTestServer(databaseURL: source.url)
        let client = PostgRESTClient(
            settings: try PostgRESTClient.resolve(try restSettings(server), logger: silentLogger), logger: silentLogger)
        defer { client.shutdown() }
        let document = try OpenAPISchema(
            document: client.get("", headers: [("Accept", "application/openapi+json")]).body)
        let view = try #require(document.tables.first { $0.name == "vw_active_users" })
        #expect(view.insertable && view.primaryKey == ["id"])
        #expect(document.tables.first { $0.name == "user_count" }?.insertable == false)
        #expect(try client.isView(TableName(schema: "public", name: "vw_active_users")))
        #expect(try !client.isView(TableName(schema: "public", name: "users")))
    }

    @Test("a REST backup leaves updatable views out, says so, and restores directly and over REST with default flags")
    func backupSkipsViews() throws {
        let source = try Self.database("rv_src")
        let server = try PostgRESTTestServer(databaseURL: source.url)
        let directory = try TemporaryDirectory()
        let archive = try restBackup(server, into: directory)
        #expect(archive.manifest.tables.map(\.name) == ["users"])
        #expect(archive.manifest.warnings.contains { $0.contains("public.vw_active_users is a view") })

        let target = try Self.database("rv_dst", data: false)
        try restore(archive.name, from: directory, into: target)
        #expect(try target.digest("public.users") == source.digest("public.users"))

        let restTarget = try Self.database("rv_rdst", data: false)
        let restServer = try PostgRESTTestServer(databaseURL: restTarget.url)
        try restRestore(archive.name, from: directory, into: restServer)
        #expect(try restTarget.digest("public.users") == source.digest("public.users"))
    }

    @Test("an archive holding a view's rows as a table restores into a target where it is a view: skipped and named")
    func restoreSkipsViews() throws {
        // Older REST backups stored the view like a table; here the source has a table of that name.
        let source = try TestDatabase("rv_old_src")
        try source.execute(
            """
            CREATE TABLE public.users (id int PRIMARY KEY, email text NOT NULL, active boolean NOT NULL DEFAULT true);
            CREATE TABLE public.vw_active_users (id int PRIMARY KEY, email text NOT NULL);
            \(Self.rows);
            INSERT INTO public.vw_active_users SELECT id, email FROM public.users WHERE active;
            """)
        let sourceServer = try PostgRESTTestServer(databaseURL: source.url)
        let directory = try TemporaryDirectory()
        let archive = try restBackup(sourceServer, into: directory)
        #expect(Set(archive.manifest.tables.map(\.name)) == ["users", "vw_active_users"])

        let target = try Self.database("rv_old_dst", data: false)
        let direct = try restore(archive.name, from: directory, into: target)
        #expect(direct.plan.warnings.contains { $0.contains("vw_active_users: skipped, it is a view") })
        #expect(direct.tables.map(\.table.name) == ["users"])
        #expect(try target.scalar("SELECT count(*) FROM public.users") == "30")

        let restTarget = try Self.database("rv_old_rdst", data: false)
        let server = try PostgRESTTestServer(databaseURL: restTarget.url)
        let rest = try restRestore(archive.name, from: directory, into: server)
        #expect(rest.plan.warnings.contains { $0.contains("vw_active_users: skipped, it is a view") })
        #expect(rest.tables.map(\.table.name) == ["users"])
        #expect(try restTarget.digest("public.users") == source.digest("public.users"))
    }
}
