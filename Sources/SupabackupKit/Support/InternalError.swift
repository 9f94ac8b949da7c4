/// A broken promise inside supabackup, not something the user typed or the database did: a
/// failure (exit 1), never a usage error.
public struct InternalError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "internal error: \(message)" }
}
