import ArgumentParser
import Foundation

/// Options for where backups live, shared by every command that takes `--dir` or `--out`.
struct StorageOptions: ParsableArguments {
    @Option(
        name: .customLong("s3-addressing"),
        help: ArgumentHelp(
            "For s3:// locations: path-style or virtual-hosted requests (default: path for a custom endpoint, virtual for AWS).",
            valueName: "path|virtual"))
    var addressing: String?

    /// Passes the choice to the storage layer, which also reads it from `SUPABACKUP_S3_ADDRESSING`.
    func apply() throws {
        guard let addressing else { return }
        guard ["path", "virtual"].contains(addressing) else {
            throw ValidationError("--s3-addressing must be 'path' or 'virtual', not '\(addressing)'")
        }
        setenv("SUPABACKUP_S3_ADDRESSING", addressing, 1)
    }
}
