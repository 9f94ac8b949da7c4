import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

/// One suite, both restore destinations: the same archive in, the same rows out.
@Suite("Restore destinations")
struct RestoreDestinationTests {
    static let tables = [
        "users", "projects", "slides", "project_comments", "project_analytics", "nr_courses", "nr_modules", "videos",
    ]

    @Test(
        "direct and REST destinations restore the same archive to the same rows, sequences forward, reruns unchanged",
        arguments: ["direct", "rest"])
    func sameRowsOut(_ kind: String) throws {
        let source = try TestDatabase("dest_src_" + kind)
        try source.run(sqlFile: "sample/schema.sql")
        try source.run(sqlFile: "sample/data.sql")
        let directory = try TemporaryDirectory()
        let archive = try backup(source, into: directory)
        let target = try TestDatabase("dest_dst_" + kind)
        try target.run(sqlFile: "sample/schema.sql")
        try target.run(sqlFile: "rest/supabackup_setval.sql")
        let server = kind == "rest" ? try PostgRESTTestServer(databaseURL: target.url) : nil
        let destination: RestoreTarget =
            if let server { .rest(try restSettings(server)) } else { .direct(try ConnectionString(target.url)) }
        let options = RestoreOptions(target: destination, directory: directory.path, name: archive.name)
        let result = try RestoreEngine(options: options, logger: silentLogger).run()

        for table in Self.tables {
            #expect(try target.digest("public.\(table)") == source.digest("public.\(table)"), "\(kind): \(table)")
        }
        #expect(Set(result.tables.map(\.table.name)).isSuperset(of: Self.tables))
        #expect(result.tables.allSatisfy { kind == "rest" ? $0.path == .rest : $0.path != .rest })
        // The sequence arithmetic is the engine's: both move projects_id_seq to the backup's 500.
        #expect(
            result.sequences.contains { $0.sequence.name == "projects_id_seq" && $0.value == 500 },
            "\(result.sequences)")
        let id = try target.scalar(
            "INSERT INTO public.projects (owner_id, title) SELECT owner_id, 'new' FROM public.projects LIMIT 1 RETURNING id"
        )
        #expect(id == "501")

        // A rerun converges: same rows.
        _ = try RestoreEngine(options: options, logger: silentLogger).run()
        #expect(try target.digest("public.users") == source.digest("public.users"))
    }

    @Test("sequence arithmetic: never backwards, above the backup, the target and the restored keys")
    func arithmetic() {
        let backup = Manifest.Sequence(
            schema: "public", name: "s", lastValue: 10, isCalled: true, increment: 1, feeds: [])
        let state = SequenceState(increment: 1, minimum: 1, lastUsed: nil)
        #expect(SequenceArithmetic.target(backup: backup, state: state, maxima: []) == (10, true))
        #expect(SequenceArithmetic.target(backup: backup, state: state, maxima: [42, 7]) == (42, true))
        let ahead = SequenceState(increment: 1, minimum: 1, lastUsed: 99)
        #expect(SequenceArithmetic.target(backup: backup, state: ahead, maxima: [42]) == (99, true))
        let fresh = Manifest.Sequence(
            schema: "public", name: "s", lastValue: 1, isCalled: false, increment: 1, feeds: [])
        #expect(SequenceArithmetic.target(backup: fresh, state: state, maxima: []) == (1, false))
    }
}
