import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

/// Real TCP connections cut at every point a network cuts them (before the response, inside the
/// headers, after them, mid-body, after a few bytes, a body without framing), against every HTTP
/// client: PostgREST, Auth, the Storage API and S3. Each suite fails if a planned cut was never
/// injected.
@Suite("Connections cut mid-response")
struct ConnectionFaultTests {
    /// A Supabase project with rows, auth users and Storage files behind the test gateway.
    static func project(_ label: String) throws -> (TestDatabase, PostgRESTTestServer) {
        let database = try SupabaseProjectTests.project(label)
        try database.run(sqlFile: "fixtures/supabase/storage.sql")
        try database.run(sqlFile: "fixtures/types.sql")
        try database.execute("INSERT INTO public.notes (owner, body) SELECT owner, body || ' again' FROM public.notes")
        let server = try PostgRESTTestServer(databaseURL: database.url)
        try server.createBucket("docs")
        for index in 0..<12 {
            try server.upload("docs", "file \(index).bin", StorageTests.bytes(1000 + index * 5000, seed: UInt64(index)))
        }
        return (database, server)
    }

    static func settings(_ url: String, _ server: PostgRESTTestServer) throws -> RESTSettings {
        var settings = try RESTSettings(url: url, key: try APIKey(server.options.serviceKey))
        settings.pageSize = 25
        settings.retry = RetryPolicy(attempts: 8, baseDelay: 0.005, maxDelay: 0.02)
        return settings
    }

    static func restBackup(_ settings: RESTSettings, into directory: TemporaryDirectory) throws -> BackupResult {
        var options = BackupOptions(transport: .rest(settings), outputDirectory: directory.path)
        options.withAuth = true
        options.storage = StorageSelection(settings: settings)
        return try BackupEngine(options: options, logger: silentLogger).run()
    }

    @Test("a REST backup (rows, auth users, Storage files) completes, equal to an undisturbed one, under every cut")
    func restBackup() throws {
        let (database, server) = try Self.project("cut_rest")
        defer { withExtendedLifetime(database) {} }
        let directory = try TemporaryDirectory()
        let clean = try Self.restBackup(try Self.settings(server.url, server), into: directory)

        // PostgREST every third response, Auth (two pages) every one until its cuts are used up,
        // the Storage API every second; each route gets every kind of cut.
        let proxy = try FaultProxy(
            upstreamPort: Int(URL(string: server.url)!.port!),
            routes: [
                .init(pathPrefix: "/rest/v1", every: 3, cuts: FaultProxy.Cut.all),
                .init(pathPrefix: "/auth/v1", every: 1, cuts: FaultProxy.Cut.all),
                .init(pathPrefix: "/storage/v1", every: 2, cuts: FaultProxy.Cut.all),
            ])
        defer { proxy.stop() }
        Thread.sleep(forTimeInterval: 0.002)  // a distinct backup name
        let cut = try Self.restBackup(try Self.settings(proxy.url, server), into: directory)

        for route in ["/rest/v1", "/auth/v1", "/storage/v1"] {
            let injected = proxy.injected(route)
            for kind in FaultProxy.Cut.all { #expect(injected[kind] == 1, "\(route): \(kind) \(injected)") }
        }
        #expect(cut.manifest.tables.map(\.tableName) == clean.manifest.tables.map(\.tableName))
        for table in clean.manifest.tables {
            #expect(try sortedLines(cut, table.name) == sortedLines(clean, table.name), "\(table.name)")
        }
        #expect(clean.manifest.tables.contains { $0.name == "users" && $0.rows == 40 })
        let objects = { (result: BackupResult) in result.manifest.storage?.objects.map { [$0.name, $0.sha256] } ?? [] }
        #expect(objects(cut) == objects(clean) && objects(clean).count == 12)
        #expect(cut.manifest.storage?.missing.isEmpty == true)
    }

    @Test("a REST restore (rows, auth users, Storage files) completes under cuts, creates included")
    func restRestore() throws {
        let (source, sourceServer) = try Self.project("cut_rsrc")
        let directory = try TemporaryDirectory()
        let backup = try Self.restBackup(try Self.settings(sourceServer.url, sourceServer), into: directory)

        let target = try SupabaseProjectTests.project("cut_rdst", app: true, data: false)
        try target.run(sqlFile: "fixtures/supabase/storage.sql")
        try target.run(sqlFile: "fixtures/types.sql")
        try target.execute("TRUNCATE public.types")
        let server = try PostgRESTTestServer(databaseURL: target.url)
        // Every second response: creates (users, buckets) and uploads whose answers are lost
        // happened on the server; their retries must take them for ours.
        let proxy = try FaultProxy(
            upstreamPort: Int(URL(string: server.url)!.port!),
            routes: [
                .init(pathPrefix: "/rest/v1", every: 2, cuts: FaultProxy.Cut.all),
                .init(pathPrefix: "/auth/v1", every: 2, cuts: FaultProxy.Cut.all),
                .init(method: "POST", pathPrefix: "/storage/v1/bucket", every: 1, cuts: [.closeBeforeResponse]),
                .init(pathPrefix: "/storage/v1", every: 2, cuts: FaultProxy.Cut.all),
            ])
        defer { proxy.stop() }
        var options = RestoreOptions(
            target: .rest(try Self.settings(proxy.url, server)), directory: directory.path, name: backup.name)
        options.withAuth = true
        options.storage = StorageSelection(settings: try Self.settings(proxy.url, server))
        _ = try RestoreEngine(options: options, logger: silentLogger).run()

        #expect(proxy.injected("/storage/v1/bucket")[.closeBeforeResponse] == 1)
        for route in ["/rest/v1", "/auth/v1"] { #expect(proxy.injected(route).values.reduce(0, +) >= 3, "\(route)") }
        for table in ["public.profiles", "public.notes", "public.types"] {
            #expect(try target.digest(table) == source.digest(table), "\(table)")
        }
        let users = "SELECT id::text, email FROM auth.users ORDER BY id"
        #expect(try target.rows(users) == source.rows(users))
        #expect(try server.storageContents(target.connection) == sourceServer.storageContents(source.connection))
    }

    @Test("S3: a backup, verify --read-data and a restore complete with S3's responses cut at every point")
    func objectStorage() throws {
        let database = try TestDatabase("cut_s3")
        try database.run(sqlFile: "fixtures/types.sql")
        try database.execute(
            "CREATE TABLE public.big (id int PRIMARY KEY, t text); INSERT INTO public.big SELECT i, md5(i::text) FROM generate_series(1, 20000) i"
        )
        let endpoint = try #require(URL(string: try TestS3.endpoint()))
        let proxy = try FaultProxy(
            upstreamPort: endpoint.port!, routes: [.init(pathPrefix: "/", every: 2, cuts: FaultProxy.Cut.all)])
        defer { proxy.stop() }
        var environment = try TestS3.environment()
        environment["AWS_ENDPOINT_URL"] = proxy.url
        let location = try TestS3.location()

        let backup = try CLI.run(["backup", "--db-url", database.url, "--out", location], environment: environment)
        #expect(backup.status == 0, "\(backup.stderr)")
        let verify = try CLI.run(
            ["verify", backup.lastLine, "--read-data", "--dir", location], environment: environment)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let target = try TestDatabase("cut_s3_dst")
        try target.run(sqlFile: "fixtures/types.sql")
        try target.execute("TRUNCATE public.types; CREATE TABLE public.big (id int PRIMARY KEY, t text)")
        let restore = try CLI.run(
            ["restore", backup.lastLine, "--dir", location, "--db-url", target.url], environment: environment)
        #expect(restore.status == 0, "\(restore.stderr)")
        for table in ["public.types", "public.big"] {
            #expect(try target.digest(table) == database.digest(table), "\(table)")
        }
        let injected = proxy.injected("/")
        for kind in FaultProxy.Cut.all { #expect(injected[kind] == 1, "\(kind) \(injected)") }
    }
}
