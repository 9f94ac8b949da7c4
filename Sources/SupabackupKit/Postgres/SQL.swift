/// Quoting for SQL text built by this tool. Every identifier and literal goes through here;
/// nothing a user or a catalog supplies is spliced into SQL unquoted.
public enum SQL {
    /// `"name"` with embedded double quotes doubled.
    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A standard string literal (`standard_conforming_strings = on`, which every session sets).
    public static func quoteLiteral(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
    }

    /// A text[] literal, for passing a list of names as one parameter.
    public static func textArrayLiteral(_ values: [String]) -> String {
        let items = values.map { value in
            "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                + "\""
        }
        return "{" + items.joined(separator: ",") + "}"
    }

    /// The name as a user would type it: bare when it is a plain lowercase identifier.
    public static func displayIdentifier(_ name: String) -> String {
        let plain =
            !name.isEmpty
            && name.utf8.allSatisfy { byte in
                (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57) || byte == 95
            } && !(name.utf8.first! >= 48 && name.utf8.first! <= 57)
        return plain ? name : quoteIdentifier(name)
    }

    /// The JSON string literal for `text` (as `to_json(text)` renders it).
    public static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
