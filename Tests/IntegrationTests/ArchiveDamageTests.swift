import Foundation
import SupabackupKit
import TestSupport
import Testing

/// Damaged archives are refused by verify and by restore, before the target is written.
@Suite("Damaged archives")
struct ArchiveDamageTests {
    enum Damage: String, CaseIterable, Sendable {
        case truncated, bitFlip, rowCount, escapingPath, absolutePath, unknownVersion, missingFile, strayFile, symlink,
            invalidLine
    }

    @Test("verify and restore both refuse the archive; the target is unchanged", arguments: Damage.allCases)
    func refused(_ damage: Damage) throws {
        let (source, target) = try sourceAndTarget("damage", schema: "sample/schema.sql", data: "sample/data.sql")
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)
        try apply(damage, to: result)

        let before = try target.digest("public.users")
        let verifyFailed: Bool
        if let archive = try? BackupArchive.open(name: result.name, in: directory.path) {
            verifyFailed = !ArchiveVerifier.verify(archive).isIntact
        } else {
            verifyFailed = true
        }
        #expect(verifyFailed)
        #expect(throws: (any Error).self) { try restore(result.name, from: directory, into: target) }
        #expect(try target.digest("public.users") == before)
        #expect(try target.scalar("SELECT count(*) FROM public.users") == "0")

        let cli = try CLI.run(["verify", result.name, "--dir", directory.path])
        #expect(cli.status == 3)
        #expect(!cli.stderr.isEmpty && !cli.stderr.contains("Fatal error"))
    }

    private func apply(_ damage: Damage, to result: BackupResult) throws {
        let users = try #require(result.manifest.tables.first { $0.name == "users" })
        let usersPath = result.path + "/" + users.file
        let manifestPath = result.path + "/manifest.json"
        var manifest = result.manifest
        switch damage {
        case .truncated:
            let data = try Data(contentsOf: URL(fileURLWithPath: usersPath))
            try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: usersPath))
        case .bitFlip:
            var data = try Data(contentsOf: URL(fileURLWithPath: usersPath))
            data[data.count / 2] ^= 0x10
            try data.write(to: URL(fileURLWithPath: usersPath))
        case .rowCount:
            manifest.tables[manifest.tables.firstIndex { $0.name == "users" }!].rows += 1
            try manifest.encoded().write(to: URL(fileURLWithPath: manifestPath))
        case .escapingPath:
            manifest.tables[0].file = "data/../../escape.ndjson.zst"
            try manifest.encoded().write(to: URL(fileURLWithPath: manifestPath))
        case .absolutePath:
            manifest.tables[0].file = "/etc/passwd"
            try manifest.encoded().write(to: URL(fileURLWithPath: manifestPath))
        case .unknownVersion:
            manifest.formatVersion = 99
            try manifest.encoded().write(to: URL(fileURLWithPath: manifestPath))
        case .missingFile:
            try FileManager.default.removeItem(atPath: usersPath)
        case .strayFile:
            try Data("{}\n".utf8).write(to: URL(fileURLWithPath: result.path + "/data/extra.ndjson.zst"))
        case .symlink:
            let elsewhere = result.path + "/../elsewhere.zst"
            try FileManager.default.moveItem(atPath: usersPath, toPath: elsewhere)
            try FileManager.default.createSymbolicLink(atPath: usersPath, withDestinationPath: elsewhere)
        case .invalidLine:
            // A valid zstd file, checksum and row count updated: only the content is wrong.
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["sh", "-c", "printf '{\"id\":1}\\nnot json\\n' | zstd -q -f -o \"$0\"", usersPath]
            try process.run()
            process.waitUntilExit()
            let data = try Data(contentsOf: URL(fileURLWithPath: usersPath))
            let index = manifest.tables.firstIndex { $0.name == "users" }!
            manifest.tables[index].rows = 2
            manifest.tables[index].bytes = Int64(data.count)
            manifest.tables[index].sha256 = sha256Hex(usersPath)
            try manifest.encoded().write(to: URL(fileURLWithPath: manifestPath))
        }
    }

    private func sha256Hex(_ path: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sha256sum", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try? process.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return String(out.prefix(64))
    }
}
