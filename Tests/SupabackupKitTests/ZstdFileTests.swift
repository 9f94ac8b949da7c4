import Foundation
import Testing

@testable import SupabackupKit

@Suite("zstd files")
struct ZstdFileTests {
    /// A writer into a new file at `path`, through the local storage.
    private func writer(_ path: String) throws -> ZstdFileWriter {
        let storage = LocalStorage(root: (path as NSString).deletingLastPathComponent)
        let file = try OutputFile(creating: try storage.path((path as NSString).lastPathComponent))
        return try ZstdFileWriter(into: file, level: 3)
    }

    private func read(_ path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> (
        bytes: Int64, sha256: String
    ) {
        let storage = LocalStorage(root: (path as NSString).deletingLastPathComponent)
        let file = HashingReader(try storage.openObject((path as NSString).lastPathComponent, from: 0))
        try ZstdFileReader().read(file, body)
        return (file.count, file.sha256)
    }

    @Test("what is written reads back, with the same size and SHA-256")
    func roundTrip() throws {
        let path = NSTemporaryDirectory() + "zstd-\(UUID().uuidString).zst"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try writer(path)
        var expected = Data()
        for i in 0..<50_000 {
            let line = Data("{\"i\":\(i),\"s\":\"\(String(repeating: "x", count: i % 97))\"}\n".utf8)
            expected.append(line)
            try writer.write(line)
        }
        let (bytes, sha256) = try writer.finish()
        var read = Data()
        let result = try self.read(path) { read.append(contentsOf: $0) }
        #expect(read == expected)
        #expect(result.bytes == bytes && result.sha256 == sha256)
        #expect(Int64(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int) == bytes)
    }

    @Test("a truncated file is damage, not a short table")
    func truncated() throws {
        let path = NSTemporaryDirectory() + "zstd-\(UUID().uuidString).zst"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try writer(path)
        for i in 0..<10_000 { try writer.write(Data("{\"i\":\(i)}\n".utf8)) }
        _ = try writer.finish()
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - 7).write(to: URL(fileURLWithPath: path))
        #expect { try read(path) { _ in } } throws: { ($0 as? ArchiveError)?.code == .damaged }
    }

    @Test("an existing file is never overwritten")
    func exclusive() throws {
        let path = NSTemporaryDirectory() + "zstd-\(UUID().uuidString).zst"
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = FileManager.default.createFile(atPath: path, contents: Data("keep".utf8))
        #expect(throws: ArchiveError.self) { try writer(path) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep")
    }

    @Test("a writer dropped without finish (a backup failing mid-table) stops its thread cleanly")
    func abandoned() throws {
        let directory = NSTemporaryDirectory() + "zstd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for i in 0..<200 {
            let writer = try writer("\(directory)/\(i).zst")
            if i % 2 == 0 { try writer.write(Data(repeating: 0x41, count: (1 << 20) + i)) }
        }
        // Reaching here is the test: the old writer crashed when freed before its thread ran.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).count == 200)
    }
}
