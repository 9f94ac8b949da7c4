import Foundation

/// The tables PostgREST's OpenAPI (Swagger 2.0) document describes for one schema.
///
/// Column order comes from the document's own key order (PostgREST lists properties in column
/// order), so the object is walked with `JSONScanner`, not decoded into an unordered dictionary.
struct OpenAPISchema {
    struct Column {
        var name: String
        /// PostgreSQL's type name (`int32`/`int64` normalised to `integer`/`bigint`).
        var type: String
        var required: Bool
        var hasDefault: Bool
        var primaryKey: Bool
        /// `(table, column)` of a single-column foreign key in the same schema.
        var references: (table: String, column: String)?
    }

    struct Table {
        var name: String
        var columns: [Column]
        /// False for relations PostgREST cannot insert into. True for tables and also for
        /// auto-updatable views, which the document does not tell apart (see `PostgRESTClient.isView`).
        var insertable: Bool
        var primaryKey: [String] { columns.filter(\.primaryKey).map(\.name) }
    }

    var tables: [Table]

    init(document: [UInt8]) throws {
        let tables = try document.withUnsafeBytes { bytes -> [Table] in
            guard let top = JSONScanner.members(bytes, in: 0..<bytes.count) else {
                throw RESTError(message: "the OpenAPI document is not a JSON object")
            }
            func member(_ name: String, of members: [JSONScanner.Member]) -> Range<Int>? {
                members.first { JSONScanner.decodeString(UnsafeRawBufferPointer(rebasing: bytes[$0.key])) == name }?
                    .value
            }
            var insertable = Set<String>()
            if let paths = member("paths", of: top), let entries = JSONScanner.members(bytes, in: paths) {
                for entry in entries {
                    guard let path = JSONScanner.decodeString(UnsafeRawBufferPointer(rebasing: bytes[entry.key])),
                        path.hasPrefix("/"), !path.hasPrefix("/rpc/"),
                        let operations = JSONScanner.members(bytes, in: entry.value)
                    else { continue }
                    if member("post", of: operations) != nil { insertable.insert(String(path.dropFirst())) }
                }
            }
            guard let definitions = member("definitions", of: top),
                let entries = JSONScanner.members(bytes, in: definitions)
            else {
                return []
            }
            var tables: [Table] = []
            for entry in entries {
                guard let name = JSONScanner.decodeString(UnsafeRawBufferPointer(rebasing: bytes[entry.key])),
                    let definition = JSONScanner.members(bytes, in: entry.value)
                else { continue }
                var required = Set<String>()
                if let list = member("required", of: definition),
                    let array = try? JSONSerialization.jsonObject(with: Data(bytes[list])) as? [String]
                {
                    required = Set(array)
                }
                var columns: [Column] = []
                if let properties = member("properties", of: definition),
                    let props = JSONScanner.members(bytes, in: properties)
                {
                    for prop in props {
                        guard let column = JSONScanner.decodeString(UnsafeRawBufferPointer(rebasing: bytes[prop.key])),
                            let object = try? JSONSerialization.jsonObject(with: Data(bytes[prop.value]))
                                as? [String: Any]
                        else { continue }
                        columns.append(Self.column(column, object, required: required.contains(column)))
                    }
                }
                tables.append(Table(name: name, columns: columns, insertable: insertable.contains(name)))
            }
            return tables
        }
        self.tables = tables
    }

    static func column(_ name: String, _ object: [String: Any], required: Bool) -> Column {
        var type = (object["format"] as? String) ?? (object["type"] as? String) ?? "text"
        switch type {
        case "int32": type = "integer"
        case "int64": type = "bigint"
        case "int32[]": type = "integer[]"
        case "int64[]": type = "bigint[]"
        default: break
        }
        let description = (object["description"] as? String) ?? ""
        var references: (String, String)?
        if let start = description.range(of: "<fk table='"),
            let tableEnd = description[start.upperBound...].range(of: "'"),
            let columnStart = description[tableEnd.upperBound...].range(of: "column='"),
            let columnEnd = description[columnStart.upperBound...].range(of: "'")
        {
            references = (
                String(description[start.upperBound..<tableEnd.lowerBound]),
                String(description[columnStart.upperBound..<columnEnd.lowerBound])
            )
        }
        return Column(
            name: name, type: type, required: required, hasDefault: object["default"] != nil,
            primaryKey: description.contains("<pk/>"), references: references)
    }

    /// How a column of this type is written in the archive when read over REST.
    static func encoding(forType type: String) -> ValueEncoding {
        switch type {
        case "jsonb": return .jsonOmitNull
        case "json", "json[]", "jsonb[]": return .text
        default: return .json
        }
    }
}

extension RESTError {
    init(message: String) {
        self.init(status: nil, code: nil, message: message, details: nil, advice: nil, table: nil)
    }
}
