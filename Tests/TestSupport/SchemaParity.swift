import Foundation

/// pg_dump as the oracle for schema.sql: two databases' `pg_dump --schema-only`, compared object
/// by object. Objects are split on pg_dump's `-- Name: ...; Type: ...; Schema: ...` headers;
/// ownership (the `Owner:` field, `OWNER TO` statements) and the order of objects are ignored,
/// and nothing else.
public enum SchemaParity {
    /// The database's objects: "Type Schema.Name" -> its statements.
    public static func objects(url: String) throws -> [String: [String]] {
        let text = String(
            decoding: try Tool.run(["pg_dump", "--schema-only", "--no-sync", "--dbname", url]), as: UTF8.self)
        var objects: [String: [String]] = [:]
        var current: String?
        let header = /^-- (?:Data for )?Name: (.*); Type: (.*); Schema: (.*); Owner: .*$/
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if let match = line.wholeMatch(of: header) {
                let key = "\(match.output.2) \(match.output.3).\(match.output.1)"
                current = key
                // pg_dump names some objects twice (a table and its ACL both say Name: t): keep both apart.
                objects[key, default: []].append("--")
                continue
            }
            guard let current, !line.hasPrefix("--"), !line.hasPrefix("\\restrict"), !line.hasPrefix("\\unrestrict"),
                !line.contains(" OWNER TO "), !line.trimmingCharacters(in: .whitespaces).isEmpty
            else { continue }
            objects[current, default: []].append(String(line))
        }
        return objects
    }

    /// Every object missing from, extra in, or different in `target`, one line each (with both
    /// versions for a difference).
    public static func differences(source: String, target: String) throws -> [String] {
        let (a, b) = (try objects(url: source), try objects(url: target))
        var lines: [String] = []
        for key in Set(a.keys).union(b.keys).sorted() {
            switch (a[key], b[key]) {
            case (nil, _): lines.append("extra \(key)")
            case (_, nil): lines.append("missing \(key)")
            case (let x?, let y?) where x != y:
                lines.append(
                    "different \(key):\n  source: \(x.joined(separator: "\n          "))\n  target: \(y.joined(separator: "\n          "))"
                )
            default: break
            }
        }
        return lines
    }
}
