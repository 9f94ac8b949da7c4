import Foundation
import SupabackupKit
import TestSupport
import Testing

/// The scheduling assets in scripts/schedule, checked as far as this machine allows.
@Suite("Scheduling")
struct SchedulingTests {
    static let folder = URL(fileURLWithPath: Repository.sqlDirectory).deletingLastPathComponent()
        .appendingPathComponent("scripts/schedule").path

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// Runs `systemd-analyze verify` on `NAME.service` and `NAME.timer`, with ExecStart pointed at
    /// the built binary (verify checks that it exists). Returns the service's text.
    static func verifyUnits(_ name: String) throws -> String {
        let directory = try TemporaryDirectory()
        let service = try String(contentsOfFile: folder + "/\(name).service", encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/supabackup", with: CLI.binary)
        try service.write(toFile: directory.file("\(name).service"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: folder + "/\(name).timer", toPath: directory.file("\(name).timer"))
        let (status, output) = try run(
            ["systemd-analyze", "verify", directory.file("\(name).service"), directory.file("\(name).timer")])
        #expect(status == 0, "\(output)")
        return service
    }

    @Test("the systemd service and timer pass systemd-analyze verify")
    func systemdUnits() throws {
        let service = try Self.verifyUnits("supabackup")
        #expect(service.contains("--prune") && service.contains("EnvironmentFile=/etc/supabackup/env"))
    }

    @Test("the GitHub Actions workflow parses and has a daily schedule, the secrets and a 30-day artifact")
    func workflow() throws {
        let script = """
            import sys, yaml
            d = yaml.safe_load(open(sys.argv[1]))
            on = d.get("on", d.get(True))
            assert on["schedule"][0]["cron"].split()[2:] == ["*", "*", "*"], "daily"
            assert "workflow_dispatch" in on
            steps = d["jobs"]["backup"]["steps"]
            env = [s.get("env", {}) for s in steps if "env" in s][0]
            for key in ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "DATABASE_URL"):
                assert env[key] == "${{ secrets.%s }}" % key, key
            upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")][0]
            assert upload["with"]["retention-days"] == 30
            assert any("supabackup backup" in s.get("run", "") for s in steps)
            assert any("supabackup verify" in s.get("run", "") for s in steps)
            print("ok")
            """
        let (status, output) = try Self.run(["python3", "-c", script, Self.folder + "/github-actions-backup.yml"])
        #expect(status == 0 && output.contains("ok"), "\(output)")
    }

    @Test("the object-storage variants: systemd units verify, the workflow has the S3 settings")
    func objectStorageVariants() throws {
        let service = try Self.verifyUnits("supabackup-s3")
        #expect(service.contains("--out ${BACKUP_LOCATION} --prune") && service.contains("AWS_SECRET_ACCESS_KEY"))
        let script = """
            import sys, yaml
            d = yaml.safe_load(open(sys.argv[1]))
            on = d.get("on", d.get(True))
            assert on["schedule"][0]["cron"].split()[2:] == ["*", "*", "*"], "daily"
            steps = d["jobs"]["backup"]["steps"]
            env = [s.get("env", {}) for s in steps if "env" in s][0]
            for key in ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "DATABASE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                assert env[key] == "${{ secrets.%s }}" % key, key
            for key in ("BACKUP_LOCATION", "AWS_REGION", "AWS_ENDPOINT_URL"):
                assert env[key] == "${{ vars.%s }}" % key, key
            run = [s["run"] for s in steps if "supabackup backup" in s.get("run", "")][0]
            assert '--out "$BACKUP_LOCATION" --prune' in run and "supabackup verify" in run
            print("ok")
            """
        let (parsed, text) = try Self.run(["python3", "-c", script, Self.folder + "/github-actions-backup-s3.yml"])
        #expect(parsed == 0 && text.contains("ok"), "\(text)")
    }

    @Test("the cron line's command, run once as the README says, makes a backup and prunes")
    func cronLine() throws {
        let database = try TestDatabase("cron")
        try database.execute("CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t VALUES (1), (2)")
        let directory = try TemporaryDirectory()
        let cron = try String(contentsOfFile: Self.folder + "/supabackup.cron", encoding: .utf8)
        let line = try #require(
            cron.split(separator: "\n").first { !$0.hasPrefix("#") && $0.contains("supabackup backup") })
        // Fields: minute hour day month weekday user command...
        let fields = line.split(separator: " ", maxSplits: 6)
        #expect(fields.count == 7 && fields[5] == "supabackup")
        let envFile = directory.file("env")
        try "DATABASE_URL=\(database.url)\n".write(toFile: envFile, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory.file("backups"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.file("log"), withIntermediateDirectories: true)
        let command = String(fields[6])
            .replacingOccurrences(of: "/etc/supabackup/env", with: envFile)
            .replacingOccurrences(of: "/usr/local/bin/supabackup", with: CLI.binary)
            .replacingOccurrences(of: "/var/backups/supabackup", with: directory.file("backups"))
            .replacingOccurrences(of: "/var/log/supabackup", with: directory.file("log"))
        let (status, output) = try Self.run(["bash", "-c", command], environment: ["DATABASE_URL": ""])
        #expect(
            status == 0,
            "\(output) \((try? String(contentsOfFile: directory.file("log/backup.log"), encoding: .utf8)) ?? "")")
        let backups = try BackupListing.list(in: directory.file("backups"))
        #expect(backups.count == 1 && backups[0].rows == 2)
    }
}
