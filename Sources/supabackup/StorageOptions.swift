import ArgumentParser
import Foundation
import SupabackupKit

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

/// `--with-storage` and which buckets: the project's Storage files, through its Storage API.
struct StorageFilesOptions: ParsableArguments {
    @Flag(
        name: .customLong("with-storage"),
        help:
            "Also the project's Storage buckets and files, through <project URL>/storage/v1 with the service key (SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY), in either mode."
    )
    var withStorage = false

    @Option(
        name: .customLong("bucket"), help: ArgumentHelp("Only this bucket (id or name; repeatable).", valueName: "b"))
    var buckets: [String] = []

    @Option(name: .customLong("exclude-bucket"), help: ArgumentHelp("Skip this bucket (repeatable).", valueName: "b"))
    var excludeBuckets: [String] = []

    func validate() throws {
        if !withStorage && !(buckets.isEmpty && excludeBuckets.isEmpty) {
            throw ValidationError("--bucket and --exclude-bucket apply with --with-storage")
        }
    }

    /// The selection, or nil without `--with-storage`. The files are not in PostgreSQL, so the
    /// project URL and key are needed in direct mode too.
    func selection(_ connection: ConnectionOptions, jobs: Int) throws -> StorageSelection? {
        guard withStorage else { return nil }
        guard let settings = try connection.restSettings(required: false, purpose: "--with-storage") else {
            throw UsageError(
                "--with-storage needs the project URL and service key, in direct mode too (the files are not in PostgreSQL; they go through the Storage API): set SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY, or --rest-url and --service-key-file"
            )
        }
        return StorageSelection(settings: settings, buckets: buckets, excludeBuckets: excludeBuckets, jobs: jobs)
    }
}
