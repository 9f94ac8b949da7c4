/// Decides each column's `ValueEncoding` and who renders it (client or server) from the
/// catalog's type information.
///
/// Types are resolved through domains; json-bearing arrays and composites are found by
/// walking element and attribute types. The rendering follows PostgreSQL's
/// `json_categorize_type` (src/backend/utils/adt/json.c), which decides by type OID after
/// looking through domains, never by what the text looks like.
final class TypeClassifier {
    private struct TypeRow: Decodable {
        var oid: Int64
        var type: String
        var baseType: Int64
        var element: Int64
        var category: String
        var relation: Int64
        /// The element type's array type, when this type is that array (`_int4` for int4).
        var isTrueArray: Bool
        var delimiter: String
        /// A user-defined cast to json by function, which `to_json` calls (types >= 16384 only).
        var jsonCast: Bool
    }

    private static let json: Int64 = 114
    private static let jsonb: Int64 = 3802

    /// Built-in types whose `to_json` is the output text as a JSON string (JSONTYPE_OTHER): the
    /// client renders them from COPY text. Each is in the oracle test's list with edge values;
    /// any other type is left to the server. Output styles are pinned by `Session`.
    static let textTypes: Set<Int64> = [
        18,  // "char"
        19,  // name
        25,  // text
        26,  // oid (a string: to_json categorizes by OID, not by "looks numeric")
        17,  // bytea
        142,  // xml
        600, 601, 602, 603, 604, 628, 718,  // point, lseg, path, box, polygon, line, circle
        650, 869, 774, 829,  // cidr, inet, macaddr8, macaddr
        790,  // money
        1042, 1043,  // character, character varying
        1083, 1266, 1186,  // time, timetz, interval
        1560, 1562,  // bit, bit varying
        2950,  // uuid
        3220,  // pg_lsn
        3614, 3615,  // tsvector, tsquery
        3904, 3906, 3908, 3910, 3912, 3926,  // int4range, numrange, tsrange, tstzrange, daterange, int8range
    ]

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

    /// How the client renders a column of this type in the given encoding, or nil when the
    /// server must (`to_json(column)`).
    func renderKind(forType oid: Int64, encoding: ValueEncoding) throws -> ClientRendering.Kind? {
        switch encoding {
        // The value's text output as a string: exactly COPY's text, unescaped.
        case .text: return .string
        case .jsonOmitNull: return .verbatim
        case .json: return try kind(ofBase: try baseType(oid), allowArray: true)
        }
    }

    /// json_categorize_type for a type already resolved through domains.
    private func kind(ofBase base: Int64, allowArray: Bool) throws -> ClientRendering.Kind? {
        switch base {
        case 16: return .boolean
        case 20, 21, 23: return .integer
        case 700, 701, 1700: return .number
        // date's ISO output (DateStyle ISO) is its XSD form already.
        case 1082: return .string
        case 1114, 1184: return .timestamp
        case Self.jsonb: return .verbatim
        case Self.json: return nil
        default: break
        }
        guard let row = try row(base) else { return nil }
        if row.isTrueArray {
            // Arrays of scalars whose array output separates elements with a comma (box uses `;`).
            guard allowArray else { return nil }
            let elementBase = try baseType(row.element)
            guard let elementRow = try self.row(elementBase), elementRow.delimiter == ",",
                let kind = try kind(ofBase: elementBase, allowArray: false), kind != .verbatim
            else { return nil }
            return .array(kind)
        }
        if row.type == "c" { return nil }
        if Self.textTypes.contains(base) { return .string }
        // Enums print their label; one with a cast to json is rendered by that cast.
        if row.type == "e" && base >= 16384 && !row.jsonCast { return .string }
        return nil
    }

    private func row(_ oid: Int64) throws -> TypeRow? {
        if types == nil {
            let rows = try connection.decode(
                TypeRow.self,
                """
                SELECT t.oid::int8 AS oid, t.typtype::text AS type, t.typbasetype::int8 AS base_type,
                       t.typelem::int8 AS element, t.typcategory::text AS category, t.typrelid::int8 AS relation,
                       (t.typelem <> 0 AND t.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc
                        AND e.typarray = t.oid) AS is_true_array,
                       t.typdelim::text AS delimiter,
                       EXISTS (SELECT FROM pg_catalog.pg_cast c WHERE c.castsource = t.oid
                               AND c.casttarget = 'pg_catalog.json'::pg_catalog.regtype AND c.castmethod = 'f') AS json_cast
                FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem
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
