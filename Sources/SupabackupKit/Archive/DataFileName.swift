import Crypto

/// Derives a data file name from a table name. Any character may occur in an identifier, so
/// every byte outside `[A-Za-z0-9_-]` is percent-encoded; names that would exceed file-name
/// limits are shortened with a hash, and names equal but for case get a suffix (for
/// case-insensitive file systems).
public struct DataFileName {
    private var taken: Set<String> = []

    public init() {}

    /// `data/<schema>.<table>.ndjson.zst`, unique among the names this value has returned.
    public mutating func next(for table: TableName) -> String {
        var stem = Self.encode(table.schema) + "." + Self.encode(table.name)
        if stem.utf8.count > 180 {
            let digest = SHA256.hash(data: Array((table.schema + "\u{0}" + table.name).utf8))
            let hex = digest.prefix(8).hex
            stem = String(stem.utf8.prefix(160))! + "~" + hex
        }
        var candidate = stem
        var counter = 2
        while taken.contains(candidate.lowercased()) {
            candidate = stem + "~\(counter)"
            counter += 1
        }
        taken.insert(candidate.lowercased())
        return "data/" + candidate + ".ndjson.zst"
    }

    static func encode(_ identifier: String) -> String {
        var out = ""
        for byte in identifier.utf8 {
            let plain =
                (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57)
                || byte == 95 || byte == 45
            if plain {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
