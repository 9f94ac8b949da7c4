import Foundation

/// One function per kind of object: each reads every object of its kind in one query and adds
/// its statement with the catalog object it creates (for pg_depend) and the nodes it must
/// follow that pg_depend does not record (an index after its table).
extension SchemaCapture.Capture {
    /// `name` of an object as `schema.name`, quoted.
    static func qualified(_ namespace: String, _ name: String) -> String {
        "quote_ident(\(namespace).nspname) || '.' || quote_ident(\(name))"
    }

    /// A reloptions array as `WITH (...)` items, values quoted: `fillfactor='70'`.
    static func options(_ array: String, prefix: String = "") -> String {
        """
        (SELECT string_agg('\(prefix)' || split_part(o, '=', 1) || '=' || quote_literal(substr(o, strpos(o, '=') + 1)), ', ')
         FROM unnest(\(array)) o)
        """
    }

    /// Not an extension's member (CREATE EXTENSION makes those).
    static func notExtensionMember(_ catalog: String, _ oid: String) -> String {
        """
        NOT EXISTS (SELECT 1 FROM pg_depend member WHERE member.classid = '\(catalog)'::regclass AND member.objid = \(oid) AND member.deptype = 'e')
        """
    }

    static let platform = SQL.textArrayLiteral(SchemaCapture.platformSchemas)

    /// A sequence's options as CREATE SEQUENCE and an identity column take them, from the
    /// `pg_sequence` row `q`.
    static func sequenceOptions(_ q: String) -> String {
        """
        'START WITH ' || \(q).seqstart || ' INCREMENT BY ' || \(q).seqincrement || ' MINVALUE ' || \(q).seqmin
        || ' MAXVALUE ' || \(q).seqmax || ' CACHE ' || \(q).seqcache || CASE WHEN \(q).seqcycle THEN ' CYCLE' ELSE '' END
        """
    }

    /// ` COLLATE schema.name` of the collation whose oid `column` holds.
    static func collate(_ column: String) -> String {
        """
        (SELECT ' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
         FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = \(column))
        """
    }

    mutating func schemas() throws {
        for row in try rows(
            OidAndName.self,
            """
            SELECT n.oid::text AS oid, n.nspname AS name FROM pg_namespace n
            WHERE (n.nspname = ANY($2::text[])
                   OR n.oid IN (SELECT relnamespace FROM pg_class WHERE oid = ANY($1::oid[]))) AND \(Self.notExtensionMember("pg_namespace", "n.oid")) ORDER BY 2
            """)
        {
            add(
                .preData, "schema", row.name, "CREATE SCHEMA IF NOT EXISTS \(SQL.quoteIdentifier(row.name));",
                catalog: "pg_namespace", oid: row.oid)
            accessObjects.append(AccessControl.schema(row.name))
        }
    }

    mutating func collations() throws {
        guard present.collations else { return }
        for row in try rows(
            Object.self,
            """
            SELECT c.oid::text AS oid, \(Self.qualified("n", "c.collname")) AS name,
                   'CREATE COLLATION ' || \(Self.qualified("n", "c.collname")) || ' (provider = '
                   || CASE c.collprovider WHEN 'i' THEN 'icu, locale = ' || quote_literal(coalesce(c.colliculocale, c.collcollate))
                      ELSE 'libc, lc_collate = ' || quote_literal(c.collcollate) || ', lc_ctype = ' || quote_literal(c.collctype) END
                   || CASE WHEN NOT c.collisdeterministic THEN ', deterministic = false' ELSE '' END || ');' AS sql
            FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
            WHERE n.nspname = ANY($2::text[]) AND \(Self.notExtensionMember("pg_collation", "c.oid")) ORDER BY 2
            """)
        {
            add(.preData, "collation", row.name, row.sql, catalog: "pg_collation", oid: row.oid)
        }
    }

    /// Enums, composite types, ranges and domains of the schemas, and those the tables' columns
    /// use from elsewhere (through arrays, domains, composites and ranges).
    mutating func types() throws {
        guard present.types else { return }
        struct Row: Decodable {
            var oid: String; var name: String; var kind: String; var sql: String; var later: String?
        }
        let collation = Self.collate
        for row in try rows(
            Row.self,
            """
            -- Built-in types (oids below 16384) are never the app's: following them made this 100 times slower.
            WITH RECURSIVE used(oid) AS (
                SELECT a.atttypid FROM pg_attribute a
                WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid >= 16384
                UNION
                SELECT x FROM used u JOIN pg_type t ON t.oid = u.oid,
                    LATERAL (SELECT t.typelem UNION ALL SELECT t.typbasetype
                             UNION ALL SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = t.typrelid AND t.typtype = 'c' AND a.attnum > 0
                             UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid) v(x)
                WHERE x >= 16384
            )
            SELECT t.oid::text AS oid, format_type(t.oid, NULL) AS name, CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END AS kind,
              CASE t.typtype
              WHEN 'e' THEN 'CREATE TYPE ' || format_type(t.oid, NULL) || ' AS ENUM (' || coalesce((SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '') || ');'
              WHEN 'c' THEN 'CREATE TYPE ' || format_type(t.oid, NULL) || ' AS (' || coalesce((
                  SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                         || CASE WHEN a.attcollation <> at.typcollation THEN \(collation("a.attcollation")) ELSE '' END, ', ' ORDER BY a.attnum)
                  FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '') || ');'
              WHEN 'r' THEN (SELECT 'CREATE TYPE ' || format_type(t.oid, NULL) || ' AS RANGE (subtype = ' || format_type(r.rngsubtype, NULL)
                  || CASE WHEN NOT opc.opcdefault THEN ', subtype_opclass = ' || quote_ident(opn.nspname) || '.' || quote_ident(opc.opcname) ELSE '' END
                  || CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN ', collation = ' || substr(\(collation("r.rngcollation")), 10) ELSE '' END
                  || CASE WHEN r.rngcanonical <> 0 THEN ', canonical = ' || r.rngcanonical::regproc::text ELSE '' END
                  || CASE WHEN r.rngsubdiff <> 0 THEN ', subtype_diff = ' || r.rngsubdiff::regproc::text ELSE '' END
                  || ', multirange_type_name = ' || format_type(r.rngmultitypid, NULL) || ');'
                  FROM pg_range r JOIN pg_type st ON st.oid = r.rngsubtype JOIN pg_opclass opc ON opc.oid = r.rngsubopc
                  JOIN pg_namespace opn ON opn.oid = opc.opcnamespace WHERE r.rngtypid = t.oid)
              ELSE 'CREATE DOMAIN ' || format_type(t.oid, NULL) || ' AS ' || format_type(t.typbasetype, t.typtypmod)
                  || CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation THEN \(collation("t.typcollation")) ELSE '' END
                  || coalesce(' DEFAULT ' || pg_get_expr(t.typdefaultbin, 0), '') || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
                  || coalesce((SELECT string_agg(' CONSTRAINT ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid), '' ORDER BY c.conname)
                               FROM pg_constraint c WHERE c.contypid = t.oid AND c.convalidated), '') || ';'
              END AS sql,
              (SELECT string_agg('ALTER DOMAIN ' || format_type(t.oid, NULL) || ' ADD CONSTRAINT ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid) || ';', E'\\n' ORDER BY c.conname)
               FROM pg_constraint c WHERE c.contypid = t.oid AND NOT c.convalidated) AS later
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
            WHERE (n.nspname = ANY($2::text[]) OR t.oid IN (SELECT oid FROM used)) AND n.nspname <> ALL($3::text[])
              AND t.typtype IN ('e', 'c', 'r', 'd')
              AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
              AND \(Self.notExtensionMember("pg_type", "t.oid"))
            ORDER BY 2
            """, [relationList, schemaList, Self.platform])
        {
            let key = add(.preData, row.kind, row.name, row.sql, catalog: "pg_type", oid: row.oid)
            if let later = row.later { add(.postData, "constraint", row.name, later, after: [key]) }
            accessObjects.append(AccessControl.type(row.name, key: key))
        }
    }

    /// Functions and procedures of the schemas, and those the tables' triggers, policies,
    /// defaults, checks and indexes (and the app's triggers on auth.users) call from elsewhere.
    mutating func functions() throws {
        struct Row: Decodable { var oid: String; var name: String; var kind: String; var sql: String }
        for row in try rows(
            Row.self,
            """
            WITH called AS (
                SELECT t.tgfoid AS fn FROM pg_trigger t WHERE (t.tgrelid = ANY($1::oid[]) OR t.tgrelid = to_regclass('auth.users')) AND NOT t.tgisinternal
                UNION SELECT d.refobjid FROM pg_depend d WHERE d.refclassid = 'pg_proc'::regclass AND (
                      (d.classid = 'pg_policy'::regclass AND d.objid IN (SELECT oid FROM pg_policy WHERE polrelid = ANY($1::oid[])))
                   OR (d.classid = 'pg_attrdef'::regclass AND d.objid IN (SELECT oid FROM pg_attrdef WHERE adrelid = ANY($1::oid[])))
                   OR (d.classid = 'pg_constraint'::regclass AND d.objid IN (SELECT oid FROM pg_constraint WHERE conrelid = ANY($1::oid[])))
                   OR (d.classid = 'pg_class'::regclass AND d.objid IN (SELECT indexrelid FROM pg_index WHERE indrelid = ANY($1::oid[]))))
            )
            SELECT p.oid::text AS oid, p.oid::regprocedure::text AS name,
                   CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END AS kind, pg_get_functiondef(p.oid) AS sql
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE p.prokind IN ('f', 'p', 'w') AND (n.nspname = ANY($2::text[]) OR p.oid IN (SELECT fn FROM called))
              AND n.nspname <> ALL($3::text[]) AND \(Self.notExtensionMember("pg_proc", "p.oid"))
              -- A range type's constructors come with it.
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'i')
            ORDER BY 2
            """, [relationList, schemaList, Self.platform])
        {
            // CREATE, not CREATE OR REPLACE: a function the target has is left alone and reported.
            var sql = row.sql.trimmingCharacters(in: .whitespacesAndNewlines)
            if sql.hasPrefix("CREATE OR REPLACE ") { sql = "CREATE " + sql.dropFirst("CREATE OR REPLACE ".count) }
            let key = add(.preData, row.kind, row.name, sql + ";", catalog: "pg_proc", oid: row.oid)
            accessObjects.append(AccessControl.routine(row.name, key: key))
        }
    }

    mutating func aggregates() throws {
        guard present.aggregates else { return }
        let function = { (column: String, label: String) in
            "CASE WHEN \(column) <> 0 THEN '\(label) = ' || \(column)::regproc::text END"
        }
        let modify = { (column: String, label: String) in
            "'\(label) = ' || CASE \(column) WHEN 'r' THEN 'READ_ONLY' WHEN 's' THEN 'SHAREABLE' ELSE 'READ_WRITE' END"
        }
        for row in try rows(
            Object.self,
            """
            SELECT p.oid::text AS oid, p.oid::regprocedure::text AS name,
                   'CREATE AGGREGATE ' || \(Self.qualified("n", "p.proname")) || '('
                   || CASE WHEN p.pronargs = 0 THEN '*' ELSE pg_get_function_arguments(p.oid) END || ') ('
                   || concat_ws(', ', 'SFUNC = ' || a.aggtransfn::regproc::text, 'STYPE = ' || format_type(a.aggtranstype, NULL),
                        CASE WHEN a.aggtransspace <> 0 THEN 'SSPACE = ' || a.aggtransspace END,
                        \(function("a.aggfinalfn", "FINALFUNC")), CASE WHEN a.aggfinalextra THEN 'FINALFUNC_EXTRA' END,
                        CASE WHEN a.aggfinalfn <> 0 THEN \(modify("a.aggfinalmodify", "FINALFUNC_MODIFY")) END,
                        \(function("a.aggcombinefn", "COMBINEFUNC")), \(function("a.aggserialfn", "SERIALFUNC")),
                        \(function("a.aggdeserialfn", "DESERIALFUNC")),
                        CASE WHEN a.agginitval IS NOT NULL THEN 'INITCOND = ' || quote_literal(a.agginitval) END,
                        \(function("a.aggmtransfn", "MSFUNC")), \(function("a.aggminvtransfn", "MINVFUNC")),
                        CASE WHEN a.aggmtransfn <> 0 THEN 'MSTYPE = ' || format_type(a.aggmtranstype, NULL) END,
                        CASE WHEN a.aggmtransspace <> 0 THEN 'MSSPACE = ' || a.aggmtransspace END,
                        \(function("a.aggmfinalfn", "MFINALFUNC")), CASE WHEN a.aggmfinalextra THEN 'MFINALFUNC_EXTRA' END,
                        CASE WHEN a.aggmfinalfn <> 0 THEN \(modify("a.aggmfinalmodify", "MFINALFUNC_MODIFY")) END,
                        CASE WHEN a.aggminitval IS NOT NULL THEN 'MINITCOND = ' || quote_literal(a.aggminitval) END,
                        (SELECT 'SORTOP = OPERATOR(' || quote_ident(opn.nspname) || '.' || o.oprname || ')'
                         FROM pg_operator o JOIN pg_namespace opn ON opn.oid = o.oprnamespace WHERE o.oid = a.aggsortop),
                        CASE WHEN a.aggkind = 'h' THEN 'HYPOTHETICAL' END,
                        CASE p.proparallel WHEN 's' THEN 'PARALLEL = SAFE' WHEN 'r' THEN 'PARALLEL = RESTRICTED' END) || ');' AS sql
            FROM pg_proc p JOIN pg_aggregate a ON a.aggfnoid = p.oid JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = ANY($2::text[]) AND \(Self.notExtensionMember("pg_proc", "p.oid")) ORDER BY 2
            """)
        {
            let key = add(.preData, "aggregate", row.name, row.sql, catalog: "pg_proc", oid: row.oid)
            accessObjects.append(AccessControl.routine(row.name, key: key))
        }
    }

    /// Sequences of the schemas and those the tables' defaults draw from (identity sequences
    /// come with their column), and which column owns each.
    mutating func sequences() throws {
        struct Row: Decodable {
            var oid: String; var name: String; var sql: String; var owner: String?; var table: String?
        }
        for row in try rows(
            Row.self,
            """
            SELECT s.oid::text AS oid, s.oid::regclass::text AS name,
                   'CREATE ' || CASE WHEN s.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END || 'SEQUENCE ' || s.oid::regclass::text
                   || ' AS ' || format_type(q.seqtypid, NULL) || ' ' || \(Self.sequenceOptions("q")) || ';' AS sql,
                   owner.column AS owner, owner.table AS table
            FROM pg_class s JOIN pg_sequence q ON q.seqrelid = s.oid JOIN pg_namespace n ON n.oid = s.relnamespace
            -- The captured table column that owns it (serial), if any.
            LEFT JOIN LATERAL (
                SELECT t.oid::regclass::text || '.' || quote_ident(a.attname) AS column, t.oid::text AS table
                FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
                JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.refclassid = 'pg_class'::regclass
                  AND d.deptype = 'a' AND t.oid = ANY($1::oid[])
            ) owner ON true
            WHERE s.relkind = 'S' AND n.nspname <> ALL($3::text[])
              AND (n.nspname = ANY($2::text[]) OR s.oid IN (
                    SELECT d.refobjid FROM pg_attrdef ad JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                    AND d.refclassid = 'pg_class'::regclass WHERE ad.adrelid = ANY($1::oid[])))
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype IN ('i', 'e'))
            ORDER BY 2
            """, [relationList, schemaList, Self.platform])
        {
            let key = add(.preData, "sequence", row.name, row.sql, catalog: "pg_class", oid: row.oid)
            accessObjects.append(AccessControl.sequence(row.name, key: key))
            if let owner = row.owner, let table = row.table {
                pendingOwners.append((row.name, "ALTER SEQUENCE \(row.name) OWNED BY \(owner);", key, table))
            }
        }
    }
}
