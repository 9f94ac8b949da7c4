import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

/// moto's S3 server behind scripts/lib/s3_fault_proxy.py, which fails on request.
final class S3FaultProxy {
    let url: String
    private let modeFile: String
    private let process = Process()
    private let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory()
        modeFile = directory.file("mode.json")
        try Data("{}".utf8).write(to: URL(fileURLWithPath: modeFile))
        let portFile = directory.file("port")
        let script = URL(fileURLWithPath: Repository.sqlDirectory).deletingLastPathComponent()
            .appendingPathComponent("scripts/lib/s3_fault_proxy.py").path
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, try TestS3.endpoint(), modeFile, portFile]
        try process.run()
        var port: String?
        for _ in 0..<200 where port == nil {
            port = try? String(contentsOfFile: portFile, encoding: .utf8)
            if port == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        guard let port else { throw TestEnvironmentError(description: "the S3 fault proxy did not start") }
        url = "http://127.0.0.1:\(port)"
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func set(_ mode: [String: Any]) throws {
        try JSONSerialization.data(withJSONObject: mode).write(to: URL(fileURLWithPath: modeFile))
    }

    /// The mode as the proxy left it (its counts go down as faults are injected).
    func mode() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: modeFile))) as? [String: Any]
            ?? [:]
    }

    /// The AWS variables of the test bucket, with requests going through the proxy.
    func environment() throws -> [String: String] {
        var env = try TestS3.environment()
        env["AWS_ENDPOINT_URL"] = url
        return env
    }
}

@Suite("Object storage faults", .serialized)
struct ObjectStorageFaultTests {
    /// A table whose archive needs more than one upload part (hex does not compress much).
    private func largeSource(_ label: String) throws -> TestDatabase {
        let source = try TestDatabase(label)
        try source.execute(
            """
            CREATE TABLE public.blob (id int PRIMARY KEY, v text);
            INSERT INTO public.blob
            SELECT i, md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text)
            FROM generate_series(1, 150000) i;
            """)
        return source
    }

    private func direct(_ location: String) throws -> S3Storage {
        S3Storage(configuration: try S3Configuration.resolve(location, environment: try TestS3.environment()))
    }

    /// A backup of a large table started through a proxy that holds its first part upload: it is
    /// mid-upload until `release` lets the part go.
    private func heldBackup(_ label: String) throws -> (
        process: Process, stderr: Pipe, location: String, release: () -> Void
    ) {
        let source = try largeSource(label)
        let proxy = try S3FaultProxy()
        let hold = NSTemporaryDirectory() + "hold-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: hold, contents: nil)
        try proxy.set(["hold_parts": hold])
        let location = try TestS3.location()
        let (process, _, err) = try CLI.start(
            ["backup", "--db-url", source.url, "--out", location], environment: try proxy.environment())
        var held = false
        for _ in 0..<1200 where !held {
            held = FileManager.default.fileExists(atPath: hold + ".held")
            if !held { Thread.sleep(forTimeInterval: 0.05) }
        }
        #expect(held)
        let release = {
            // Keeps the proxy and the source alive until the part is let go.
            withExtendedLifetime((proxy, source)) {
                try? FileManager.default.removeItem(atPath: hold)
                try? FileManager.default.removeItem(atPath: hold + ".held")
            }
        }
        return (process, err, location, release)
    }

    @Test("500s and connections dropped mid-part are retried: the backup completes and reads back intact")
    func retried() throws {
        let source = try largeSource("s3retry")
        let proxy = try S3FaultProxy()
        let location = try TestS3.location()
        try proxy.set(["fail": 3, "drop_parts": 1])
        let backup = try CLI.run(
            ["backup", "--db-url", source.url, "--out", location], environment: try proxy.environment())
        #expect(backup.status == 0, "\(backup.stderr)")
        // Every injected fault happened (a part upload was among the requests).
        let left = try proxy.mode()
        #expect(left["fail"] as? Int == 0 && left["drop_parts"] as? Int == 0, "\(left)")
        try proxy.set([:])
        let name = backup.lastLine
        let verify = try CLI.run(
            ["verify", name, "--dir", location, "--read-data"], environment: try TestS3.environment())
        #expect(verify.status == 0 && verify.stdout.contains("intact"), "\(verify.stderr)")
        let target = try TestDatabase("s3retry_target")
        try target.execute("CREATE TABLE public.blob (id int PRIMARY KEY, v text)")
        try proxy.set(["fail": 2])
        let restore = try CLI.run(
            ["restore", name, "--dir", location, "--db-url", target.url], environment: try proxy.environment())
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try target.digest("public.blob") == source.digest("public.blob"))
    }

    @Test("a store that keeps failing: one line after the retries, and no backup that looks complete")
    func persistentFailure() throws {
        let source = try TestDatabase("s3down")
        try source.execute("CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t VALUES (1)")
        let proxy = try S3FaultProxy()
        let location = try TestS3.location()
        try proxy.set(["fail": 10_000])
        let backup = try CLI.run(
            ["backup", "--db-url", source.url, "--out", location], environment: try proxy.environment())
        #expect(backup.status == 1, "\(backup.stderr)")
        let errors = backup.stderr.split(separator: "\n").filter { $0.contains("error") }
        #expect(
            errors.count == 1 && errors[0].contains("InternalError") && errors[0].contains("5 attempts"),
            "\(backup.stderr)")
        try proxy.set([:])
        #expect(try BackupListing.list(in: try direct(location)).isEmpty)
    }

    @Test("a slow endpoint is waited for")
    func slow() throws {
        let source = try TestDatabase("s3slow")
        try source.execute(
            "CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t SELECT generate_series(1, 100)")
        let proxy = try S3FaultProxy()
        try proxy.set(["delay": 0.3])
        let location = try TestS3.location()
        let backup = try CLI.run(
            ["backup", "--db-url", source.url, "--out", location], environment: try proxy.environment())
        #expect(backup.status == 0, "\(backup.stderr)")
        let list = try CLI.run(["list", "--dir", location], environment: try proxy.environment())
        #expect(list.stdout.contains(backup.lastLine))
    }

    @Test("SIGTERM mid-upload aborts the upload and deletes what was written, exit 143")
    func terminated() throws {
        let (process, err, location, release) = try heldBackup("s3term")
        defer { release() }
        // The part stays held: the handler must not wait for it.
        kill(process.processIdentifier, SIGTERM)
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 143, "\(errors)")
        #expect(errors.contains("interrupted by SIGTERM"), "\(errors)")
        let store = try direct(location)
        #expect(try store.list(prefix: "", recursive: true).isEmpty)
        #expect(try store.uploads(under: "").isEmpty)
    }

    @Test("SIGKILL mid-upload leaves no complete backup, and prune removes what it left")
    func killed() throws {
        // The proxy holds the first part upload; the backup is mid-upload until we let go.
        let (process, _, location, release) = try heldBackup("s3kill")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        release()

        let store = try direct(location)
        #expect(try BackupListing.list(in: store).isEmpty)
        let left = try store.unfinishedBackups()
        #expect(left.count == 1)
        // A fresh leftover is a running backup as far as prune can tell; an hour later it is stale.
        #expect(try Pruner.prune(in: store, policy: .default, dryRun: false).stalePartials.isEmpty)
        let pruned = try Pruner.prune(in: store, policy: .default, dryRun: false, now: Date().addingTimeInterval(7200))
        #expect(pruned.stalePartials.count == 1)
        #expect(try store.list(prefix: "", recursive: true).isEmpty)
        #expect(try store.uploads(under: "").isEmpty)
    }
}
