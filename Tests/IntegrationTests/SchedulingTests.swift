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

    @Test("the systemd units pass systemd-analyze verify; a failure starts the unit that mails; 30 days kept")
    func systemdUnits() throws {
        let service = try Self.verifyUnits("supabackup")
        #expect(service.contains("--prune --keep-days 30") && service.contains("EnvironmentFile=/etc/supabackup/env"))
        #expect(!service.contains("keep-monthly") && service.contains("OnFailure=supabackup-failure@%n.service"))
        let failure = Self.folder + "/supabackup-failure@.service"
        let directory = try TemporaryDirectory()
        let instance = directory.file("supabackup-failure@supabackup.service.service")
        try FileManager.default.copyItem(atPath: failure, toPath: instance)
        let (status, output) = try Self.run(["systemd-analyze", "verify", instance])
        #expect(status == 0, "\(output)")
        #expect(try String(contentsOfFile: failure, encoding: .utf8).contains("| mail -s"))
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
            backup = [s for s in steps if "supabackup backup" in s.get("run", "")][0]
            assert "SUPABACKUP_RECIPIENTS" in backup["env"]
            print(backup["run"], file=open(sys.argv[2], "w"))
            assert any("supabackup backup" in s.get("run", "") for s in steps)
            assert any("supabackup verify" in s.get("run", "") for s in steps)
            print("ok")
            """
        let directory = try TemporaryDirectory()
        let step = directory.file("step.sh")
        let (status, output) = try Self.run(["python3", "-c", script, Self.folder + "/github-actions-backup.yml", step])
        #expect(status == 0 && output.contains("ok"), "\(output)")
        // Without recipients the step stops before anything is backed up or uploaded.
        let (refused, said) = try Self.run(
            ["bash", "-e", step], environment: ["SUPABACKUP_RECIPIENTS": "", "DATABASE_URL": "postgresql://x"])
        #expect(refused == 1 && said.contains("SUPABACKUP_RECIPIENTS") && !said.contains("supabackup:"), "\(said)")
    }

    @Test("the object-storage variants: systemd units verify, the workflow has the S3 settings")
    func objectStorageVariants() throws {
        let service = try Self.verifyUnits("supabackup-s3")
        #expect(
            service.contains("--dir ${BACKUP_LOCATION} --prune --keep-days 30")
                && service.contains("AWS_SECRET_ACCESS_KEY"))
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
            assert '--dir "$BACKUP_LOCATION" --prune --keep-days 30' in run and "supabackup verify" in run
            print("ok")
            """
        let (parsed, text) = try Self.run(["python3", "-c", script, Self.folder + "/github-actions-backup-s3.yml"])
        #expect(parsed == 0 && text.contains("ok"), "\(text)")
    }

    @Test("the cron line, run as cron runs it: the env file read literally ($ in a password), errors to mail and log")
    func cronLine() throws {
        let database = try TestDatabase("cron")
        // A password bash would expand ($$ is its pid, $HOME a path): systemd reads it literally.
        let password = "p4$$w0rd$HOME`x`"
        let role = "cron_\(database.name.suffix(8))"
        try database.execute(
            """
            CREATE ROLE \(role) LOGIN PASSWORD \(SQL.quoteLiteral(password));
            CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t VALUES (1), (2);
            GRANT SELECT ON public.t TO \(role);
            """)
        defer { try? database.execute("DROP OWNED BY \(role); DROP ROLE \(role)") }
        let directory = try TemporaryDirectory()
        let cron = try String(contentsOfFile: Self.folder + "/supabackup.cron", encoding: .utf8)
        #expect(cron.contains("MAILTO="))
        let line = try #require(
            cron.split(separator: "\n").first { !$0.hasPrefix("#") && $0.contains("supabackup backup") })
        // Fields: minute hour day month weekday user command...
        let fields = line.split(separator: " ", maxSplits: 6)
        #expect(fields.count == 7 && fields[5] == "supabackup")
        let url = URLComponents(string: database.url)!
        let envFile = directory.file("env")
        try """
        # the connection, as systemd's EnvironmentFile= reads it
        DATABASE_URL=postgresql://\(role)@\(url.host!):\(url.port!)\(url.path)
        PGPASSWORD=\(password)
        """.write(toFile: envFile, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory.file("backups"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.file("log"), withIntermediateDirectories: true)
        func command(_ envFile: String) -> String {
            String(fields[6])
                .replacingOccurrences(of: "/etc/supabackup/env", with: envFile)
                .replacingOccurrences(of: "/usr/local/bin/supabackup", with: CLI.binary)
                .replacingOccurrences(of: "/var/backups/supabackup", with: directory.file("backups"))
                .replacingOccurrences(of: "/var/log/supabackup", with: directory.file("log"))
        }
        // cron runs the command with sh; what it prints is mailed.
        let (status, mailed) = try Self.run(["sh", "-c", command(envFile)], environment: ["DATABASE_URL": ""])
        #expect(status == 0 && mailed.isEmpty, "a successful run mails nothing: \(mailed)")
        let backups = try BackupListing.list(in: directory.file("backups"))
        #expect(backups.count == 1 && backups.first?.rows == 2)
        let log = try String(contentsOfFile: directory.file("log/backup.log"), encoding: .utf8)
        #expect(log.contains(backups.first?.name ?? "?"))

        // A failure is mailed and logged, in one line without the password.
        try "DATABASE_URL=postgresql://\(role)@\(url.host!):\(url.port!)\(url.path)\nPGPASSWORD=wrong$HOME\n"
            .write(toFile: envFile, atomically: true, encoding: .utf8)
        let (_, failure) = try Self.run(["sh", "-c", command(envFile)], environment: ["DATABASE_URL": ""])
        #expect(failure.hasPrefix("supabackup: error:") && failure.contains("password"), "\(failure)")
        #expect(!failure.contains("wrong") && !failure.contains(password))
        let logged = try String(contentsOfFile: directory.file("log/backup.log"), encoding: .utf8)
        #expect(logged.contains(failure.trimmingCharacters(in: .newlines)))
    }

    @Test(
        "an env file line systemd would refuse is one error naming the file and line, exit 1",
        arguments: ["DÄTA=1", "1ABC=x", "no equals sign", "MY-VAR=x"])
    func malformedEnvFile(_ line: String) throws {
        let directory = try TemporaryDirectory()
        let envFile = directory.file("env")
        try "# comment\nGOOD=1\n\(line)\n".write(toFile: envFile, atomically: true, encoding: .utf8)
        let result = try CLI.run(["list", "--dir", directory.path], environment: ["SUPABACKUP_ENV_FILE": envFile])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("SUPABACKUP_ENV_FILE: \(envFile):3:"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    }
}
