import Foundation

/// What ties the captured objects together: pg_depend, the extensions they use, their comments,
/// their access control, and what the source holds that schema.sql does not carry.
extension SchemaCapture.Capture {
    /// `m(classid, objid, key, part)`: every captured object (`$1` catalogs, `$2` oids, `$3` keys),
    /// every extension but plpgsql (which every database has), and their parts, which pg_depend
    /// records on their own: a relation's defaults, constraints, constraint indexes, row type and
    /// its array, identity sequences, a view's rewrite rule; a type's array, relation, domain
    /// constraints, multirange; an extension's members.
    static let membersCTE = """
        given(classid, objid, key) AS (
            SELECT c::regclass::oid, o::oid, k FROM unnest($1::text[], $2::text[], $3::text[]) AS u(c, o, k)
        ), n(classid, objid, key) AS (
            SELECT * FROM given
            UNION ALL SELECT 'pg_extension'::regclass, e.oid, 'extension ' || e.extname FROM pg_extension e
            WHERE e.extname <> 'plpgsql'
        ), m(classid, objid, key, part) AS (
            SELECT classid, objid, key, 'self' FROM n
            UNION ALL SELECT 'pg_attrdef'::regclass, ad.oid, n.key, 'part' FROM n JOIN pg_attrdef ad ON ad.adrelid = n.objid
                WHERE n.classid = 'pg_class'::regclass
            UNION ALL SELECT 'pg_constraint'::regclass, co.oid, n.key, 'part' FROM n JOIN pg_constraint co ON co.conrelid = n.objid
                WHERE n.classid = 'pg_class'::regclass AND co.contype <> 'f' AND co.convalidated
            UNION ALL SELECT 'pg_class'::regclass, co.conindid, n.key, 'part' FROM n JOIN pg_constraint co ON co.conrelid = n.objid
                WHERE n.classid = 'pg_class'::regclass AND co.contype IN ('p', 'u', 'x') AND co.conindid <> 0
            UNION ALL SELECT 'pg_type'::regclass, c.reltype, n.key, 'part' FROM n JOIN pg_class c ON c.oid = n.objid
                WHERE n.classid = 'pg_class'::regclass AND c.reltype <> 0
            UNION ALL SELECT 'pg_type'::regclass, t.typarray, n.key, 'part' FROM n JOIN pg_class c ON c.oid = n.objid
                JOIN pg_type t ON t.oid = c.reltype WHERE n.classid = 'pg_class'::regclass AND t.typarray <> 0
            UNION ALL SELECT 'pg_rewrite'::regclass, r.oid, n.key, 'part' FROM n JOIN pg_rewrite r ON r.ev_class = n.objid
                WHERE n.classid = 'pg_class'::regclass AND r.rulename = '_RETURN'
            UNION ALL SELECT 'pg_class'::regclass, d.objid, n.key, 'part' FROM n JOIN pg_depend d ON d.refobjid = n.objid
                WHERE n.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                  AND d.classid = 'pg_class'::regclass AND d.deptype = 'i'
            UNION ALL SELECT 'pg_type'::regclass, t.typarray, n.key, 'part' FROM n JOIN pg_type t ON t.oid = n.objid
                WHERE n.classid = 'pg_type'::regclass AND t.typarray <> 0
            UNION ALL SELECT 'pg_class'::regclass, t.typrelid, n.key, 'part' FROM n JOIN pg_type t ON t.oid = n.objid
                WHERE n.classid = 'pg_type'::regclass AND t.typrelid <> 0
            UNION ALL SELECT 'pg_constraint'::regclass, co.oid, n.key, 'part' FROM n JOIN pg_constraint co ON co.contypid = n.objid
                WHERE n.classid = 'pg_type'::regclass AND co.convalidated
            UNION ALL SELECT 'pg_type'::regclass, x.oid, n.key, 'part' FROM n JOIN pg_range r ON r.rngtypid = n.objid
                CROSS JOIN LATERAL (VALUES (r.rngmultitypid), ((SELECT typarray FROM pg_type WHERE oid = r.rngmultitypid))) x(oid)
                WHERE n.classid = 'pg_type'::regclass AND x.oid <> 0
            UNION ALL SELECT d.classid, d.objid, n.key, 'extension' FROM n JOIN pg_depend d ON d.refobjid = n.objid
                WHERE n.classid = 'pg_extension'::regclass AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
        )
        """

    struct Edge: Decodable { var dependent: String; var dependency: String }
    struct Comment: Decodable { var key: String; var type: String; var identity: String; var description: String }
    struct Extension: Decodable { var oid: String; var name: String; var schema: String; var inScope: Bool }
    struct Links: Decodable { var extensions: [Extension]; var edges: [Edge]; var comments: [Comment] }

    /// One query for what ties the objects together (planning the catalog queries is most of
    /// what schema capture costs): pg_depend between every captured object, the extensions
    /// they use, and their comments. Adds the extensions and records which node follows which.
    mutating func links() throws {
        let all = members + excluded.map { ("pg_class", $0.oid, "excluded \($0.name)") }
        let links = try connection.decode(
            Links.self,
            """
            WITH \(Self.membersCTE)
            SELECT
              (SELECT coalesce(json_agg(json_build_object('oid', e.oid::text, 'name', e.extname, 'schema', s.nspname,
                                                          'in_scope', s.nspname = ANY($4::text[])) ORDER BY e.extname), '[]')
               FROM pg_extension e JOIN pg_namespace s ON s.oid = e.extnamespace WHERE e.extname <> 'plpgsql') AS extensions,
              (SELECT coalesce(json_agg(json_build_object('dependent', x.dependent, 'dependency', x.dependency)), '[]') FROM (
                  SELECT DISTINCT a.key AS dependent, b.key AS dependency FROM pg_depend d
                  JOIN m a ON a.classid = d.classid AND a.objid = d.objid
                  JOIN m b ON b.classid = d.refclassid AND b.objid = d.refobjid
                  WHERE d.deptype = 'n' AND a.key <> b.key) x) AS edges,
              (SELECT coalesce(json_agg(json_build_object('key', x.key, 'type', x.type, 'identity', x.identity,
                                                          'description', x.description)), '[]') FROM (
                  SELECT DISTINCT ON (d.classoid, d.objoid, d.objsubid) m.key, o.type, o.identity, d.description
                  FROM pg_description d JOIN m ON m.classid = d.classoid AND m.objid = d.objoid AND m.part <> 'extension'
                  CROSS JOIN LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) o
                  WHERE m.key NOT LIKE 'extension %'
                  ORDER BY d.classoid, d.objoid, d.objsubid) x) AS comments
            """,
            [
                SQL.textArrayLiteral(all.map(\.0)), SQL.textArrayLiteral(all.map(\.1)),
                SQL.textArrayLiteral(all.map(\.2)), schemaList,
            ]
        ).first!
        let used = Set(links.edges.filter { !$0.dependent.hasPrefix("extension ") }.map(\.dependency))
        for row in links.extensions where row.inScope || used.contains("extension \(row.name)") {
            let schema = SQL.quoteIdentifier(row.schema)
            var after: [String] = []
            if !row.inScope && !has("schema \(row.schema)") {
                after.append(add(.preData, "schema", row.schema, "CREATE SCHEMA IF NOT EXISTS \(schema);"))
            }
            add(
                .preData, "extension", row.name,
                "CREATE EXTENSION IF NOT EXISTS \(SQL.quoteIdentifier(row.name)) WITH SCHEMA \(schema);",
                catalog: "pg_extension", oid: row.oid, after: after)
        }
        var index: [String: Int] = [:]
        for (position, node) in nodes.enumerated() { index[node.key] = position }
        for edge in links.edges {
            if let position = index[edge.dependent] { nodes[position].after.insert(edge.dependency) }
        }
        commentRows = links.comments
    }

    /// A materialized view reading another is refreshed after it.
    mutating func refreshInDependencyOrder() {
        let refreshed = Set(nodes.filter { $0.statement.kind == "refresh" }.map(\.statement.name))
        for position in nodes.indices where nodes[position].statement.kind == "refresh" {
            let view = nodes.first { $0.key == "materialized-view \(nodes[position].statement.name)" }
            for dependency in view?.after ?? [] where dependency.hasPrefix("materialized-view ") {
                let name = String(dependency.dropFirst("materialized-view ".count))
                if refreshed.contains(name) { nodes[position].after.insert("refresh \(name)") }
            }
        }
    }

    /// Comments on every captured object and its columns and constraints (read by `links()`).
    mutating func comments() {
        let keys = Set(nodes.map(\.key))
        let keywords = [
            "table": "TABLE", "view": "VIEW", "materialized view": "MATERIALIZED VIEW", "sequence": "SEQUENCE",
            "index": "INDEX", "type": "TYPE", "composite type": "TYPE", "domain": "DOMAIN", "function": "FUNCTION",
            "procedure": "PROCEDURE", "aggregate": "AGGREGATE", "schema": "SCHEMA", "collation": "COLLATION",
            "trigger": "TRIGGER", "rule": "RULE", "policy": "POLICY", "statistics object": "STATISTICS",
            "publication": "PUBLICATION", "event trigger": "EVENT TRIGGER", "table constraint": "CONSTRAINT",
            "domain constraint": "CONSTRAINT", "table column": "COLUMN", "view column": "COLUMN",
            "materialized view column": "COLUMN", "composite type column": "COLUMN",
        ]
        for row in commentRows {
            guard keys.contains(row.key), let keyword = keywords[row.type] else { continue }
            var identity = row.identity
            if row.type == "domain constraint", let range = identity.range(of: " on ", options: .backwards) {
                identity.replaceSubrange(range, with: " ON DOMAIN ")
            }
            add(
                .postData, "comment", "\(row.type) \(identity)",
                "COMMENT ON \(keyword) \(identity) IS \(SQL.quoteLiteral(row.description));", after: [row.key])
        }
    }

    /// Every created object's ACL as in the source, whatever the target's default privileges
    /// add; then the schemas' own default privileges, and the database-wide ones.
    mutating func accessControl() throws {
        let keys = Set(nodes.map(\.key))
        let objects = accessObjects.filter { keys.contains($0.key) }
        var statements = try AccessControl.statements(for: objects, on: connection)
        statements += try AccessControl.columnGrants(columnGrantTables.filter { keys.contains($0.key) }, on: connection)
        statements += try AccessControl.defaultPrivileges(in: schemaNames, on: connection)
        let owners = Set(objects.map(\.key) + columnGrantTables.map(\.key))
        for statement in statements {
            let owner = SchemaScript.object(of: statement.name, among: owners)
            add(
                statement.section, statement.kind, statement.name, statement.sql, after: owner.map { [$0] } ?? [],
                // Keys in the order given: grants in the order of the source's ACL arrays.
                key: "\(statement.kind) " + String(repeating: "0", count: 8 - String(nodes.count).count)
                    + "\(nodes.count)")
        }
    }

    /// The backed-up schemas' names.
    var schemaNames: [String] {
        nodes.filter { $0.statement.kind == "schema" }.map(\.statement.name)
    }

    /// What the schemas hold that schema.sql does not carry: said in the backup's warnings.
    mutating func uncaptured() throws {
        guard present.uncaptured else { return }
        struct Row: Decodable { var what: String; var names: String }
        for row in try rows(
            Row.self,
            """
            SELECT what, string_agg(name, ', ' ORDER BY name) AS names FROM (
                SELECT 'foreign tables' AS what, c.oid::regclass::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'f' AND n.nspname = ANY($2::text[])
                UNION ALL SELECT 'operators', o.oid::regoperator::text FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
                WHERE n.nspname = ANY($2::text[]) AND \(Self.notExtensionMember("pg_operator", "o.oid"))
                UNION ALL SELECT 'operator classes', quote_ident(n.nspname) || '.' || quote_ident(o.opcname) FROM pg_opclass o
                JOIN pg_namespace n ON n.oid = o.opcnamespace
                WHERE n.nspname = ANY($2::text[]) AND \(Self.notExtensionMember("pg_opclass", "o.oid"))
                UNION ALL SELECT 'operator families', quote_ident(n.nspname) || '.' || quote_ident(o.opfname) FROM pg_opfamily o
                JOIN pg_namespace n ON n.oid = o.opfnamespace
                WHERE n.nspname = ANY($2::text[]) AND \(Self.notExtensionMember("pg_opfamily", "o.oid"))
                UNION ALL SELECT 'base types', format_type(t.oid, NULL) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = ANY($2::text[]) AND t.typtype = 'b' AND NOT (t.typelem <> 0 AND t.typlen = -1)
                  AND \(Self.notExtensionMember("pg_type", "t.oid"))
                UNION ALL SELECT 'text search configurations', c.oid::regconfig::text FROM pg_ts_config c
                JOIN pg_namespace n ON n.oid = c.cfgnamespace
                WHERE n.nspname = ANY($2::text[]) AND \(Self.notExtensionMember("pg_ts_config", "c.oid"))
                UNION ALL SELECT 'text search dictionaries', d.oid::regdictionary::text FROM pg_ts_dict d
                JOIN pg_namespace n ON n.oid = d.dictnamespace
                WHERE n.nspname = ANY($2::text[]) AND \(Self.notExtensionMember("pg_ts_dict", "d.oid"))
                UNION ALL SELECT 'conversions', quote_ident(n.nspname) || '.' || quote_ident(c.conname) FROM pg_conversion c
                JOIN pg_namespace n ON n.oid = c.connamespace
                WHERE n.nspname = ANY($2::text[]) AND \(Self.notExtensionMember("pg_conversion", "c.oid"))
                UNION ALL SELECT 'casts', format_type(c.castsource, NULL) || ' AS ' || format_type(c.casttarget, NULL) FROM pg_cast c
                JOIN pg_type s ON s.oid = c.castsource JOIN pg_type t ON t.oid = c.casttarget
                JOIN pg_namespace sn ON sn.oid = s.typnamespace JOIN pg_namespace tn ON tn.oid = t.typnamespace
                WHERE (sn.nspname = ANY($2::text[]) OR tn.nspname = ANY($2::text[])) AND c.oid >= 16384
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_cast'::regclass AND d.objid = c.oid
                                  AND d.deptype IN ('i', 'a'))
                  AND \(Self.notExtensionMember("pg_cast", "c.oid"))
            ) x GROUP BY what ORDER BY what
            """)
        {
            warnings.append("schema.sql does not carry \(row.what): \(row.names)")
        }
    }
}
