import Foundation
import SupabackupKit

/// How many connections the tests' backups read with: `SUPABACKUP_TEST_JOBS` (default 4), so
/// scripts/test.sh can run the suites with `--jobs 4` and again with `--jobs 1`. With more than
/// one job every table over one block is split into ranges, so the small fixtures exercise
/// the split path too.
public enum TestJobs {
    public static var jobs: Int { Int(ProcessInfo.processInfo.environment["SUPABACKUP_TEST_JOBS"] ?? "") ?? 4 }
    public static let splitSize = "8kB"

    /// Backup arguments get `--jobs N --split-tables-larger-than 8kB` unless they set --jobs.
    static func arguments(_ arguments: [String]) -> [String] {
        guard arguments.first == "backup", !arguments.contains("--jobs") else { return arguments }
        return arguments + ["--jobs", String(jobs), "--split-tables-larger-than", splitSize]
    }
}

extension BackupOptions {
    /// These options with the tests' jobs and split size.
    public var forTests: BackupOptions {
        var options = self
        options.jobs = TestJobs.jobs
        options.splitBytes = ByteSize.parse(TestJobs.splitSize)!
        return options
    }
}
