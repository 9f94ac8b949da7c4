import Foundation
import SupabackupKit
import TestSupport
import Testing

/// What an operator with cron, a developer on a laptop and someone restoring after a disaster
/// meet in their first hour, through the built binary: nothing fails silently.
@Suite("First hour")
struct FirstHourTests {
    static func smallDatabase(_ label: String) throws -> TestDatabase {
        let database = try TestDatabase(label)
        try database.execute("CREATE TABLE public.t (id int PRIMARY KEY, v text); INSERT INTO public.t VALUES (1, 'a')")
        return database
    }

    @Test("a backup that selects no table exits 64 and writes nothing, -q and --json included; --allow-empty says so")
    func emptyBackup() throws {
        let empty = try TestDatabase("first_empty")
        let directory = try TemporaryDirectory()
        for extra in [[], ["-q"], ["--json"]] {
            let result = try CLI.run(["backup", "--db-url", empty.url, "--out", directory.path] + extra)
            #expect(result.status == 64, "\(extra): \(result.stderr)")
            #expect(result.stderr.contains("no tables to back up in public"), "\(extra): \(result.stderr)")
            #expect(result.stderr.contains("--allow-empty"))
            #expect(result.stdout.isEmpty)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)

        let allowed = try CLI.run(["backup", "--db-url", empty.url, "--out", directory.path, "--allow-empty", "--json"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(allowed.stdout.utf8)) as? [String: Any]
        let warnings = summary?["warnings"] as? [String] ?? []
        #expect(warnings.contains { $0.contains("no tables to back up in public") }, "\(allowed.stdout)")
        let name = try #require(summary?["name"] as? String)
        let archive = try BackupArchive.open(name: name, in: directory.path)
        #expect(archive.manifest.warnings.contains { $0.contains("no tables to back up") })
    }

    @Test("the cron line (-q --prune) against a URL that selects nothing fails and every earlier backup stays")
    func cronLineKeepsBackups() throws {
        let source = try Self.smallDatabase("first_cron")
        let empty = try TestDatabase("first_cron_empty")
        let directory = try TemporaryDirectory()
        var names: [String] = []
        for _ in 0..<2 {
            let backup = try CLI.run(["backup", "--db-url", source.url, "--out", directory.path])
            #expect(backup.status == 0, "\(backup.stderr)")
            names.append(backup.lastLine)
        }
        // One of them 40 days old, as a month of cron runs would leave it.
        let old = BackupName.make(Date().addingTimeInterval(-40 * 86_400))
        try FileManager.default.moveItem(atPath: directory.file(names[0]), toPath: directory.file(old))
        let cron = try CLI.run([
            "backup", "-q", "--db-url", empty.url, "--out", directory.path, "--prune", "--keep-days", "30",
        ])
        #expect(cron.status != 0)
        #expect(cron.stderr.contains("no tables to back up"), "\(cron.stderr)")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: directory.path)) == [old, names[1]])
    }

    @Test("prune never removes the newest backup holding data in favour of newer empty ones")
    func pruneKeepsData() throws {
        let source = try Self.smallDatabase("first_prune")
        let empty = try TestDatabase("first_prune_empty")
        let directory = try TemporaryDirectory()
        let real = try CLI.run(["backup", "--db-url", source.url, "--out", directory.path])
        #expect(real.status == 0, "\(real.stderr)")
        let old = BackupName.make(Date().addingTimeInterval(-40 * 86_400))
        try FileManager.default.moveItem(atPath: directory.file(real.lastLine), toPath: directory.file(old))
        for _ in 0..<2 {
            let hollow = try CLI.run(["backup", "--db-url", empty.url, "--out", directory.path, "--allow-empty"])
            #expect(hollow.status == 0, "\(hollow.stderr)")
        }
        let prune = try CLI.run(["prune", "--dir", directory.path, "--keep-days", "30"])
        #expect(prune.status == 0, "\(prune.stderr)")
        #expect(prune.stdout.contains("newest holding data"), "\(prune.stdout)")
        #expect(FileManager.default.fileExists(atPath: directory.file(old)))
    }
}
