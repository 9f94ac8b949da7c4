import Foundation
import Testing

@testable import SupabackupKit

@Suite("Manifest")
struct ManifestTests {
    static func sample() -> Manifest {
        Manifest(
            format: "supabackup", formatVersion: 1, toolVersion: "0.1.0", name: "2025-11-30T12-00-00-000Z",
            startedAt: "2025-11-30T12:00:00.000Z", finishedAt: "2025-11-30T12:00:01.000Z", mode: .direct,
            source: .init(host: "db", port: "5432", database: "app", user: "postgres"), serverVersion: "15.18",
            consistentSnapshot: true, schemas: ["public"],
            tables: [
                Manifest.Table(
                    schema: "public", name: "users", kind: "table", file: "data/public.users.ndjson.zst",
                    columns: [
                        .init(
                            name: "id", type: "integer", nullable: false, generated: nil, identity: nil, encoding: .json
                        )
                    ],
                    primaryKey: ["id"], foreignKeys: [], rows: 1, bytes: 10, sha256: String(repeating: "a", count: 64))
            ],
            restoreOrder: [TableName(schema: "public", name: "users")], sequences: [], warnings: [])
    }

    @Test("encodes with snake_case keys and decodes back unchanged")
    func roundTrip() throws {
        let data = try Self.sample().encoded()
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"format_version\" : 1") && text.contains("\"consistent_snapshot\" : true"))
        #expect(try Manifest.decode(data) == Self.sample())
    }

    @Test(
        "files outside data/ are refused",
        arguments: [
            "data/../x", "../x", "/etc/passwd", "data/a/b", "data/", "data/.hidden", "x.ndjson.zst", "data/a\\b",
            "data/a\u{0}",
        ])
    func unsafeFiles(_ file: String) {
        var manifest = Self.sample()
        manifest.tables[0].file = file
        #expect(throws: ArchiveError.self) { try manifest.validate() }
    }

    @Test("a newer format version is unsupported, not damaged")
    func newerVersion() throws {
        var manifest = Self.sample()
        manifest.formatVersion = Manifest.currentFormatVersion + 1
        #expect {
            try Manifest.decode(try manifest.encoded())
        } throws: { ($0 as? ArchiveError)?.code == .unsupported }
    }

    @Test(
        "garbage is damaged",
        arguments: ["", "{", "[]", "{\"format\":\"other\"}", "{\"format\":\"supabackup\",\"format_version\":1}"])
    func garbage(_ text: String) {
        #expect { try Manifest.decode(Data(text.utf8)) } throws: { ($0 as? ArchiveError)?.code == .damaged }
    }

    @Test("a manifest naming another folder is refused")
    func wrongFolder() {
        #expect(throws: ArchiveError.self) { try Self.sample().validate(folderName: "2024-01-01T00-00-00-000Z") }
    }

    static func sealed() -> SealedManifest {
        var manifest = sample()
        manifest.encryption = SealedManifest.encryptionName
        manifest.formatVersion = Manifest.encryptedFormatVersion
        manifest.tables[0].file = "data/0001.ndjson.zst.age"
        let entry = Manifest.FileEntry(file: "manifest.age", bytes: 100, sha256: String(repeating: "b", count: 64))
        return SealedManifest(for: manifest, manifestFile: entry)
    }

    @Test("an encrypted archive's readable manifest decodes as sealed and keeps only names, times and checksums")
    func sealedRoundTrip() throws {
        let sealed = Self.sealed()
        let data = try sealed.encoded()
        guard case .sealed(let decoded) = try StoredManifest.decode(data) else {
            Issue.record("not decoded as sealed")
            return
        }
        #expect(decoded == sealed)
        try decoded.validate(folderName: sealed.name)
        let text = String(decoding: data, as: UTF8.self)
        for hidden in ["users", "postgres", "\"db\"", "rows", "columns", "15.18"] {
            #expect(!text.contains(hidden), "\(hidden)")
        }
        guard case .plain = try StoredManifest.decode(try Self.sample().encoded()) else {
            Issue.record("a plain manifest decoded as sealed")
            return
        }
    }

    @Test(
        "a readable manifest naming files outside the backup, twice, or without checksums is damaged",
        arguments: ["../x", "data/../../etc/passwd", "/etc/passwd", "schema.sql", "data/.hidden", "manifest.json"])
    func sealedUnsafeFiles(_ file: String) {
        var sealed = Self.sealed()
        sealed.files[0].file = file
        #expect { try sealed.validate(folderName: nil) } throws: { ($0 as? ArchiveError)?.code == .damaged }
    }

    @Test("a readable manifest with a bad checksum, a listed-twice file or an unknown cipher is refused")
    func sealedRefusals() {
        var badSum = Self.sealed()
        badSum.files[0].sha256 = "xyz"
        #expect(throws: ArchiveError.self) { try badSum.validate(folderName: nil) }
        var twice = Self.sealed()
        twice.files.append(twice.files[0])
        #expect(throws: ArchiveError.self) { try twice.validate(folderName: nil) }
        var cipher = Self.sealed()
        cipher.encryption = "gpg"
        #expect { try cipher.validate(folderName: nil) } throws: { ($0 as? ArchiveError)?.code == .unsupported }
    }
}
