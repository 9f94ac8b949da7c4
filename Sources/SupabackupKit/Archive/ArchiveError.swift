/// A problem with an archive or the backup folder.
public struct ArchiveError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let raw: String
        /// Reading or writing files failed (permissions, full disk, ...).
        public static let io = Code(raw: "io")
        /// The archive's contents do not match its manifest or cannot be decoded.
        public static let damaged = Code(raw: "damaged")
        /// A backup name or path the user gave is not acceptable.
        public static let invalidName = Code(raw: "invalid name")
        /// No backup by that name.
        public static let notFound = Code(raw: "not found")
        /// The archive was written in a format this version does not read.
        public static let unsupported = Code(raw: "unsupported")
        /// The archive is encrypted and no identity given opens it.
        public static let locked = Code(raw: "locked")
        /// The archive is encrypted and no identity was given at all (a usage error).
        public static let identityNeeded = Code(raw: "identity needed")
        public var description: String { raw }
    }

    public var code: Code
    public var message: String
    /// The file the error is about, relative to the backup folder, when there is one.
    public var file: String?

    public init(_ code: Code, _ message: String, file: String? = nil) {
        self.code = code
        self.message = message
        self.file = file
    }

    public var description: String {
        if let file { return "\(file): \(message)" }
        return message
    }
}
