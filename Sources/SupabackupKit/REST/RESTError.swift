/// A REST request failed in a way retrying will not fix (or retries ran out).
public struct RESTError: Error, CustomStringConvertible, Sendable {
    /// HTTP status, nil when no response arrived.
    public var status: Int?
    /// PostgREST's or PostgreSQL's error code (`PGRST205`, `23503`, ...).
    public var code: String?
    public var message: String
    public var details: String?
    /// What the user should do about it.
    public var advice: String?
    /// The table the request was about.
    public var table: TableName?

    public var description: String {
        var text = ""
        if let table { text += "table \(table): " }
        text += message
        if let details, !details.isEmpty { text += " (\(details))" }
        if let status { text += " [HTTP \(status)\(code.map { " \($0)" } ?? "")]" }
        if let advice { text += "; \(advice)" }
        return text
    }
}
