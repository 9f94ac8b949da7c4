import Foundation

/// Access control for what schema.sql creates, reproduced exactly.
///
/// A target's default privileges (a fresh Supabase project grants ALL on every new table,
/// sequence and function in `public` to anon, authenticated and service_role) add grants the
/// source may have revoked. Like pg_dump, each object's ACL is reset and then granted as in the
/// source; unlike pg_dump, the reset revokes whatever the target holds, not just the built-in
/// defaults. The owner keeps its rights (the restoring role owns what it creates).
enum AccessControl {
    /// An object whose ACL schema.sql sets.
    struct Object {
        /// The create statement's `kind name` (`table public.users`), so the restore can leave
        /// alone the ACL of objects that existed before it.
        var key: String
        /// `TABLE`, `SEQUENCE`, `ROUTINE`, `TYPE`, `SCHEMA`.
        var keyword: String
        /// The object as SQL names it (`public.users`, `public.f(integer)`, `"my schema"`).
        var sqlName: String
        /// How to find it in the catalog: table, ACL and owner columns, `acldefault` kind, oid cast.
        var catalog: (table: String, acl: String, owner: String, defaultKind: String, cast: String)
    }

    static func table(_ name: String, key: String) -> Object {
        Object(key: key, keyword: "TABLE", sqlName: name, catalog: ("pg_class", "relacl", "relowner", "r", "regclass"))
    }
    static func sequence(_ name: String, key: String) -> Object {
        Object(
            key: key, keyword: "SEQUENCE", sqlName: name, catalog: ("pg_class", "relacl", "relowner", "s", "regclass"))
    }
    /// A function, procedure or aggregate (`ROUTINE` covers the three).
    static func routine(_ signature: String, key: String) -> Object {
        Object(
            key: key, keyword: "ROUTINE", sqlName: signature,
            catalog: ("pg_proc", "proacl", "proowner", "f", "regprocedure"))
    }
    /// A type or domain.
    static func type(_ name: String, key: String) -> Object {
        Object(key: key, keyword: "TYPE", sqlName: name, catalog: ("pg_type", "typacl", "typowner", "T", "regtype"))
    }
    static func schema(_ name: String) -> Object {
        Object(
            key: "schema \(name)", keyword: "SCHEMA", sqlName: SQL.quoteIdentifier(name),
            catalog: ("pg_namespace", "nspacl", "nspowner", "n", "regnamespace"))
    }

    /// One grantee's privileges on an object (or one of its columns).
    struct Grant: Decodable {
        var object: String
        var column: String?
        var grantee: String
        var grantable: Bool
        var privileges: String
        var option: String { grantable ? " WITH GRANT OPTION" : "" }
    }

    /// A grantee as SQL names it: `PUBLIC` for the pseudo-role 0.
    static let granteeSQL =
        "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END"

    /// The statements for `objects`: per object a reset (`acl`), then one `grant` per grantee.
    /// The source's ACLs are read with one query per catalog, not one per object (a remote
    /// project with hundreds of tables would pay a round trip for each).
    static func statements(for objects: [Object], on connection: PostgresConnection) throws -> [SchemaScript.Statement]
    {
        var grants: [String: [Grant]] = [:]
        var groups: [String: [Object]] = [:]
        for object in objects { groups["\(object.catalog)", default: []].append(object) }
        for group in groups.values {
            let c = group[0].catalog
            // The effective ACL (NULL means the built-in default), less the owner's own entry.
            for grant in try connection.decode(
                Grant.self,
                """
                SELECT n.name AS object, \(granteeSQL) AS grantee, a.is_grantable AS grantable,
                       string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS privileges
                FROM unnest($1::text[]) AS n(name)
                JOIN pg_catalog.\(c.table) o ON o.oid = n.name::pg_catalog.\(c.cast)
                CROSS JOIN LATERAL pg_catalog.aclexplode(
                    coalesce(o.\(c.acl), pg_catalog.acldefault('\(c.defaultKind)', o.\(c.owner))))
                    WITH ORDINALITY a(grantor, grantee, privilege_type, is_grantable, position)
                WHERE a.grantee <> o.\(c.owner)
                GROUP BY 1, 2, 3 ORDER BY 1, min(a.position)
                """, [SQL.textArrayLiteral(group.map(\.sqlName))])
            {
                grants["\(c.table) \(grant.object)", default: []].append(grant)
            }
        }
        var statements: [SchemaScript.Statement] = []
        for object in objects {
            statements.append(
                SchemaScript.Statement(section: .postData, kind: "acl", name: object.key, sql: reset(object)))
            for grant in grants["\(object.catalog.table) \(object.sqlName)"] ?? [] {
                statements.append(
                    SchemaScript.Statement(
                        section: .postData, kind: "grant", name: "\(object.key) \(grant.grantee)",
                        sql:
                            "GRANT \(grant.privileges) ON \(object.keyword) \(object.sqlName) TO \(grant.grantee)\(grant.option);"
                    ))
            }
        }
        return statements
    }

    /// Revokes from every grantee but the owner whatever the target holds on the object.
    static func reset(_ object: Object) -> String {
        let c = object.catalog
        let revoke = SQL.quoteLiteral("REVOKE ALL ON \(object.keyword) \(object.sqlName) FROM ")
        return """
            DO $supabackup$ DECLARE grantee text; BEGIN
              FOR grantee IN SELECT DISTINCT \(granteeSQL)
                FROM pg_catalog.\(c.table) o,
                     pg_catalog.aclexplode(coalesce(o.\(c.acl), pg_catalog.acldefault('\(c.defaultKind)', o.\(c.owner)))) a
                WHERE o.oid = \(SQL.quoteLiteral(object.sqlName))::pg_catalog.\(c.cast) AND a.grantee <> o.\(c.owner)
              LOOP EXECUTE \(revoke) || grantee; END LOOP;
            END $supabackup$;
            """
    }

    /// Column privileges (`attacl`) of `tables`, keyed to their table, in one query.
    static func columnGrants(_ tables: [(name: String, key: String)], on connection: PostgresConnection) throws
        -> [SchemaScript.Statement]
    {
        var grants: [String: [Grant]] = [:]
        for grant in try connection.decode(
            Grant.self,
            """
            SELECT n.name AS object, quote_ident(c.attname) AS column, \(granteeSQL) AS grantee, a.is_grantable AS grantable,
                   string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS privileges
            FROM unnest($1::text[]) AS n(name)
            JOIN pg_catalog.pg_attribute c ON c.attrelid = n.name::pg_catalog.regclass
            CROSS JOIN LATERAL pg_catalog.aclexplode(c.attacl)
                WITH ORDINALITY a(grantor, grantee, privilege_type, is_grantable, position)
            WHERE c.attnum > 0 AND NOT c.attisdropped AND c.attacl IS NOT NULL
            GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, min(a.position)
            """, [SQL.textArrayLiteral(tables.map(\.name))])
        {
            grants[grant.object, default: []].append(grant)
        }
        var statements: [SchemaScript.Statement] = []
        for table in tables {
            for grant in grants[table.name] ?? [] {
                let column = grant.column ?? ""
                let privileges = grant.privileges.split(separator: ",").map {
                    "\($0.trimmingCharacters(in: .whitespaces)) (\(column))"
                }
                statements.append(
                    SchemaScript.Statement(
                        section: .postData, kind: "grant", name: "\(table.key) \(grant.grantee)",
                        sql:
                            "GRANT \(privileges.joined(separator: ", ")) ON TABLE \(table.name) TO \(grant.grantee)\(grant.option);"
                    ))
            }
        }
        return statements
    }

    /// `ALTER DEFAULT PRIVILEGES` of `schemas` and the database-wide ones (`FOR ROLE r` without
    /// `IN SCHEMA`, such as a revoke of EXECUTE from PUBLIC), set by the app or its platform: each
    /// entry reset in the target and then granted as in the source.
    static func defaultPrivileges(in schemas: [String], on connection: PostgresConnection) throws -> [SchemaScript
        .Statement]
    {
        let kinds = ["r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"]
        // acldefault's letter for each kind: what a role's database-wide entry is when it has none.
        let defaults = ["r": "r", "S": "s", "f": "f", "T": "T", "n": "n"]
        var statements: [SchemaScript.Statement] = []
        var previous: String?
        struct Row: Decodable {
            var role: String, schema: String?, kind: String, grantee: String, grantable: Bool, privileges: String
            var isRole: Bool
        }
        for row in try connection.decode(
            Row.self,
            """
            SELECT quote_ident(pg_catalog.pg_get_userbyid(d.defaclrole)) AS role, quote_ident(n.nspname) AS schema,
                   d.defaclobjtype::text AS kind, \(granteeSQL) AS grantee, a.is_grantable AS grantable,
                   string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS privileges, a.grantee = d.defaclrole AS is_role
            FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace,
                 pg_catalog.aclexplode(d.defaclacl) WITH ORDINALITY a(grantor, grantee, privilege_type, is_grantable, position)
            WHERE (n.nspname = ANY($1::text[]) OR d.defaclnamespace = 0) AND d.defaclobjtype IN ('r', 'S', 'f', 'T', 'n')
            GROUP BY 1, 2, 3, 4, 5, 7 ORDER BY 2 NULLS FIRST, 1, 3, min(a.position)
            """, [SQL.textArrayLiteral(schemas)])
        {
            guard let kind = kinds[row.kind], let fallback = defaults[row.kind] else { continue }
            let role = row.role
            let entry = "FOR ROLE \(role)" + (row.schema.map { " IN SCHEMA \($0)" } ?? "")
            let name = "\(role) \(row.schema ?? "*") \(kind.lowercased())"
            let roleOid = "\(SQL.quoteLiteral(role))::pg_catalog.regrole"
            if previous != name {
                previous = name
                let revoke = SQL.quoteLiteral("ALTER DEFAULT PRIVILEGES \(entry) REVOKE ALL ON \(kind) FROM ")
                // A database-wide entry the target lacks is the built-in default (PUBLIC may
                // execute functions and use types): reset from that; a schema's adds to it.
                let current =
                    row.schema.map { schema in
                        """
                        pg_catalog.aclexplode((SELECT d.defaclacl FROM pg_catalog.pg_default_acl d
                            WHERE d.defaclrole = \(roleOid) AND d.defaclobjtype = \(SQL.quoteLiteral(row.kind))
                              AND d.defaclnamespace = \(SQL.quoteLiteral(schema))::pg_catalog.regnamespace)) a
                        """
                    }
                        ?? """
                        pg_catalog.aclexplode(coalesce((SELECT d.defaclacl FROM pg_catalog.pg_default_acl d
                            WHERE d.defaclrole = \(roleOid) AND d.defaclobjtype = \(SQL.quoteLiteral(row.kind)) AND d.defaclnamespace = 0),
                            pg_catalog.acldefault(\(SQL.quoteLiteral(fallback)), \(roleOid)))) a
                        """
                statements.append(
                    SchemaScript.Statement(
                        section: .postData, kind: "default-acl", name: name,
                        sql: """
                            DO $supabackup$ DECLARE grantee text; BEGIN
                              FOR grantee IN SELECT DISTINCT \(granteeSQL) FROM \(current) WHERE a.grantee <> \(roleOid)
                              LOOP EXECUTE \(revoke) || grantee; END LOOP;
                            END $supabackup$;
                            """))
            }
            // The role's own rights on what it creates are the owner's; they need no entry.
            guard !row.isRole else { continue }
            statements.append(
                SchemaScript.Statement(
                    section: .postData, kind: "default-acl", name: "\(name) \(row.grantee)",
                    sql:
                        "ALTER DEFAULT PRIVILEGES \(entry) GRANT \(row.privileges) ON \(kind) TO \(row.grantee)\(row.grantable ? " WITH GRANT OPTION" : "");"
                ))
        }
        return statements
    }
}
