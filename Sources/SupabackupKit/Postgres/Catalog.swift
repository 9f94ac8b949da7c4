import Foundation

/// A table as the database's catalog describes it.
public struct CatalogTable: Decodable, Sendable {
    public var oid: Int64
    public var schema: String
    public var name: String
    public var kind: RelationKind
    public var estimatedRows: Int64
    public var columns: [CatalogColumn]
    public var primaryKey: [String]?
    public var uniqueKeys: [[String]]?
    public var foreignKeys: [Manifest.ForeignKey]?

    public var tableName: TableName { TableName(schema: schema, name: name) }
    public func column(_ name: String) -> CatalogColumn? { columns.first { $0.name == name } }
}

public struct CatalogColumn: Decodable, Sendable {
    public var name: String
    public var type: String
    public var typeOid: Int64
    public var nullable: Bool
    public var generated: GeneratedKind
    public var identity: IdentityKind
    public var hasDefault: Bool

    public var isGenerated: Bool { generated != .none }
}

/// `pg_class.relkind` of the relations a restore writes to.
public enum RelationKind: String, Decodable, Sendable {
    case table = "r"
    case partitioned = "p"
}

/// `pg_attribute.attgenerated`.
public enum GeneratedKind: String, Decodable, Sendable {
    case none = ""
    case stored = "s"
}

/// `pg_attribute.attidentity`.
public enum IdentityKind: String, Decodable, Sendable {
    case none = ""
    case always = "a"
    case byDefault = "d"

    /// The manifest's spelling, nil for no identity.
    public var manifestValue: String? {
        switch self {
        case .none: return nil
        case .always: return "always"
        case .byDefault: return "by_default"
        }
    }
}

/// Catalog queries. They run inside the caller's transaction, so a backup sees the catalog
/// of its own snapshot.
public enum Catalog {
    /// Every ordinary and partitioned table of `schemas` (never partitions, views, or foreign
    /// tables) with columns, keys and foreign keys.
    public static func tables(in schemas: [String], on connection: PostgresConnection) throws -> [CatalogTable] {
        // format_type qualifies exactly the types outside search_path: pin it so backup and
        // restore sessions render the same type the same way.
        let saved = try connection.query("SELECT current_setting('search_path')").scalar ?? ""
        _ = try connection.query("SELECT set_config('search_path', 'pg_catalog', true)")
        let json = try connection.query(tablesQuery, [SQL.textArrayLiteral(schemas)]).scalar ?? "[]"
        _ = try connection.query("SELECT set_config('search_path', $1, true)", [saved])
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode([CatalogTable].self, from: Data(json.utf8))
    }

    /// Relations of `schemas` that look like tables over REST but are not: views, materialized
    /// views and foreign tables, with what each is.
    public static func nonTables(in schemas: [String], on connection: PostgresConnection) throws -> [TableName: String]
    {
        struct Row: Decodable { var schema: String, name: String, kind: String }
        let rows = try connection.decode(
            Row.self,
            """
            SELECT n.nspname AS schema, c.relname AS name,
                   CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'foreign table' END AS kind
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('v', 'm', 'f') AND n.nspname = ANY($1::text[])
            """, [SQL.textArrayLiteral(schemas)])
        return Dictionary(
            rows.map { (TableName(schema: $0.schema, name: $0.name), $0.kind) }, uniquingKeysWith: { first, _ in first }
        )
    }

    /// Schemas that exist, out of `names`.
    public static func existingSchemas(_ names: [String], on connection: PostgresConnection) throws -> Set<String> {
        let result = try connection.query(
            "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname = ANY($1::text[])",
            [SQL.textArrayLiteral(names)]
        )
        return Set(result.rows.compactMap { $0[0] })
    }

    static let tablesQuery = """
        SELECT coalesce(json_agg(json_build_object(
            'oid', c.oid::int8,
            'schema', n.nspname,
            'name', c.relname,
            'kind', c.relkind::text,
            'estimated_rows', greatest(c.reltuples, 0)::int8,
            'columns', (
                SELECT json_agg(json_build_object(
                    'name', a.attname,
                    'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                    'type_oid', a.atttypid::int8,
                    'nullable', NOT a.attnotnull,
                    'generated', a.attgenerated::text,
                    'identity', a.attidentity::text,
                    'has_default', a.atthasdef) ORDER BY a.attnum)
                FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
            'primary_key', (
                SELECT json_agg(a.attname ORDER BY k.ord)
                FROM pg_catalog.pg_constraint con
                CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                WHERE con.conrelid = c.oid AND con.contype = 'p'),
            'unique_keys', (
                SELECT json_agg((
                    SELECT json_agg(a.attname ORDER BY k.ord)
                    FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                    WHERE k.ord <= i.indnkeyatts) ORDER BY i.indexrelid)
                FROM pg_catalog.pg_index i
                WHERE i.indrelid = c.oid AND i.indisunique AND NOT i.indisprimary AND i.indisvalid
                  AND i.indpred IS NULL AND i.indexprs IS NULL),
            'foreign_keys', (
                SELECT json_agg(json_build_object(
                    'name', con.conname,
                    'columns', (
                        SELECT json_agg(a.attname ORDER BY k.ord)
                        FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum),
                    'referenced_schema', rn.nspname,
                    'referenced_table', rc.relname,
                    'referenced_columns', (
                        SELECT json_agg(a.attname ORDER BY k.ord)
                        FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum),
                    'deferrable', con.condeferrable) ORDER BY con.conname)
                FROM pg_catalog.pg_constraint con
                JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
                JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
                WHERE con.conrelid = c.oid AND con.contype = 'f' AND con.conparentid = 0)
            ) ORDER BY n.nspname, c.relname), '[]')
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY($1::text[])
        """
}
