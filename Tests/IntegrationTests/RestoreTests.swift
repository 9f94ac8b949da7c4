import Foundation
import SupabackupKit
import TestSupport
import Testing

@Suite("Restore")
struct RestoreTests {
    @Test("self-references and a deferrable two-table cycle restore into empty tables")
    func foreignKeyOrder() throws {
        let (source, target) = try sourceAndTarget("fkorder", schema: "fixtures/graph.sql")
        try target.execute("TRUNCATE public.authors, public.posts, public.teams, public.players")
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)

        let order = result.manifest.restoreOrder.map(\.name)
        #expect(order.firstIndex(of: "authors")! < order.firstIndex(of: "posts")!)

        let restored = try restore(result.name, from: directory, into: target)
        let planned = restored.plan.steps.map(\.table.name)
        #expect(planned.firstIndex(of: "authors")! < planned.firstIndex(of: "posts")!)
        #expect(restored.plan.blockedCycles.isEmpty)
        for table in ["public.authors", "public.posts", "public.teams", "public.players"] {
            #expect(try target.digest(table) == source.digest(table), "\(table)")
        }
    }

    @Test(
        "a cycle without deferrable keys: into empty tables it loads (keys checked set-based); into rows it fails with advice, and restores with --disable-triggers"
    )
    func blockedCycle() throws {
        let (source, target) = try sourceAndTarget("cycle", schema: "fixtures/graph.sql")
        for database in [source, target] {
            try database.execute(
                """
                ALTER TABLE public.teams DROP CONSTRAINT teams_captain_fk;
                ALTER TABLE public.teams ADD CONSTRAINT teams_captain_fk FOREIGN KEY (captain_id) REFERENCES public.players(id);
                """)
        }
        try target.execute("TRUNCATE public.authors, public.posts, public.teams, public.players")
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)

        // Empty tables take COPY without per-row triggers; the keys are checked once at the end.
        let empty = try TestDatabase("cycle_empty")
        try empty.run(sqlFile: "fixtures/graph.sql")
        try empty.execute(
            """
            TRUNCATE public.authors, public.posts, public.teams, public.players;
            ALTER TABLE public.teams DROP CONSTRAINT teams_captain_fk;
            ALTER TABLE public.teams ADD CONSTRAINT teams_captain_fk FOREIGN KEY (captain_id) REFERENCES public.players(id);
            """)
        let loaded = try restore(result.name, from: directory, into: empty)
        #expect(loaded.tables.filter { ["teams", "players"].contains($0.table.name) }.allSatisfy { $0.path == .copy })
        #expect(try empty.digest("public.teams") == source.digest("public.teams"))
        #expect(try empty.digest("public.players") == source.digest("public.players"))

        // Tables holding rows go through the upsert, whose row-by-row checks the cycle blocks.
        try target.execute(
            "INSERT INTO public.teams VALUES (99, NULL); INSERT INTO public.players VALUES (99, 99, 'local')")
        // The dry run rehearses and fails as the real run does, with the same advice.
        for dryRun in [true, false] {
            #expect {
                try restore(result.name, from: directory, into: target, dryRun: dryRun)
            } throws: { error in
                let text = "\(error)"
                return text.contains("cycle") && text.contains("DEFERRABLE") && text.contains("--disable-triggers")
                    && text.contains("rolled back")
            }
        }
        #expect(try target.scalar("SELECT count(*) FROM public.authors") == "0")

        try restore(result.name, from: directory, into: target, disableTriggers: true)
        try target.execute("DELETE FROM public.players WHERE id = 99; DELETE FROM public.teams WHERE id = 99")
        #expect(try target.digest("public.teams") == source.digest("public.teams"))
        #expect(try target.digest("public.players") == source.digest("public.players"))
    }

    @Test("upsert: changed rows are restored, extra rows kept, deleted rows come back; a rerun changes nothing")
    func upsertSemantics() throws {
        let source = try TestDatabase("upsert_src")
        try source.run(sqlFile: "sample/schema.sql")
        try source.run(sqlFile: "sample/data.sql")
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)

        // The target is the source after a bad day.
        let target = try TestDatabase("upsert_dst")
        try target.run(sqlFile: "sample/schema.sql")
        try restore(result.name, from: directory, into: target)
        try target.execute(
            """
            UPDATE public.users SET display_name = 'vandalised' WHERE email LIKE 'user1%';
            DELETE FROM public.project_comments WHERE id > 900;
            INSERT INTO public.courses (owner_id, title) SELECT owner_id, 'only in target' FROM public.courses LIMIT 1;
            """)
        let restored = try restore(result.name, from: directory, into: target)
        let users = try #require(restored.tables.first { $0.table.name == "users" })
        #expect(users.written == 111 && users.inserted == 0)
        let comments = try #require(restored.tables.first { $0.table.name == "project_comments" })
        #expect(comments.inserted == 100)
        #expect(try target.digest("public.users") == source.digest("public.users"))
        #expect(try target.digest("public.project_comments") == source.digest("public.project_comments"))
        #expect(try target.scalar("SELECT count(*) FROM public.courses WHERE title = 'only in target'") == "1")

        // A second restore of the same backup writes no row: no new row versions.
        let versions = try target.scalar("SELECT string_agg(xmin::text, ',' ORDER BY id) FROM public.users")
        let again = try restore(result.name, from: directory, into: target)
        #expect(again.tables.allSatisfy { $0.written == 0 })
        #expect(try target.scalar("SELECT string_agg(xmin::text, ',' ORDER BY id) FROM public.users") == versions)
    }

    @Test("sequences are usable after restore: the next default is above every restored key")
    func sequences() throws {
        let (source, target) = try sourceAndTarget("seq", schema: "sample/schema.sql", data: "sample/data.sql")
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)
        #expect(result.manifest.sequences.contains { $0.name == "projects_id_seq" && $0.feeds.first?.column == "id" })

        try restore(result.name, from: directory, into: target)
        let maxProject = try #require(try target.scalar("SELECT max(id) FROM public.projects"))
        let newID = try target.scalar(
            "INSERT INTO public.projects (owner_id, title) SELECT owner_id, 'new' FROM public.projects LIMIT 1 RETURNING id"
        )
        #expect(Int(newID ?? "0")! > Int(maxProject)!)
        let newComment = try target.scalar(
            "INSERT INTO public.project_comments (project_id, author_id, body) SELECT project_id, author_id, 'x' FROM public.project_comments LIMIT 1 RETURNING id"
        )
        #expect(Int(newComment ?? "0")! > 1000)
        // Generated columns are computed by the target, identity ALWAYS values were kept.
        #expect(try target.digest("public.slides") == source.digest("public.slides"))
    }

    @Test("rows loaded into an empty table still have their foreign keys checked: a missing parent fails the restore")
    func missingParent() throws {
        let (source, target) = try sourceAndTarget("orphan", schema: "fixtures/graph.sql")
        try target.execute("TRUNCATE public.authors, public.posts, public.teams, public.players")
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)
        // Only posts: their authors are neither in the (empty) target nor in this restore.
        #expect {
            try restore(result.name, from: directory, into: target, tables: ["posts"])
        } throws: { error in
            let text = "\(error)"
            // The structured fields name the key, whether the set-based check or PostgreSQL's own caught it.
            let underlying = (error as? RestoreError)?.underlying
            return text.contains("public.posts") && text.contains("posts_author_id_fkey") && text.contains("authors")
                && text.contains("rolled back") && underlying?.sqlState == "23503"
                && underlying?.constraint == "posts_author_id_fkey" && underlying?.table == "posts"
        }
        #expect(try target.scalar("SELECT count(*) FROM public.posts") == "0")
        // With the parents, the same rows restore.
        try restore(result.name, from: directory, into: target, tables: ["authors", "posts"])
        #expect(try target.digest("public.posts") == source.digest("public.posts"))
    }

    @Test("set-based key checks use each key's own operators: cross-type and composite keys, MATCH SIMPLE and FULL")
    func keyShapes() throws {
        let ddl = """
            CREATE TABLE public.pk (a bigint, b text, PRIMARY KEY (a, b));
            CREATE TABLE public.fk_simple (id int PRIMARY KEY, a int, b varchar(10), FOREIGN KEY (a, b) REFERENCES public.pk (a, b));
            CREATE TABLE public.fk_full (id int PRIMARY KEY, a int, b text);
            """
        let source = try TestDatabase("keys_src")
        try source.execute(ddl)
        try source.execute(
            """
            INSERT INTO public.pk VALUES (1, 'x'), (2, 'y');
            INSERT INTO public.fk_simple VALUES (1, 1, 'x'), (2, NULL, 'zz'), (3, 2, 'y');
            INSERT INTO public.fk_full VALUES (1, 1, 'x'), (2, NULL, NULL);
            """)
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)
        let full = ddl + "ALTER TABLE public.fk_full ADD FOREIGN KEY (a, b) REFERENCES public.pk (a, b) MATCH FULL;"
        let target = try TestDatabase("keys_dst")
        try target.execute(full)
        let restored = try restore(result.name, from: directory, into: target)
        #expect(restored.tables.allSatisfy { $0.path == .copy })
        for table in ["public.pk", "public.fk_simple", "public.fk_full"] {
            #expect(try target.digest(table) == source.digest(table))
        }

        // A partly NULL key passes MATCH SIMPLE but not MATCH FULL.
        try source.execute("INSERT INTO public.fk_full VALUES (3, 1, NULL)")
        let partial = try backup(source, into: directory)
        let strict = try TestDatabase("keys_full")
        try strict.execute(full)
        #expect {
            try restore(partial.name, from: directory, into: strict)
        } throws: { error in
            "\(error)".contains("fk_full_a_b_fkey") && "\(error)".contains("rolled back")
        }
        #expect(try strict.scalar("SELECT count(*) FROM public.pk") == "0")
    }

    @Test("a restore failing midway leaves the target exactly as it was")
    func allOrNothing() throws {
        let (source, target) = try sourceAndTarget("atomic", schema: "sample/schema.sql", data: "sample/data.sql")
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)
        // The target refuses the last tables' data: users and projects restore first, then this fails.
        try target.execute("ALTER TABLE public.videos ADD CONSTRAINT tiny CHECK (size_bytes < 1000)")
        try target.execute("INSERT INTO public.users (email) VALUES ('keep@example.com')")
        let before = try ["public.users", "public.projects", "public.videos"].map { try target.digest($0) }
        let sequenceBefore = try target.scalar("SELECT last_value FROM public.projects_id_seq")

        #expect {
            try restore(result.name, from: directory, into: target)
        } throws: { error in
            let text = "\(error)"
            return text.contains("public.videos") && text.contains("tiny") && text.contains("rolled back")
        }
        let after = try ["public.users", "public.projects", "public.videos"].map { try target.digest($0) }
        #expect(after == before)
        #expect(try target.scalar("SELECT last_value FROM public.projects_id_seq") == sequenceBefore)
    }

    @Test("a target that differs from the backup is reported table by table before any write")
    func targetMismatch() throws {
        let (source, target) = try sourceAndTarget("mismatch", schema: "sample/schema.sql", data: "sample/data.sql")
        try target.execute(
            """
            ALTER TABLE public.videos DROP COLUMN checksum;
            ALTER TABLE public.courses ADD COLUMN code text NOT NULL;
            DROP TABLE public.project_analytics;
            """)
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)
        #expect {
            try restore(result.name, from: directory, into: target)
        } throws: { error in
            guard let error = error as? RestoreValidationError else { return false }
            let text = error.problems.joined(separator: "\n")
            return error.problems.count == 3 && text.contains("checksum") && text.contains("code")
                && text.contains("project_analytics")
        }
        #expect(try target.scalar("SELECT count(*) FROM public.users") == "0")
    }

    @Test("--table restores only the named tables; an unknown table is an error naming it")
    func tableFilter() throws {
        let (source, target) = try sourceAndTarget("rfilter", schema: "sample/schema.sql", data: "sample/data.sql")
        let directory = try TemporaryDirectory()
        let result = try backup(source, into: directory)
        let restored = try restore(result.name, from: directory, into: target, tables: ["users", "public.courses"])
        #expect(Set(restored.tables.map(\.table.name)) == ["users", "courses"])
        #expect(try target.scalar("SELECT count(*) FROM public.projects") == "0")
        #expect(try target.digest("public.courses") == source.digest("public.courses"))
        #expect {
            try restore(result.name, from: directory, into: target, tables: ["nope"])
        } throws: { "\($0)".contains("nope") }
    }
}

@Suite("Restore into a different schema")
struct RestoreTypeTests {
    @Test("an incompatible column type is reported table by table before any write; a compatible one converts")
    func types() throws {
        let source = try TestDatabase("types_diff_src")
        try source.execute(
            "CREATE TABLE public.a (id int PRIMARY KEY, code text, n int); INSERT INTO public.a VALUES (1, 'x1', 5), (2, 'x2', 6)"
        )
        let directory = try TemporaryDirectory()
        let name = try backup(source, into: directory).name

        let incompatible = try TestDatabase("types_diff_bad")
        try incompatible.execute("CREATE TABLE public.a (id int PRIMARY KEY, code integer, n bigint)")
        #expect {
            try restore(name, from: directory, into: incompatible)
        } throws: { error in
            guard let error = error as? RestoreValidationError else { return false }
            return error.problems.count == 1 && error.problems[0].contains("public.a")
                && error.problems[0].contains("code")
        }
        #expect(try incompatible.scalar("SELECT count(*) FROM public.a") == "0")

        let compatible = try TestDatabase("types_diff_ok")
        try compatible.execute("CREATE TABLE public.a (id bigint PRIMARY KEY, code varchar(10), n numeric)")
        let result = try restore(name, from: directory, into: compatible)
        #expect(result.plan.warnings.contains { $0.contains("converted") })
        #expect(
            try compatible.scalar("SELECT string_agg(code || ':' || n, ',' ORDER BY id) FROM public.a") == "x1:5,x2:6")
    }
}
