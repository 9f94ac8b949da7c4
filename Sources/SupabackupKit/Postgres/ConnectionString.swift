import CLibpq
import Foundation

/// A libpq connection string (URI or `key=value` conninfo) that never shows its password.
public struct ConnectionString: Sendable, CustomStringConvertible {
    /// The string handed to libpq. Never print it; use `description`.
    public let raw: String
    private let secrets: [String]
    /// False when neither the string nor PGDATABASE names a database: libpq then connects to
    /// the one named like the user, which surprises people who wrote `postgresql://u@host:5432`.
    public let namesDatabase: Bool

    /// Validates `raw` with libpq's own parser.
    /// - Throws: `PostgresError` with the password removed from libpq's message.
    public init(_ raw: String) throws {
        self.raw = raw
        var secrets: [String] = []
        var namesDatabase = !(ProcessInfo.processInfo.environment["PGDATABASE"] ?? "").isEmpty
        if !raw.isEmpty {
            var errorMessage: UnsafeMutablePointer<CChar>? = nil
            guard let options = PQconninfoParse(raw, &errorMessage) else {
                let text = errorMessage.map { String(cString: $0) } ?? "invalid connection string"
                if let errorMessage { PQfreemem(errorMessage) }
                let cleaned = text.trimmingCharacters(in: .whitespacesAndNewlines)
                throw PostgresError(
                    code: .invalidConnectionString,
                    message: "invalid database URL: " + Self.scrub(cleaned, secrets: Self.guessSecrets(raw))
                )
            }
            defer { PQconninfoFree(options) }
            var option = options
            while let keyword = option.pointee.keyword {
                if String(cString: keyword) == "dbname", let value = option.pointee.val, value.pointee != 0 {
                    namesDatabase = true
                }
                if String(cString: keyword) == "password", let value = option.pointee.val {
                    let password = String(cString: value)
                    if !password.isEmpty { secrets.append(password) }
                }
                // libpq takes any text here and fails only when connecting, as a connection error.
                if String(cString: keyword) == "port", let value = option.pointee.val {
                    let port = String(cString: value)
                    let valid = port.split(separator: ",", omittingEmptySubsequences: false).allSatisfy { part in
                        part.isEmpty || Int(part).map { (1...65535).contains($0) } == true
                    }
                    if !valid {
                        throw PostgresError(
                            code: .invalidConnectionString,
                            message: Self.scrub(
                                "invalid database URL: the port \"\(port)\" is not a number (the database goes after a slash: host:5432/dbname)",
                                secrets: Self.guessSecrets(raw)))
                    }
                }
                option += 1
            }
        }
        self.namesDatabase = namesDatabase
        secrets.append(contentsOf: Self.guessSecrets(raw))
        self.secrets = secrets.filter { !$0.isEmpty }.sorted { $0.count > $1.count }
    }

    /// The connection string with any password replaced by `***`.
    public var description: String { redact(raw) }

    /// Removes the passwords this connection string carries from `text` (e.g. a libpq error)
    /// where a password can stand: a URI's userinfo, a `password=` value, or a whole token equal
    /// to one (`"p%zz"` in a parse error). Never inside other words: with the password `a`, the
    /// rest of the message stays readable.
    public func redact(_ text: String) -> String {
        Self.scrub(text, secrets: secrets)
    }

    private static func scrub(_ text: String, secrets: [String]) -> String {
        var result = text
        // scheme://user:PASSWORD@host
        result = replacing(in: result, pattern: #"(://[^:/@\s"']*:)[^@\s"']*@"#, with: "$1***@")
        // password=VALUE, quoted or not
        result = replacing(in: result, pattern: #"(?i)(password\s*=\s*)('[^']*'|[^\s&'"]+)"#, with: "$1***")
        for secret in secrets where !secret.isEmpty {
            result = replacingToken(secret, in: result)
        }
        return result
    }

    private static func replacing(in text: String, pattern: String, with template: String) -> String {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return text }
        return regex.stringByReplacingMatches(
            in: text, range: NSRange(text.startIndex..., in: text), withTemplate: template)
    }

    /// `secret` replaced where it stands as a whole token: not preceded or followed by a letter,
    /// digit or any of its own kind of character.
    private static func replacingToken(_ secret: String, in text: String) -> String {
        var result = ""
        var rest = text[...]
        func isWordCharacter(_ character: Character?) -> Bool {
            guard let character else { return false }
            return character.isLetter || character.isNumber || "_-~.%+".contains(character)
        }
        while let range = rest.range(of: secret) {
            let prefix = rest[..<range.lowerBound]
            let before = prefix.last ?? result.last
            let after = rest[range.upperBound...].first
            result += prefix
            result += isWordCharacter(before) || isWordCharacter(after) ? String(rest[range]) : "***"
            rest = rest[range.upperBound...]
        }
        return result + rest
    }

    /// Password spellings found by pattern, including percent-encoded ones libpq would decode.
    private static func guessSecrets(_ raw: String) -> [String] {
        var found: [String] = []
        // URI userinfo: scheme://user:password@host
        if let schemeEnd = raw.range(of: "://") {
            let rest = raw[schemeEnd.upperBound...]
            let authority = rest.prefix { $0 != "/" && $0 != "?" }
            if let at = authority.lastIndex(of: "@") {
                let userinfo = authority[..<at]
                if let colon = userinfo.firstIndex(of: ":") {
                    let password = String(userinfo[userinfo.index(after: colon)...])
                    found.append(password)
                    if let decoded = password.removingPercentEncoding { found.append(decoded) }
                }
            }
        }
        // password=... as a URI query parameter or a conninfo keyword.
        var search = raw[...]
        while let range = search.range(of: "password=", options: .caseInsensitive) {
            var value = search[range.upperBound...]
            if value.first == "'" {
                value = value.dropFirst().prefix { $0 != "'" }
            } else {
                value = value.prefix { $0 != "&" && $0 != " " }
            }
            found.append(String(value))
            if let decoded = String(value).removingPercentEncoding { found.append(decoded) }
            search = search[range.upperBound...]
        }
        return found
    }
}

extension PostgresConnection {
    /// Connects; a failure's message never repeats the password the string may hold.
    static func open(_ connection: ConnectionString) throws -> PostgresConnection {
        do {
            return try PostgresConnection(conninfo: connection.raw)
        } catch var error as PostgresError {
            error.message = connection.redact(error.message)
            throw error
        }
    }
}
