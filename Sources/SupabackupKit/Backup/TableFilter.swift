/// A table named on the command line: `name`, `schema.name`, or with double-quoted parts
/// (`"My Schema"."Orders.2024"`) for names containing dots or quotes.
public struct TableFilter: Sendable, Hashable, CustomStringConvertible {
    public var schema: String?
    public var name: String

    public init(schema: String?, name: String) {
        self.schema = schema
        self.name = name
    }

    /// - Throws: `UsageError` when the text is not one or two names separated by a dot.
    public init(parsing text: String) throws {
        var parts: [String] = []
        var current = ""
        var quoted = false
        var wasQuoted = false
        var chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if quoted {
                if c == "\"" {
                    if i + 1 < chars.count && chars[i + 1] == "\"" {
                        current.append("\"")
                        i += 1
                    } else {
                        quoted = false
                    }
                } else {
                    current.append(c)
                }
            } else if c == "\"" {
                quoted = true
                wasQuoted = true
            } else if c == "." {
                parts.append(current)
                current = ""
                wasQuoted = false
            } else {
                current.append(c)
            }
            i += 1
        }
        chars.removeAll()
        if quoted { throw UsageError("unterminated quote in table name '\(text)'") }
        parts.append(current)
        guard parts.count <= 2, parts.allSatisfy({ !$0.isEmpty }) || (wasQuoted && parts.count == 1) else {
            throw UsageError("'\(text)' is not a table name (use name or schema.name; quote parts containing dots)")
        }
        if parts.count == 2 {
            schema = parts[0]
            name = parts[1]
        } else {
            schema = nil
            name = parts[0]
        }
    }

    public func matches(_ table: TableName) -> Bool {
        table.name == name && (schema == nil || schema == table.schema)
    }

    public var description: String {
        if let schema { return TableName(schema: schema, name: name).description }
        return SQL.displayIdentifier(name)
    }
}

/// A command-line mistake: unknown table, bad option value. Exit code 64 in the CLI.
public struct UsageError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// `invalidArgument`, `unknownName` or `notSupported`.
    public var errorCode: ErrorCode
    public init(_ message: String, code: ErrorCode = .invalidArgument) {
        self.message = message
        self.errorCode = code
    }
    public var description: String { message }
}

extension Array where Element == TableFilter {
    /// Applies `--table` / `--exclude-table` to `tables`.
    /// - Throws: `UsageError` naming the first filter that matches no table.
    public func select(from tables: [TableName], excluding excluded: [TableFilter]) throws -> [TableName] {
        for filter in self + excluded where !tables.contains(where: filter.matches) {
            throw UsageError("no table \(filter) in the selected schemas", code: .unknownName)
        }
        return tables.filter { table in
            (isEmpty || contains { $0.matches(table) }) && !excluded.contains { $0.matches(table) }
        }
    }
}
