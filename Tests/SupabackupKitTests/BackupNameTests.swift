import Foundation
import SupabackupKit
import Testing

@Suite("Backup names")
struct BackupNameTests {
    @Test("names are the UTC start time with milliseconds, and parse back")
    func roundTrip() throws {
        let date = Date(timeIntervalSince1970: 1_764_504_000.123)  // 2025-11-30T12:00:00.123Z
        #expect(BackupName.make(date) == "2025-11-30T12-00-00-123Z")
        let parsed = try #require(BackupName.date(of: "2025-11-30T12-00-00-123Z"))
        #expect(abs(parsed.timeIntervalSince(date)) < 0.0005)
        #expect(BackupName.iso8601(date) == "2025-11-30T12:00:00.123Z")
    }

    @Test(
        "other folder names are not backups",
        arguments: [
            "", "2025-11-30T12-00-00-000", "2025-13-30T12-00-00-000Z", ".2025-11-30T12-00-00-000Z.partial",
            "2025-11-30T12:00:00-000Z", "notes", "2025-11-30T12-00-00-00xZ",
        ])
    func notNames(_ name: String) {
        #expect(BackupName.date(of: name) == nil)
    }

    @Test("path-like input is refused", arguments: ["../x", "..", ".", "/abs", "a/b", "a\\b", "", ".hidden", "x\u{7}"])
    func refused(_ name: String) {
        #expect(throws: ArchiveError.self) { try BackupName.validateUserInput(name) }
    }
}
