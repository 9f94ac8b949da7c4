/// What kind of failure an error is, whatever its type: each error type of supabackup maps its
/// own codes onto these, and the exit status follows from them alone (`ExitStatus`).
public enum ErrorCode: String, CaseIterable, Sendable {
    /// Bad arguments: an option value, a malformed URL or connection string.
    case invalidArgument
    /// A table, schema or backup the user named does not exist.
    case unknownName
    /// The chosen transport cannot do what was asked (e.g. --create-schema over REST).
    case notSupported
    /// The archive's bytes do not match its manifest, or cannot be decoded.
    case damagedArchive
    /// The archive is in a format this version does not read.
    case unsupportedFormat
    /// The archive is encrypted and no identity given opens it (a wrong key).
    case decryption
    /// Reading or writing local files failed.
    case io
    /// The database refused or failed a statement.
    case database
    /// No connection to the database, or it was lost.
    case connection
    /// The REST API failed or could not be reached.
    case rest
    /// The target cannot take the backup as it is (nothing was written).
    case targetMismatch
    /// Object storage refused a request or could not be reached.
    case storage
    /// A broken promise inside supabackup.
    case internalFailure
}

/// An error that says which `ErrorCode` it is.
public protocol CodedError: Error {
    var errorCode: ErrorCode { get }
}

/// The process exit status of each outcome, decided in one place from error codes, never from
/// message text.
public enum ExitStatus {
    public static let success: Int32 = 0
    /// Database, network or file failure; a failed restore changed nothing.
    public static let failure: Int32 = 1
    /// The restore finished, but some Storage objects could not be written back (listed).
    public static let partial: Int32 = 2
    /// The archive is damaged or in a format this version cannot read.
    public static let damaged: Int32 = 3
    /// The archive is encrypted and none of the identities given opens it (a wrong key).
    public static let wrongKey: Int32 = 4
    /// Bad arguments: unknown table, schema or backup name, malformed URL (sysexits EX_USAGE).
    public static let usage: Int32 = 64
    /// Killed by SIGINT or SIGTERM (128 + the signal).
    public static let interrupted: Int32 = 130
    public static let terminated: Int32 = 143

    public static func code(for code: ErrorCode) -> Int32 {
        switch code {
        case .invalidArgument, .unknownName, .notSupported: return usage
        case .damagedArchive, .unsupportedFormat: return damaged
        case .decryption: return wrongKey
        case .io, .database, .connection, .rest, .storage, .targetMismatch, .internalFailure: return failure
        }
    }

    /// Errors of other libraries (Foundation, NIO) are failures.
    public static func code(for error: Error) -> Int32 {
        (error as? CodedError).map { code(for: $0.errorCode) } ?? failure
    }
}

extension UsageError: CodedError {}

extension ArchiveError: CodedError {
    public var errorCode: ErrorCode {
        switch code {
        case .invalidName: return .invalidArgument
        case .notFound: return .unknownName
        case .damaged: return .damagedArchive
        case .unsupported: return .unsupportedFormat
        case .locked: return .decryption
        case .identityNeeded: return .invalidArgument
        default: return .io
        }
    }
}

extension PostgresError: CodedError {
    public var errorCode: ErrorCode {
        switch code {
        case .invalidConnectionString: return .invalidArgument
        case .connectionFailed, .connectionLost: return .connection
        default: return isConnectionFailure ? .connection : .database
        }
    }
}

extension RESTError: CodedError {
    public var errorCode: ErrorCode { .rest }
}

extension RestoreError: CodedError {
    public var errorCode: ErrorCode { underlying.errorCode }
}

extension BackupError: CodedError {
    public var errorCode: ErrorCode { underlying.errorCode }
}

extension RestoreValidationError: CodedError {
    public var errorCode: ErrorCode { .targetMismatch }
}

extension InternalError: CodedError {
    public var errorCode: ErrorCode { .internalFailure }
}
