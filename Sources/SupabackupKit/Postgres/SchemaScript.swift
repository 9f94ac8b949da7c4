import Foundation

/// The DDL of every object of the backed-up schemas (`SchemaCapture` builds it), in dependency
/// order and split as pg_dump splits it: pre-data (schemas, extensions, collations, types,
/// sequences, functions, aggregates, tables with their primary, unique and check constraints,
/// views, materialized views without data), then the rows, then post-data (indexes, foreign
/// keys, triggers, rules, row level security, policies, statistics, publications, materialized
/// view refreshes, comments, grants, default privileges).
public struct SchemaScript: Sendable, Equatable {
    public enum Section: String, Sendable {
        case preData = "pre-data"
        case postData = "post-data"
    }

    public struct Statement: Sendable, Equatable {
        public var section: Section
        /// `table`, `type`, `function`, `policy`, ...
        public var kind: String
        public var name: String
        public var sql: String
    }

    public var statements: [Statement]

    static let marker = "-- supabackup: "

    /// The file text: each statement under a marker line naming its section, kind and object.
    public func render() -> String {
        var text =
            "-- Schema captured by supabackup \(Supabackup.version). Apply in order; sections: pre-data, then the\n"
            + "-- table rows, then post-data. Each statement follows a '\(Self.marker)<section> <kind> <name>' line.\n"
            + "SET check_function_bodies = false;\n\n"
        for statement in statements {
            text +=
                Self.marker
                + "\(statement.section.rawValue) \(statement.kind) \(statement.name.replacingOccurrences(of: "\n", with: " "))\n"
            text += statement.sql + "\n\n"
        }
        return text
    }

    /// The object an access-control statement named `name` belongs to, among `keys` (each an
    /// object's `kind name`): such statements are named by that key, or the key and a grantee.
    static func object(of name: String, among keys: Set<String>) -> String? {
        var candidate = Substring(name)
        while !keys.contains(String(candidate)) {
            guard let space = candidate.lastIndex(of: " ") else { return nil }
            candidate = candidate[..<space]
        }
        return String(candidate)
    }

    public init(statements: [Statement]) {
        self.statements = statements
    }

    /// Reads a file written by `render()`.
    public init(parsing text: String) throws {
        var statements: [Statement] = []
        var current: Statement?
        var body: [Substring] = []
        func close() {
            if var statement = current {
                statement.sql = body.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
                statements.append(statement)
            }
            body = []
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(Self.marker) {
                close()
                let parts = line.dropFirst(Self.marker.count).split(separator: " ", maxSplits: 2).map(String.init)
                guard parts.count == 3, let section = Section(rawValue: parts[0]) else {
                    throw ArchiveError(
                        .damaged, "has a malformed statement marker: \(line.prefix(80))", file: "schema.sql")
                }
                current = Statement(section: section, kind: parts[1], name: parts[2], sql: "")
            } else if current != nil {
                body.append(line)
            }
        }
        close()
        self.statements = statements
    }
}
