/// Decides each column's `ValueEncoding` from the catalog's type information.
///
/// Types are resolved through domains; json-bearing arrays and composites are found by
/// walking element and attribute types.
final class TypeClassifier {
    private struct TypeRow: Decodable {
        var oid: Int64
        var type: String
        var baseType: Int64
        var element: Int64
        var category: String
        var relation: Int64
    }

    private static let json: Int64 = 114
    private static let jsonb: Int64 = 3802

    private let connection: PostgresConnection
    private var types: [Int64: TypeRow]?
    private var containsJSONCache: [Int64: Bool] = [:]

    init(connection: PostgresConnection) {
        self.connection = connection
    }

    func encoding(forType oid: Int64) throws -> ValueEncoding {
        let base = try baseType(oid)
        if base == Self.jsonb { return .jsonOmitNull }
        if base == Self.json { return .text }
        return try containsJSON(base, depth: 0) ? .text : .json
    }

    private func row(_ oid: Int64) throws -> TypeRow? {
        if types == nil {
            let rows = try connection.decode(
                TypeRow.self,
                """
                SELECT oid::int8 AS oid, typtype::text AS type, typbasetype::int8 AS base_type, typelem::int8 AS element,
                       typcategory::text AS category, typrelid::int8 AS relation FROM pg_catalog.pg_type
                """)
            types = Dictionary(rows.map { ($0.oid, $0) }, uniquingKeysWith: { first, _ in first })
        }
        return types?[oid]
    }

    private func baseType(_ oid: Int64) throws -> Int64 {
        var current = oid
        for _ in 0..<32 {
            guard let row = try row(current), row.type == "d" else { return current }
            current = row.baseType
        }
        return current
    }

    private func containsJSON(_ oid: Int64, depth: Int) throws -> Bool {
        if let cached = containsJSONCache[oid] { return cached }
        guard depth < 16 else { return false }
        let base = try baseType(oid)
        var result = false
        if base == Self.json || base == Self.jsonb {
            result = true
        } else if let row = try row(base) {
            if row.category == "A" && row.element != 0 {
                result = try containsJSON(row.element, depth: depth + 1)
            } else if row.type == "c" && row.relation != 0 {
                struct Attribute: Decodable { var type: Int64 }
                let attributes = try connection.decode(
                    Attribute.self,
                    "SELECT atttypid::int8 AS type FROM pg_catalog.pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped",
                    [String(row.relation)])
                for attribute in attributes where try containsJSON(attribute.type, depth: depth + 1) {
                    result = true
                    break
                }
            }
        }
        containsJSONCache[oid] = result
        return result
    }
}
