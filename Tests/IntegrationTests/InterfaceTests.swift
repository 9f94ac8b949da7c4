import Foundation
import SupabackupKit
import TestSupport
import Testing

/// One way to name where backups are, `latest`, the short flags pg_dump users type, and help
/// that says what the code does: through the built binary, as users run it.
@Suite("One interface")
struct InterfaceTests {
    static func sample() throws -> TestDatabase {
        let source = try TestDatabase("iface")
        try source.run(sqlFile: "sample/schema.sql")
        try source.run(sqlFile: "sample/data.sql")
        return source
    }

    @Test("--dir, --out and SUPABACKUP_DIR name the same location on every command; latest is the newest backup")
    func location() throws {
        let source = try Self.sample()
        let work = try TemporaryDirectory()
        let folder = work.file("kept")
        // backup with today's spelling, then with the environment variable.
        let first = try CLI.run(["backup", "-d", source.url, "--out", folder, "--quiet"])
        #expect(first.status == 0, "\(first.stderr)")
        try source.execute(
            "INSERT INTO public.users (email, display_name) VALUES ('late@example.com', 'after-the-first-backup')")
        let second = try CLI.run(
            ["backup", "-d", source.url, "--quiet"], environment: ["SUPABACKUP_DIR": folder], directory: work.path)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(!FileManager.default.fileExists(atPath: work.file("backups")), "the variable was not used")
        let newest = second.lastLine
        #expect(newest > first.lastLine)

        for arguments in [["--dir", folder], ["--out", folder], []] {
            let environment = arguments.isEmpty ? ["SUPABACKUP_DIR": folder] : [:]
            let list = try CLI.run(["list"] + arguments, environment: environment, directory: work.path)
            #expect(list.status == 0 && list.stdout.contains(newest) && list.stdout.contains(first.lastLine))
            let verify = try CLI.run(["verify", "latest"] + arguments, environment: environment, directory: work.path)
            #expect(verify.status == 0, "\(verify.stderr)")
            #expect(
                verify.stdout.contains(newest) || verify.stderr.contains(newest), "\(verify.stdout)\(verify.stderr)")
            let cat = try CLI.run(
                ["cat", "latest", "users"] + arguments, environment: environment, directory: work.path)
            #expect(cat.status == 0 && cat.stdout.contains("after-the-first-backup"), "\(cat.stderr)")
        }
        let target = try TestDatabase("iface_latest")
        let restore = try CLI.run(
            ["restore", "latest", "-d", target.url, "--create-schema", "-t", "users", "--quiet"],
            environment: ["SUPABACKUP_DIR": folder])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(
            try target.scalar("SELECT count(*) FROM public.users WHERE display_name = 'after-the-first-backup'") == "1")
    }

    @Test("a backups folder that does not exist is one error, exit 64, on every command that reads")
    func missingLocation() throws {
        let work = try TemporaryDirectory()
        let missing = work.file("no-such-folder")
        let commands: [[String]] = [
            ["list"], ["restore", "latest", "--db-url", "postgresql://127.0.0.1:1/x"], ["verify", "latest"],
            ["cat", "latest", "t"], ["prune", "--keep-days", "30"], ["cat-object", "latest", "b/k"],
        ]
        for command in commands {
            let result = try CLI.run(command + ["--dir", missing])
            #expect(result.status == 64, "\(command): \(result.stderr)")
            #expect(
                result.stderr == "supabackup: error: no backups at \(missing): the folder does not exist "
                    + "(name the backups location with --dir or SUPABACKUP_DIR)\n", "\(command)")
        }
        #expect(!FileManager.default.fileExists(atPath: missing))
        let empty = work.file("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        let latest = try CLI.run(["verify", "latest", "--dir", empty])
        #expect(latest.status != 0 && latest.stderr.contains("latest: there is no complete backup"), "\(latest.stderr)")
    }

    @Test("pg_dump's short flags: -d, -n, -t, -T, -j")
    func shortFlags() throws {
        let source = try Self.sample()
        let work = try TemporaryDirectory()
        let result = try CLI.run(
            [
                "backup", "-d", source.url, "-n", "public", "-t", "users", "-t", "projects", "-T", "projects", "-j",
                "2",
                "--dir", work.path, "--json",
            ])
        #expect(result.status == 0, "\(result.stderr)")
        let archive = try BackupArchive.open(name: "latest", in: work.path)
        #expect(archive.manifest.tables.map(\.tableName.description) == ["public.users"])
    }

    @Test("on a terminal the output reads as sentences; key=value lines go to logs, or to a terminal with --verbose")
    func terminalOutput() throws {
        let source = try Self.sample()
        let work = try TemporaryDirectory()
        func backup(_ flags: [String], terminal: Bool) throws -> String {
            let arguments = [CLI.binary, "backup", "-d", source.url, "--dir", work.path] + flags
            guard terminal else { return try CLI.run(Array(arguments.dropFirst())).stderr }
            // script(1) gives the command a pseudo-terminal, as a person at a shell has.
            let command = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(
                separator: " ")
            return String(decoding: try Tool.run(["script", "-qec", command, "/dev/null"]), as: UTF8.self)
        }
        let log = try backup([], terminal: false)
        #expect(log.contains("table done") && log.contains("rows="), "\(log)")
        let screen = try backup([], terminal: true)
        #expect(screen.contains("backed up 12 tables"), "\(screen)")
        #expect(!screen.contains("rows=") && !screen.contains("table done"), "\(screen)")
        let verbose = try backup(["--verbose"], terminal: true)
        #expect(verbose.contains("table done") && verbose.contains("rows="), "\(verbose)")
    }

    @Test("help says what the code does")
    func help() throws {
        let backup = try CLI.run(["backup", "--help"]).stdout
        #expect(backup.contains("to 22"))
        #expect(!backup.contains("19 (small)"))
        #expect(!backup.contains("MFA factors (direct mode)"))
        #expect(backup.contains("-d, --db-url") && backup.contains("-j, --jobs") && backup.contains("-n, --schema"))
        #expect(!backup.contains("(default: $SUPABASE_SERVICE_ROLE_KEY)"))
        for command in ["backup", "restore", "list", "verify", "cat", "prune"] {
            let help = try CLI.run([command, "--help"]).stdout
            #expect(help.contains("--dir, --out <dir>") && help.contains("SUPABACKUP_DIR"), "\(command)")
        }
        // Descriptions are paragraphs wrapped at the width, not lines broken where the source broke them.
        for command in ["restore", "prune", "verify", "keygen", "cat", "backup"] {
            let help = try CLI.run([command, "--help"]).stdout
            let prose = help.components(separatedBy: "USAGE:")[0]
            for paragraph in prose.components(separatedBy: "\n\n") {
                let lines = paragraph.split(separator: "\n")
                for line in lines.dropLast() {
                    #expect(line.count >= 60, "\(command): a line broken mid-sentence: \(line)")
                }
            }
        }
        // A level the help allows is accepted.
        let level = try CLI.run(["backup", "--compression-level", "22", "--db-url", "postgresql://127.0.0.1:1/x"])
        #expect(!level.stderr.contains("compression-level"), "\(level.stderr)")
    }
}
