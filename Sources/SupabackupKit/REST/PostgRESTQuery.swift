/// Builds PostgREST query parameters. Pure, so quoting is unit-tested.
enum PostgRESTQuery {
    /// A column name as PostgREST's parser reads it: bare when plain, else double-quoted.
    static func field(_ name: String) -> String {
        let plain =
            !name.isEmpty
            && name.utf8.allSatisfy { byte in
                (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57) || byte == 95
            }
        return plain ? name : quoted(name)
    }

    /// A double-quoted value for `or=(...)`/`in.(...)`, with `\` escaping `\` and `"`.
    static func quoted(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// `select=`: every column, casting to text those the archive keeps as text, and jsonb
    /// (whose JSON null would otherwise look like SQL NULL).
    static func select(_ columns: [Manifest.Column]) -> String {
        columns.map { column in
            column.encoding == .text || column.encoding == .jsonOmitNull
                ? field(column.name) + "::text" : field(column.name)
        }.joined(separator: ",")
    }

    static func order(_ columns: [String]) -> String {
        columns.map { field($0) + ".asc" }.joined(separator: ",")
    }

    /// The keyset condition "rows after `values`" for key `columns`, as an `or=` parameter:
    /// `(a.gt."1",and(a.eq."1",b.gt."x"))`.
    static func after(_ columns: [String], _ values: [String]) -> (String, String) {
        var terms: [String] = []
        for i in 0..<columns.count {
            var parts = (0..<i).map { "\(field(columns[$0])).eq.\(quoted(values[$0]))" }
            parts.append("\(field(columns[i])).gt.\(quoted(values[i]))")
            terms.append(parts.count == 1 ? parts[0] : "and(" + parts.joined(separator: ",") + ")")
        }
        return ("or", "(" + terms.joined(separator: ",") + ")")
    }
}
