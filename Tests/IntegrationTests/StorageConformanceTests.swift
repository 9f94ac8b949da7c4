import Crypto
import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

/// A storage implementation under test: a fresh, empty root per test, removed afterwards.
struct StorageUnderTest: Sendable, CustomTestStringConvertible {
    var name: String
    var make: @Sendable () throws -> (storage: any BackupStorage, cleanup: @Sendable () -> Void)

    var testDescription: String { name }

    static let local = StorageUnderTest(name: "local folder") {
        let root = NSTemporaryDirectory() + "storage-\(UUID().uuidString)/backups"
        return (
            LocalStorage(root: root),
            { try? FileManager.default.removeItem(atPath: (root as NSString).deletingLastPathComponent) }
        )
    }

    /// A fresh prefix in the test bucket of moto's S3 server (signatures checked).
    static let s3 = StorageUnderTest(name: "S3 (moto)") {
        let configuration = try S3Configuration.resolve(try TestS3.location(), environment: try TestS3.environment())
        let storage = S3Storage(configuration: configuration)
        // Pages of two keys: every listing in the suite goes through continuation tokens.
        storage.pageSize = 2
        return (storage, { try? storage.deleteAll(under: "") })
    }

    /// Every implementation; each must pass every test of the suite.
    static let all: [StorageUnderTest] = [.local, .s3]
}

/// What every storage must do, whatever it stores on (restic runs one such suite per backend).
@Suite("storage conformance")
struct StorageConformanceTests {
    private static let name = "2025-11-30T12-00-00-000Z"

    private func withStorage(_ under: StorageUnderTest, _ body: (any BackupStorage) throws -> Void) throws {
        let (storage, cleanup) = try under.make()
        defer { cleanup() }
        try body(storage)
    }

    /// Deterministic bytes that do not compress away.
    private func bytes(_ count: Int, seed: UInt64 = 1) -> Data {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        var data = Data(count: count)
        for i in 0..<count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            data[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        return data
    }

    private func write(_ data: Data, to file: String, in backup: PendingBackup, chunk: Int = 100_003) throws {
        let writer = try backup.create(file)
        var offset = 0
        while offset < data.count {
            try writer.write(data[offset..<min(offset + chunk, data.count)])
            offset += chunk
        }
        try writer.finish()
    }

    /// Starts backup `name` and writes `files` into it, `size` bytes each.
    private func begin(_ storage: any BackupStorage, writing files: [String], size: Int = 1000) throws -> PendingBackup
    {
        let backup = try #require(try storage.beginBackup(named: Self.name))
        for file in files { try write(bytes(size), to: file, in: backup) }
        return backup
    }

    private func readAll(_ storage: any BackupStorage, _ name: String, from offset: Int64 = 0) throws -> Data {
        let reader = try storage.openObject(name, from: offset)
        defer { reader.close() }
        var data = Data()
        try reader.forEachChunk(size: 65_536) { data.append(contentsOf: $0) }
        return data
    }

    private func publish(_ backup: PendingBackup) throws {
        _ = try backup.publish(manifest: Data("{}\n".utf8))
    }

    @Test("an empty storage lists nothing and has no unfinished backups", arguments: StorageUnderTest.all)
    func empty(_ under: StorageUnderTest) throws {
        try withStorage(under) { storage throws in
            #expect(try storage.list(prefix: "", recursive: true).isEmpty)
            #expect(try storage.unfinishedBackups().isEmpty)
            #expect(try storage.entry(Self.name + "/manifest.json") == nil)
        }
    }

    @Test("objects read back byte for byte, whole and from an offset", arguments: StorageUnderTest.all)
    func roundTrip(_ under: StorageUnderTest) throws {
        try withStorage(under) { storage throws in
            let backup = try #require(try storage.beginBackup(named: Self.name))
            // Empty, one byte, and several MiB written in odd-sized chunks (multipart where it applies).
            let large = bytes(9 << 20 | 12_345)
            try write(Data(), to: "data/empty.ndjson.zst", in: backup)
            try write(Data([0x7B]), to: "data/one.ndjson.zst", in: backup)
            try write(large, to: "data/large.ndjson.zst", in: backup)
            try publish(backup)

            #expect(try readAll(storage, Self.name + "/data/empty.ndjson.zst").isEmpty)
            #expect(try readAll(storage, Self.name + "/data/one.ndjson.zst") == Data([0x7B]))
            let back = try readAll(storage, Self.name + "/data/large.ndjson.zst")
            #expect(SHA256.hash(data: back) == SHA256.hash(data: large) && back.count == large.count)
            let tail = try readAll(storage, Self.name + "/data/large.ndjson.zst", from: 5_000_001)
            #expect(tail == large.dropFirst(5_000_001))
            #expect(try storage.entry(Self.name + "/data/large.ndjson.zst")?.size == Int64(large.count))
            #expect(try storage.read(Self.name + "/manifest.json", limit: 100) == Data("{}\n".utf8))
            #expect(throws: ArchiveError.self) { try storage.read(Self.name + "/data/large.ndjson.zst", limit: 1000) }
        }
    }

    @Test("listing: recursive or one level with folders, by prefix, sorted", arguments: StorageUnderTest.all)
    func listing(_ under: StorageUnderTest) throws {
        try withStorage(under) { storage throws in
            let backup = try #require(try storage.beginBackup(named: Self.name))
            try write(bytes(10), to: "data/b.ndjson.zst", in: backup)
            try write(bytes(20), to: "data/a.ndjson.zst", in: backup)
            try write(bytes(30), to: "schema.sql", in: backup)
            try publish(backup)

            let top = try storage.list(prefix: "", recursive: false)
            #expect(top.map(\.name) == [Self.name + "/"] && top[0].isFolder)
            #expect(top[0].baseName == Self.name)
            let inside = try storage.list(prefix: Self.name + "/", recursive: false)
            #expect(inside.map(\.name) == ["data/", "manifest.json", "schema.sql"].map { Self.name + "/" + $0 })
            let data = try storage.list(prefix: Self.name + "/data/", recursive: false)
            #expect(data.map(\.baseName) == ["a.ndjson.zst", "b.ndjson.zst"] && data.map(\.size) == [20, 10])
            let all = try storage.list(prefix: Self.name + "/", recursive: true)
            #expect(all.count == 4 && all.allSatisfy { !$0.isFolder })
            #expect(
                try storage.list(prefix: Self.name + "/data/a", recursive: false).map(\.baseName) == ["a.ndjson.zst"])
            #expect(try storage.list(prefix: "2024-", recursive: true).isEmpty)
        }
    }

    @Test("a backup is complete only once published; its name stays reserved", arguments: StorageUnderTest.all)
    func publishing(_ under: StorageUnderTest) throws {
        try withStorage(under) { storage throws in
            let backup = try begin(storage, writing: ["data/a.ndjson.zst"])
            // Before publish: no manifest, not listed by BackupListing, the name is taken.
            #expect(try storage.entry(Self.name + "/manifest.json") == nil)
            #expect(try BackupListing.list(in: storage).isEmpty)
            #expect(try storage.beginBackup(named: Self.name) == nil)
            #expect(try storage.unfinishedBackups().map(\.name) == [Self.name])

            try publish(backup)
            #expect(try storage.entry(Self.name + "/manifest.json") != nil)
            #expect(try storage.unfinishedBackups().isEmpty)
            #expect(try storage.beginBackup(named: Self.name) == nil)
        }
    }

    @Test("a discarded backup leaves nothing behind, and discarding twice is harmless", arguments: StorageUnderTest.all)
    func discarding(_ under: StorageUnderTest) throws {
        try withStorage(under) { storage throws in
            let backup = try begin(storage, writing: ["data/a.ndjson.zst"])
            let unfinished = try backup.create("data/b.ndjson.zst")
            try unfinished.write(bytes(100))
            unfinished.abort()
            backup.discard()
            backup.discard()
            #expect(try storage.list(prefix: "", recursive: true).isEmpty)
            #expect(try storage.unfinishedBackups().isEmpty)
            #expect(throws: ArchiveError.self) { try backup.publish(manifest: Data("{}".utf8)) }
            // The name is free again.
            let again = try #require(try storage.beginBackup(named: Self.name))
            again.discard()
        }
    }

    @Test("an unfinished backup can be removed by prune", arguments: StorageUnderTest.all)
    func unfinished(_ under: StorageUnderTest) throws {
        try withStorage(under) { storage throws in
            let backup = try begin(storage, writing: ["data/a.ndjson.zst"])
            let found = try #require(try storage.unfinishedBackups().first)
            #expect(found.name == Self.name)
            try storage.removeUnfinished(found)
            #expect(try storage.unfinishedBackups().isEmpty)
            #expect(try storage.list(prefix: Self.name + "/", recursive: true).isEmpty)
            backup.discard()
        }
    }

    @Test("deleting: one object, a whole folder, and absent names", arguments: StorageUnderTest.all)
    func deleting(_ under: StorageUnderTest) throws {
        try withStorage(under) { storage throws in
            try publish(try begin(storage, writing: ["data/a.ndjson.zst", "data/b.ndjson.zst"], size: 10))

            try storage.delete(Self.name + "/data/a.ndjson.zst")
            try storage.delete(Self.name + "/data/a.ndjson.zst")
            #expect(try storage.entry(Self.name + "/data/a.ndjson.zst") == nil)
            #expect(try storage.entry(Self.name + "/data/b.ndjson.zst") != nil)
            try storage.deleteAll(under: Self.name + "/")
            try storage.deleteAll(under: Self.name + "/")
            #expect(try storage.list(prefix: "", recursive: true).isEmpty)
            #expect(try storage.list(prefix: "", recursive: false).isEmpty)
        }
    }

    @Test("missing objects are damage; names that leave the root are refused", arguments: StorageUnderTest.all)
    func refusals(_ under: StorageUnderTest) throws {
        try withStorage(under) { storage throws in
            #expect { try storage.openObject(Self.name + "/data/x.ndjson.zst", from: 0) } throws: {
                ($0 as? ArchiveError)?.code == .damaged
            }
            for name in ["../x", "a/../../x", "/etc/passwd", "a//b"] {
                #expect { try storage.openObject(name, from: 0) } throws: {
                    ($0 as? ArchiveError)?.code == .invalidName
                }
                #expect { try storage.delete(name) } throws: { ($0 as? ArchiveError)?.code == .invalidName }
            }
        }
    }

    @Test("archives, listing and prune work through the storage", arguments: StorageUnderTest.all)
    func archiveThroughStorage(_ under: StorageUnderTest) throws {
        try withStorage(under) { storage throws in
            let now = Date()
            var names: [String] = []
            for days in [40.0, 0] {
                let folder = try PartialBackupFolder(in: storage, startingAt: now.addingTimeInterval(-days * 86_400))
                let writer = try ZstdFileWriter(into: try folder.create("data/public.t.ndjson.zst"), level: 3)
                try writer.write(Data("{\"id\":1}\n{\"id\":2}\n".utf8))
                let (size, sha256) = try writer.finish()
                let manifest = Manifest(
                    format: Manifest.formatName, formatVersion: Manifest.plainFormatVersion, toolVersion: "test",
                    name: folder.name, startedAt: BackupName.iso8601(folder.startedAt),
                    finishedAt: BackupName.iso8601(folder.startedAt), mode: .direct,
                    source: .init(host: "db", port: "5432", database: "app", user: "postgres"), serverVersion: "15",
                    consistentSnapshot: true, schemas: ["public"],
                    tables: [
                        Manifest.Table(
                            schema: "public", name: "t", kind: "table", file: "data/public.t.ndjson.zst",
                            columns: [
                                .init(
                                    name: "id", type: "integer", nullable: false, generated: nil, identity: nil,
                                    encoding: .json)
                            ],
                            primaryKey: ["id"], foreignKeys: [], rows: 2, bytes: size, sha256: sha256)
                    ],
                    restoreOrder: [TableName(schema: "public", name: "t")], sequences: [], warnings: [])
                _ = try folder.publish(manifest)
                names.append(folder.name)
            }
            #expect(try BackupListing.list(in: storage).map(\.name) == names.reversed())
            let archive = try BackupArchive.open(name: names[1], in: storage)
            #expect(ArchiveVerifier.verify(archive).isIntact)
            var rows = Data()
            try archive.readRows(of: archive.manifest.tables[0]) { rows.append(contentsOf: $0) }
            #expect(rows == Data("{\"id\":1}\n{\"id\":2}\n".utf8))

            let result = try Pruner.prune(
                in: storage, policy: RetentionPolicy(keepDays: 30, keepLast: 1), dryRun: false, now: now)
            #expect(result.removed == [names[0]])
            #expect(try BackupListing.list(in: storage).map(\.name) == [names[1]])
            #expect(try storage.list(prefix: names[0] + "/", recursive: true).isEmpty)
        }
    }
}
