/// The process exit status of each outcome, decided in one place from error types and codes,
/// never from message text.
public enum ExitStatus {
    public static let success: Int32 = 0
    /// Database, network or file failure; a failed restore changed nothing.
    public static let failure: Int32 = 1
    /// The archive is damaged or in a format this version cannot read.
    public static let damaged: Int32 = 3
    /// Bad arguments: unknown table, schema or backup name, malformed URL (sysexits EX_USAGE).
    public static let usage: Int32 = 64
    /// Killed by SIGINT or SIGTERM (128 + the signal).
    public static let interrupted: Int32 = 130
    public static let terminated: Int32 = 143

    public static func code(for error: Error) -> Int32 {
        switch error {
        case is UsageError:
            return usage
        case let error as ArchiveError:
            switch error.code {
            case .invalidName, .notFound: return usage
            case .damaged, .unsupported: return damaged
            default: return failure
            }
        case let error as PostgresError where error.code == .invalidConnectionString:
            return usage
        default:
            return failure
        }
    }
}
