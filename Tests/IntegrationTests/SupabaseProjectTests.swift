import Foundation
import SupabackupKit
import TestSupport
import Testing

/// The disaster-recovery case: a backup of a Supabase project restored into a fresh one.
@Suite("Supabase projects")
struct SupabaseProjectTests {
    static func project(_ label: String, app: Bool = true, data: Bool = true) throws -> TestDatabase {
        let database = try TestDatabase(label)
        try database.run(sqlFile: "fixtures/supabase/platform.sql")
        if app { try database.run(sqlFile: "fixtures/supabase/app.sql") }
        if data { try database.run(sqlFile: "fixtures/supabase/data.sql") }
        return database
    }

    static func backupWithAuth(_ database: TestDatabase, into directory: TemporaryDirectory) throws -> BackupResult {
        try backupWithAuth(url: database.url, into: directory)
    }

    static func backupWithAuth(url: String, into directory: TemporaryDirectory) throws -> BackupResult {
        var options = BackupOptions(connection: try ConnectionString(url), outputDirectory: directory.path)
        options.withAuth = true
        return try BackupEngine(options: options.forTests, logger: silentLogger).run()
    }

    static func restoreProject(
        _ name: String, from directory: TemporaryDirectory, into database: TestDatabase, createSchema: Bool,
        disableTriggers: Bool = false
    ) throws -> RestoreResult {
        try restoreProject(
            name, from: directory, into: database.url, createSchema: createSchema, disableTriggers: disableTriggers)
    }

    static func restoreProject(
        _ name: String, from directory: TemporaryDirectory, into url: String, createSchema: Bool,
        disableTriggers: Bool = false
    ) throws -> RestoreResult {
        var options = RestoreOptions(
            connection: try ConnectionString(url), directory: directory.path, name: name,
            disableTriggers: disableTriggers)
        options.withAuth = true
        options.createSchema = createSchema
        return try RestoreEngine(options: options, logger: silentLogger).run()
    }

    /// Everything about the app's schema that schema.sql must reproduce, one line per fact.
    static let fingerprint = """
        SELECT 'column ' || c.oid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' '
               || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ' ' || a.attidentity::text || a.attgenerated::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        UNION ALL SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index JOIN pg_class c ON c.oid = indrelid
        WHERE c.relnamespace = 'public'::regnamespace
        UNION ALL SELECT 'policy ' || tablename || ' ' || policyname || ' ' || permissive || ' ' || cmd || ' ' || roles::text
               || ' ' || coalesce(qual, '') || ' ' || coalesce(with_check, '') FROM pg_policies WHERE schemaname = 'public'
        UNION ALL SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger
        WHERE NOT tgisinternal AND (tgrelid::regclass::text NOT LIKE '%.%' OR tgrelid = 'auth.users'::regclass)
        UNION ALL SELECT 'table ' || relname || ' ' || relkind::text || ' ' || relrowsecurity || ' ' || relforcerowsecurity || ' '
               || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(relacl) x), '') || ' '
               || coalesce(obj_description(oid, 'pg_class'), '')
        FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'S')
        UNION ALL SELECT 'comment ' || objoid::regclass || ' ' || objsubid || ' ' || description FROM pg_description
        WHERE classoid = 'pg_class'::regclass AND objoid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
        UNION ALL SELECT 'type ' || format_type(t.oid, NULL) || ' ' || t.typtype::text || ' '
               || coalesce((SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid), '')
        FROM pg_type t WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'c')
          AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
        ORDER BY 1
        """

    @Test("a fresh project comes back whole: users with their password hashes, app data, policies, triggers, grants")
    func freshProject() throws {
        let source = try Self.project("sb_src")
        let directory = try TemporaryDirectory()
        let result = try Self.backupWithAuth(source, into: directory)
        let names = Set(result.manifest.tables.map(\.tableName.description))
        #expect(names.isSuperset(of: ["auth.users", "auth.identities", "public.profiles", "public.notes"]))
        #expect(
            names.isDisjoint(with: [
                "auth.sessions", "auth.refresh_tokens", "auth.schema_migrations", "storage.migrations",
            ]))
        #expect(result.manifest.schemaFile != nil)

        let fresh = try Self.project("sb_fresh", app: false, data: false)
        let restored = try Self.restoreProject(result.name, from: directory, into: fresh, createSchema: true)
        #expect(restored.schemaCreated.contains("table public.profiles"))
        #expect(restored.schemaExisting.isEmpty || restored.schemaExisting.allSatisfy { !$0.contains("public.") })

        let hashes = "SELECT id::text, encrypted_password FROM auth.users ORDER BY id"
        #expect(try fresh.rows(hashes) == source.rows(hashes))
        #expect(try fresh.rows(hashes).count == 40)
        for table in ["auth.users", "auth.identities", "public.profiles", "public.notes"] {
            #expect(try fresh.digest(table) == source.digest(table), "\(table)")
        }
        #expect(try fresh.scalar("SELECT count(*) FROM public.profiles") == "40")
        #expect(try fresh.scalar("SELECT count(*) FROM auth.sessions") == "0")
        #expect(try fresh.rows(Self.fingerprint) == source.rows(Self.fingerprint))
        #expect(try fresh.scalar("SELECT has_table_privilege('anon', 'public.profiles', 'SELECT')") == "t")
        #expect(try fresh.scalar("SELECT has_table_privilege('anon', 'public.notes', 'SELECT')") == "f")

        // The app works afterwards: the trigger makes profiles, identities continue.
        try fresh.execute(
            "INSERT INTO auth.users (id, email, raw_user_meta_data) VALUES ('11111111-1111-1111-1111-111111111111', 'new@example.com', '{\"username\": \"newbie\"}')"
        )
        #expect(
            try fresh.scalar("SELECT username FROM public.profiles WHERE id = '11111111-1111-1111-1111-111111111111'")
                == "newbie")
        let note = try fresh.scalar(
            "INSERT INTO public.notes (owner, body) VALUES ('11111111-1111-1111-1111-111111111111', 'hi') RETURNING id")
        #expect(note == "301")
    }

    /// Who may do what in public, as the API roles see it: order-independent.
    static let privileges = """
        SELECT 'table ' || grantee || ' ' || table_name || ' ' || privilege_type || ' ' || is_grantable
        FROM information_schema.role_table_grants WHERE table_schema = 'public'
        UNION ALL SELECT 'column ' || grantee || ' ' || table_name || '.' || column_name || ' ' || privilege_type || ' ' || is_grantable
        FROM information_schema.column_privileges WHERE table_schema = 'public'
        UNION ALL SELECT 'routine ' || grantee || ' ' || routine_name || ' ' || privilege_type
        FROM information_schema.role_routine_grants WHERE routine_schema = 'public'
        UNION ALL SELECT 'usage ' || grantee || ' ' || object_name || ' ' || object_type || ' ' || is_grantable
        FROM information_schema.usage_privileges WHERE object_schema = 'public'
        UNION ALL SELECT 'execute ' || r || ' ' || p.oid::regprocedure || ' ' || has_function_privilege(r, p.oid, 'EXECUTE')
        FROM pg_proc p, unnest(ARRAY['anon', 'authenticated', 'service_role']) r WHERE p.pronamespace = 'public'::regnamespace
        UNION ALL SELECT 'sequence ' || r || ' ' || c.relname || ' ' || has_sequence_privilege(r, c.oid, 'USAGE')
               || has_sequence_privilege(r, c.oid, 'SELECT') || has_sequence_privilege(r, c.oid, 'UPDATE')
        FROM pg_class c, unnest(ARRAY['anon', 'authenticated', 'service_role']) r
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
        UNION ALL SELECT 'default ' || pg_get_userbyid(defaclrole) || ' ' || defaclobjtype::text || ' '
               || (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(defaclacl) x)
        FROM pg_default_acl WHERE defaclnamespace = 'public'::regnamespace
        ORDER BY 1
        """

    @Test(
        "a fresh project with Supabase's default privileges is exactly as locked down as the source, no more open",
        arguments: ["app", "rbac"])
    func exactPrivileges(_ app: String) throws {
        let source = try Self.project("sb_acl_src", app: app == "app", data: app == "app")
        if app != "app" { try source.run(sqlFile: "fixtures/supabase/\(app).sql") }
        let directory = try TemporaryDirectory()
        let result = try Self.backupWithAuth(source, into: directory)
        let fresh = try Self.project("sb_acl_dst", app: false, data: false)
        // Before the restore the target's defaults would open everything to the API roles.
        try fresh.execute(
            "CREATE TABLE public.probe (id int); CREATE FUNCTION public.probe_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'"
        )
        #expect(try fresh.scalar("SELECT has_table_privilege('anon', 'public.probe', 'DELETE')") == "t")
        try fresh.execute("DROP TABLE public.probe; DROP FUNCTION public.probe_fn()")

        _ = try Self.restoreProject(result.name, from: directory, into: fresh, createSchema: true)
        let expected = try source.rows(Self.privileges)
        #expect(try fresh.rows(Self.privileges) == expected)
        if app == "app" {
            #expect(expected.contains { $0[0] == "column authenticated profiles.username UPDATE NO" })
            #expect(expected.contains { $0[0] == "execute anon handle_new_user() false" })
            #expect(try fresh.scalar("SELECT has_table_privilege('anon', 'public.notes', 'DELETE')") == "f")
            #expect(
                try fresh.scalar("SELECT has_function_privilege('anon', 'public.handle_new_user()', 'EXECUTE')") == "f")
            #expect(
                try fresh.scalar(
                    "SELECT has_function_privilege('authenticated', 'public.handle_new_user()', 'EXECUTE')") == "f")
        } else {
            #expect(
                try fresh.scalar("SELECT has_table_privilege('authenticated', 'public.member_roles', 'SELECT')") == "f")
            #expect(
                try fresh.scalar("SELECT has_table_privilege('supabase_auth_admin', 'public.member_roles', 'SELECT')")
                    == "t")
            #expect(try fresh.scalar("SELECT has_table_privilege('anon', 'public.role_permissions', 'INSERT')") == "f")
            #expect(
                try fresh.scalar(
                    "SELECT has_function_privilege('anon', 'public.allowed(public.app_permission, uuid)', 'EXECUTE')")
                    == "f")
            #expect(
                try fresh.scalar(
                    "SELECT has_function_privilege('authenticated', 'public.allowed(public.app_permission, uuid)', 'EXECUTE')"
                ) == "t")
        }
    }

    @Test("a grant to a role the target lacks is skipped and named; the restore goes on")
    func missingRole() throws {
        let source = try Self.project("sb_role_src")
        let role = "reporting_" + String(UUID().uuidString.prefix(8)).lowercased()
        try source.execute("CREATE ROLE \(role) NOLOGIN; GRANT SELECT ON public.notes TO \(role)")
        let directory = try TemporaryDirectory()
        let result = try Self.backupWithAuth(source, into: directory)
        let schema = try String(contentsOfFile: result.path + "/schema.sql", encoding: .utf8)
        #expect(schema.contains("GRANT SELECT ON TABLE public.notes TO \(role);"))
        try source.execute("REVOKE ALL ON public.notes FROM \(role); DROP ROLE \(role)")

        let fresh = try Self.project("sb_role_dst", app: false, data: false)
        let restored = try Self.restoreProject(result.name, from: directory, into: fresh, createSchema: true)
        #expect(
            restored.schemaSkipped.count == 1 && restored.schemaSkipped[0].contains(role), "\(restored.schemaSkipped)")
        #expect(try fresh.scalar("SELECT count(*) FROM public.notes") == "300")
        #expect(try fresh.scalar("SELECT has_table_privilege('authenticated', 'public.notes', 'SELECT')") == "t")
    }

    @Test(
        "into an existing project the profile trigger fires or not, and profiles are never duplicated",
        arguments: [false, true])
    func profileTrigger(disableTriggers: Bool) throws {
        let source = try Self.project("sb_trig_src")
        let directory = try TemporaryDirectory()
        let result = try Self.backupWithAuth(source, into: directory)
        let target = try Self.project("sb_trig_dst", data: false)
        _ = try Self.restoreProject(
            result.name, from: directory, into: target, createSchema: false, disableTriggers: disableTriggers)
        #expect(try target.scalar("SELECT count(*) FROM public.profiles") == "40")
        #expect(try target.digest("public.profiles") == source.digest("public.profiles"))
        #expect(try target.digest("auth.identities") == source.digest("auth.identities"))
    }

    @Test("schema.sql applied to a fresh project reproduces the schema: nothing missing, nothing extra")
    func schemaFile() throws {
        let source = try Self.project("sb_schema_src", data: false)
        try source.run(sqlFile: "sample/schema.sql")
        try source.run(sqlFile: "fixtures/graph.sql")
        let directory = try TemporaryDirectory()
        let result = try Self.backupWithAuth(source, into: directory)
        let fresh = try Self.project("sb_schema_dst", app: false, data: false)
        try fresh.execute(try String(contentsOfFile: result.path + "/schema.sql", encoding: .utf8))
        let expected = try source.rows(Self.fingerprint).filter { !($0[0] ?? "").contains("published_projects") }
        #expect(try fresh.rows(Self.fingerprint) == expected)
    }

    @Test("a REST-mode backup cannot create a schema, and says why")
    func restBackupHasNoSchema() throws {
        let source = try Self.project("sb_rest", app: true, data: false)
        let server = try PostgRESTTestServer(databaseURL: source.url)
        let directory = try TemporaryDirectory()
        let archive = try restBackup(server, into: directory)
        #expect(archive.manifest.schemaFile == nil)
        #expect(archive.manifest.warnings.contains { $0.contains("create-schema") })
        let target = try TestDatabase("sb_rest_dst")
        var options = RestoreOptions(
            connection: try ConnectionString(target.url), directory: directory.path, name: archive.name)
        options.createSchema = true
        #expect {
            try RestoreEngine(options: options, logger: silentLogger).run()
        } throws: { "\($0)".contains("REST") && "\($0)".contains("schema.sql") }
    }
}

/// Auth users when only the REST API is reachable: the Auth admin API lists and creates them.
@Suite("Supabase projects over REST")
struct SupabaseRESTTests {
    static func restore(_ name: String, from directory: TemporaryDirectory, into server: PostgRESTTestServer) throws
        -> RestoreResult
    {
        var options = RestoreOptions(target: .rest(try restSettings(server)), directory: directory.path, name: name)
        options.withAuth = true
        return try RestoreEngine(options: options, logger: silentLogger).run()
    }

    @Test(
        "a REST backup with --with-auth has the users but no password hashes; restoring creates them and names who must reset"
    )
    func usersWithoutHashes() throws {
        let source = try SupabaseProjectTests.project("sbr_src")
        let sourceServer = try PostgRESTTestServer(databaseURL: source.url)
        let directory = try TemporaryDirectory()
        var options = BackupOptions(transport: .rest(try restSettings(sourceServer)), outputDirectory: directory.path)
        options.withAuth = true
        let archive = try BackupEngine(options: options.forTests, logger: silentLogger).run()
        #expect(archive.manifest.authPasswordHashes == false)
        #expect(archive.manifest.tables.first { $0.name == "users" }?.rows == 40)
        #expect(archive.manifest.tables.first { $0.name == "identities" }?.rows == 40)
        #expect(archive.manifest.warnings.contains { $0.contains("reset their passwords") })

        let target = try SupabaseProjectTests.project("sbr_dst", data: false)
        let server = try PostgRESTTestServer(databaseURL: target.url)
        let result = try Self.restore(archive.name, from: directory, into: server)
        #expect(result.authUsersCreated == 40 && result.authUsersExisting == 0)
        #expect(result.passwordResetNeeded.count == 40 && result.passwordResetNeeded.contains("person7@example.com"))
        let users = "SELECT id::text, email, raw_user_meta_data::text FROM auth.users ORDER BY id"
        #expect(try target.rows(users) == source.rows(users))
        #expect(try target.digest("public.profiles") == source.digest("public.profiles"))
        #expect(try target.digest("public.notes") == source.digest("public.notes"))

        // A rerun leaves existing users alone.
        let again = try Self.restore(archive.name, from: directory, into: server)
        #expect(again.authUsersCreated == 0 && again.authUsersExisting == 40)
    }

    @Test("a direct --with-auth backup restored over REST keeps every password hash")
    func hashesCarriedOver() throws {
        let source = try SupabaseProjectTests.project("sbh_src")
        let directory = try TemporaryDirectory()
        let archive = try SupabaseProjectTests.backupWithAuth(source, into: directory)
        let target = try SupabaseProjectTests.project("sbh_dst", data: false)
        let server = try PostgRESTTestServer(databaseURL: target.url)
        let result = try Self.restore(archive.name, from: directory, into: server)
        #expect(result.passwordResetNeeded.isEmpty)
        let hashes = "SELECT id::text, encrypted_password FROM auth.users ORDER BY id"
        #expect(try target.rows(hashes) == source.rows(hashes))
        #expect(try target.digest("public.profiles") == source.digest("public.profiles"))
    }
}

@Suite("Platform schemas")
struct PlatformSchemaTests {
    @Test("--schema auth takes only the user tables; platform internals only when named with --table")
    func selection() throws {
        let source = try SupabaseProjectTests.project("sb_platform")
        let directory = try TemporaryDirectory()
        let auth = try backup(source, into: directory, schemas: ["auth"])
        #expect(Set(auth.manifest.tables.map(\.name)) == ["users", "identities"])

        // Only internals in storage: nothing selected, which is an error, not an empty backup.
        #expect(throws: UsageError.self) { try backup(source, into: directory, schemas: ["storage"]) }

        let named = try backup(source, into: directory, tables: ["auth.sessions", "storage.migrations"])
        #expect(Set(named.manifest.tables.map(\.tableName.description)) == ["auth.sessions", "storage.migrations"])

        let plain = try backup(source, into: directory)
        #expect(plain.manifest.tables.allSatisfy { $0.schema == "public" })
    }
}
