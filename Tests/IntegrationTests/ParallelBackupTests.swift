import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

@Suite("Parallel backup")
struct ParallelBackupTests {
    /// Every table's decompressed lines, by table name.
    private func lines(_ result: BackupResult, in directory: TemporaryDirectory) throws -> [String: Data] {
        let archive = try BackupArchive.open(name: result.name, in: directory.path)
        var files: [String: Data] = [:]
        for table in archive.manifest.tables { files[table.tableName.description] = try ndjson(archive, table) }
        return files
    }

    private func run(_ database: TestDatabase, into directory: TemporaryDirectory, jobs: Int, split: Int64) throws
        -> BackupResult
    {
        var options = BackupOptions(connection: try ConnectionString(database.url), outputDirectory: directory.path)
        options.jobs = jobs
        options.splitBytes = split
        return try BackupEngine(options: options, logger: silentLogger).run()
    }

    @Test("--jobs 4 with tables split into block ranges writes the same lines, in the same order, as one connection")
    func sameLines() throws {
        let source = try TestDatabase("parallel")
        try source.run(sqlFile: "sample/schema.sql")
        try source.run(sqlFile: "sample/data.sql")
        try source.run(sqlFile: "fixtures/types.sql")
        let directory = try TemporaryDirectory()
        let single = try run(source, into: directory, jobs: 1, split: 8192)
        let parallel = try run(source, into: directory, jobs: 4, split: 8192)

        #expect(single.manifest.tables.allSatisfy { $0.parts == nil })
        let split = parallel.manifest.tables.filter { ($0.parts?.count ?? 0) > 1 }
        #expect(split.count >= 3, "expected several tables read in ranges")
        for table in split {
            let parts = try #require(table.parts)
            #expect(parts.reduce(0) { $0 + $1.rows } == table.rows)
            #expect(parts.reduce(0) { $0 + $1.bytes } == table.bytes)
        }
        #expect(parallel.manifest.tables.map(\.tableName) == single.manifest.tables.map(\.tableName))
        #expect(parallel.manifest.tables.map(\.rows) == single.manifest.tables.map(\.rows))
        // A partitioned table is read leaf by leaf: the same lines, partition by partition.
        let events = try #require(parallel.manifest.tables.first { $0.name == "analytics_events" })
        #expect(events.parts?.count ?? 0 >= 2)
        let partitioned = Set(parallel.manifest.tables.filter { $0.kind == "partitioned" }.map(\.tableName.description))
        let (one, many) = (try lines(single, in: directory), try lines(parallel, in: directory))
        #expect(Set(one.keys) == Set(many.keys))
        for (table, data) in one {
            if partitioned.contains(table) {
                #expect(
                    data.split(separator: 0x0A).sorted { $0.lexicographicallyPrecedes($1) }
                        == many[table]!.split(separator: 0x0A).sorted { $0.lexicographicallyPrecedes($1) }, "\(table)")
            } else {
                #expect(data == many[table], "\(table)")
            }
        }
        // Each range is a zstd frame of its own; the reader and verify take the file whole.
        let verified = ArchiveVerifier.verify(try BackupArchive.open(name: parallel.name, in: directory.path))
        #expect(verified.isIntact, "\(verified.allProblems)")
    }

    @Test("worker connections see the leader's snapshot, not rows committed after it")
    func sharedSnapshot() throws {
        let database = try TestDatabase("snapshot")
        try database.execute(
            "CREATE TABLE public.t (id int PRIMARY KEY, pad text); INSERT INTO public.t SELECT i, repeat('x', 200) FROM generate_series(1, 2000) i"
        )
        let source = try DirectBackupSource(connection: try ConnectionString(database.url), exportSnapshot: true)
        let tables = try source.tables(in: ["public"], filters: [])
        _ = try source.prepare(tables)
        let layout = try #require(try source.parallelLayout(of: tables))
        #expect(layout[0].splittableBlocks ?? 0 > 1)
        try database.execute(
            "INSERT INTO public.t SELECT i, 'late' FROM generate_series(2001, 2500) i; DELETE FROM public.t WHERE id <= 100"
        )

        let reader = try source.makeReader(interrupt: ConnectionInterrupt())
        var rows: Int64 = 0
        for range in BlockRange.split(blocks: layout[0].splittableBlocks!, into: 3) {
            rows += try reader.readRows(of: tables[0], slice: TableSlice(blocks: range)) { _ in }
        }
        reader.close()
        #expect(rows == 2000)
        try source.finish()
    }

    @Test("a worker that would queue behind another session's exclusive lock hands the table to the leader")
    func lockBusy() throws {
        let database = try TestDatabase("lockbusy")
        try database.execute(
            "CREATE TABLE public.a (id int PRIMARY KEY); INSERT INTO public.a SELECT generate_series(1, 10); CREATE TABLE public.b (id int PRIMARY KEY); INSERT INTO public.b VALUES (1)"
        )
        let source = try DirectBackupSource(connection: try ConnectionString(database.url), exportSnapshot: true)
        let tables = try source.tables(in: ["public"], filters: []).sorted { $0.name < $1.name }
        _ = try source.prepare(tables)
        _ = try source.parallelLayout(of: tables)
        let reader = try source.makeReader(interrupt: ConnectionInterrupt())

        // Another session asks for ACCESS EXCLUSIVE on a: it waits behind the leader's lock.
        try queueExclusiveLock(on: "public.a", in: database)
        #expect(throws: SnapshotReader.LockBusy.self) {
            _ = try reader.readRows(of: tables[0], slice: nil) { _ in }
        }
        // The worker starts over on the same snapshot and goes on with other tables.
        #expect(try reader.readRows(of: tables[1], slice: nil) { _ in } == 1)
        // The leader holds the lock and reads the table.
        #expect(try source.readRows(of: tables[0], slice: nil) { _ in } == 10)
        reader.close()
        try source.finish()
    }

    @Test("a role at its connection limit backs up with the connections it gets, and says so")
    func connectionLimit() throws {
        let database = try TestDatabase("connlimit")
        try database.execute(
            """
            CREATE TABLE public.t (id int PRIMARY KEY, pad text);
            INSERT INTO public.t SELECT i, repeat('x', 300) FROM generate_series(1, 3000) i;
            DO $$ BEGIN
              CREATE ROLE supabackup_limited LOGIN PASSWORD 'limited-pw' CONNECTION LIMIT 1;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$;
            ALTER ROLE supabackup_limited CONNECTION LIMIT 1;
            GRANT SELECT ON public.t TO supabackup_limited;
            """)
        let url = try TestServer.url(database: database.name)
            .replacingOccurrences(of: "postgres@", with: "supabackup_limited:limited-pw@")
        let directory = try TemporaryDirectory()
        let result = try CLI.run(
            ["backup", "--db-url", url, "--out", directory.path, "--jobs", "4", "--split-tables-larger-than", "8kB"],
            environment: ["PGPASSWORD": ""])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("could not open 3 of 3 worker connections; read with 1"), "\(result.stderr)")
        #expect(result.stderr.contains("too many connections") && !result.stderr.contains("FATAL"))
        #expect(!result.stderr.contains("limited-pw"))
        let archive = try BackupArchive.open(name: result.lastLine, in: directory.path)
        #expect(archive.manifest.tables.first?.rows == 3000)
        #expect(ArchiveVerifier.verify(archive).isIntact)
    }

    @Test("in a running backup, a table a worker cannot lock is read by the leader into the same file")
    func lockBusyScheduled() throws {
        let database = try TestDatabase("lockbusy_run")
        try database.execute(
            """
            CREATE TABLE public.a (id int PRIMARY KEY, pad text); INSERT INTO public.a SELECT i, repeat('a', 500) FROM generate_series(1, 2000) i;
            CREATE TABLE public.b (id int PRIMARY KEY); INSERT INTO public.b SELECT generate_series(1, 10);
            """)
        let source = try DirectBackupSource(connection: try ConnectionString(database.url), exportSnapshot: true)
        let tables = try source.tables(in: ["public"], filters: []).sorted { $0.name < $1.name }
        _ = try source.prepare(tables)
        _ = try source.parallelLayout(of: tables)
        try queueExclusiveLock(on: "public.a", in: database)
        let directory = try TemporaryDirectory()
        let folder = try PartialBackupFolder(in: directory.path, startingAt: Date())
        defer { folder.discard() }
        let scheduler = TableReadScheduler(
            tables: tables, files: ["data/a.ndjson.zst", "data/b.ndjson.zst"], slices: [[nil], [nil]], order: [0, 1],
            folder: folder, level: 3, progress: nil, logger: silentLogger)
        let box = SendableBox(source)
        // The leader waits until the worker has met the lock on a and moved on, then reads a itself.
        let (entries, _) = try scheduler.run(
            leader: source, workers: 1, leaderFirst: { Thread.sleep(forTimeInterval: 1) }
        ) { interrupt in
            try box.value.makeReader(interrupt: interrupt)
        }
        #expect(entries.map(\.rows) == [2000, 10])
        try source.finish()
    }
}

/// Has another session request ACCESS EXCLUSIVE on `table` (it queues behind the backup's lock,
/// giving up after 10 s) and returns once the request is waiting.
private func queueExclusiveLock(on table: String, in database: TestDatabase) throws {
    let url = database.url
    let waiting = Thread {
        guard let connection = try? PostgresConnection(conninfo: url) else { return }
        try? connection.execute("SET lock_timeout = '10s'; LOCK TABLE \(table) IN ACCESS EXCLUSIVE MODE")
        connection.close()
    }
    waiting.start()
    let admin = try TestServer.connect(database: database.name)
    defer { admin.close() }
    for _ in 0..<100 {
        if try admin.query("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::regclass", [table])
            .scalar == "1"
        {
            return
        }
        Thread.sleep(forTimeInterval: 0.05)
    }
    throw TestEnvironmentError(description: "the ACCESS EXCLUSIVE request on \(table) never queued")
}
