import Foundation
import SupabackupKit
import TestSupport
import Testing

/// Through PgBouncer in transaction mode (the stand-in for Supabase's pooler): every transaction
/// may run on another server backend, and session state set outside a transaction stays on the
/// backend for the next client. Other clients share the small pool, leave their own settings
/// behind and watch for ours.
@Suite("Through a transaction-mode pooler", .serialized)
struct PoolerTests {
    /// `database` on the test server, reached through the pooler.
    static func poolerURL(_ database: TestDatabase) throws -> String {
        guard let base = ProcessInfo.processInfo.environment["SUPABACKUP_TEST_POOLER_URL"], !base.isEmpty,
            let slash = base.range(of: "/", options: .backwards)
        else {
            throw TestEnvironmentError(
                description:
                    "SUPABACKUP_TEST_POOLER_URL is not set: run the tests with scripts/test.sh, which starts PgBouncer")
        }
        return String(base[..<slash.upperBound]) + database.name
    }

    /// Database defaults no client sets and supabackup overrides inside its transactions: a
    /// neighbour seeing supabackup's value instead means a setting leaked.
    static let defaults: [(name: String, value: String, ours: String)] = [
        ("statement_timeout", "77s", "0"), ("lock_timeout", "7s", "0"),
        ("idle_in_transaction_session_timeout", "78s", "0"), ("extra_float_digits", "0", "1"),
        ("IntervalStyle", "iso_8601", "postgres"), ("bytea_output", "escape", "hex"),
        ("xmloption", "document", "content"),
    ]

    /// Settings only supabackup makes, and the values that show it did.
    static let ours: [(name: String, value: String)] =
        defaults.map { ($0.name, $0.ours) } + [
            ("search_path", "pg_catalog"), ("row_security", "off"), ("session_replication_role", "replica"),
            ("check_function_bodies", "off"), ("TimeZone", "UTC"), ("DateStyle", "ISO, YMD"),
        ]

    /// Gives a database the awkward defaults, before any pooled connection to it exists.
    static func prepare(_ database: TestDatabase) throws {
        for setting in defaults {
            try database.execute(
                "ALTER DATABASE \(SQL.quoteIdentifier(database.name)) SET \(setting.name) = '\(setting.value)'")
        }
    }

    /// Other clients of the pool: some leave session settings behind on whatever backend they
    /// get (plain SET, outside and inside transactions), others read the settings they get and
    /// record any that only supabackup makes.
    final class Neighbours: @unchecked Sendable {
        // @unchecked: `leaks`, `running` and `samples` are guarded by `lock`.
        private let lock = NSLock()
        private var leaks: [String] = []
        private var samples = 0
        private var running = true
        private let done = DispatchGroup()
        private let url: String

        init(url: String) throws {
            self.url = url
            // Every backend of the pool dirty from the start: hold them all at once, then SET.
            let holders = try (0..<4).map { _ in try PostgresConnection(conninfo: url) }
            for holder in holders { try holder.execute("BEGIN") }
            for holder in holders { try holder.execute(Self.dirt + "COMMIT") }
            for holder in holders { holder.close() }
            for index in 0..<4 {
                done.enter()
                Thread { [self] in
                    defer { done.leave() }
                    index % 2 == 0 ? dirty() : watch()
                }.start()
            }
        }

        /// Session settings left behind, one statement (so one transaction, maybe one backend) each.
        static let dirt = """
            SET TimeZone = 'America/St_Johns'; SET DateStyle = 'SQL, DMY'; SET extra_float_digits = -15;
            SET bytea_output = 'escape'; SET IntervalStyle = 'sql_standard'; SET search_path = pg_temp, public;
            SET xmloption = document;
            """

        private var isRunning: Bool { lock.withLock { running } }

        private func dirty() {
            guard let connection = try? PostgresConnection(conninfo: url) else { return }
            defer { connection.close() }
            while isRunning {
                for statement in Self.dirt.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                    try? connection.execute(String(statement))
                }
                Thread.sleep(forTimeInterval: 0.005)
            }
        }

        private func watch() {
            guard let connection = try? PostgresConnection(conninfo: url) else { return }
            defer { connection.close() }
            repeat {
                check(connection)
                Thread.sleep(forTimeInterval: 0.005)
            } while isRunning
        }

        private func check(_ connection: PostgresConnection) {
            let names = PoolerTests.ours.map { "current_setting('\($0.name)')" }.joined(separator: ", ")
            guard let row = try? connection.query("SELECT \(names), current_setting('application_name')").rows.first
            else { return }
            lock.withLock {
                samples += 1
                for (index, setting) in PoolerTests.ours.enumerated() where row[index] == setting.value {
                    leaks.append("\(setting.name) = \(setting.value)")
                }
                if row.last??.hasPrefix("supabackup") == true { leaks.append("application_name = \(row.last!!)") }
            }
        }

        /// Stops the clients, then reads every backend of the pool once more (holding them all).
        func stop() throws -> (leaks: [String], samples: Int) {
            lock.withLock { running = false }
            done.wait()
            let holders = try (0..<4).map { _ in try PostgresConnection(conninfo: url) }
            for holder in holders { try holder.execute("BEGIN") }
            for holder in holders { check(holder) }
            for holder in holders { holder.close() }
            return lock.withLock { (Array(Set(leaks)).sorted(), samples) }
        }
    }

    /// A Supabase project with the type matrix beside the app, auth users included.
    static func project(_ label: String, data: Bool) throws -> TestDatabase {
        let database = try SupabaseProjectTests.project(label, app: data, data: data)
        if data { try database.run(sqlFile: "fixtures/types.sql") }
        try prepare(database)
        return database
    }

    static func backup(_ url: String, into directory: TemporaryDirectory) throws -> BackupResult {
        try SupabaseProjectTests.backupWithAuth(url: url, into: directory)
    }

    static func restore(
        _ name: String, from directory: TemporaryDirectory, into url: String, createSchema: Bool,
        disableTriggers: Bool = false
    ) throws -> RestoreResult {
        try SupabaseProjectTests.restoreProject(
            name, from: directory, into: url, createSchema: createSchema, disableTriggers: disableTriggers)
    }

    static let tables = ["auth.users", "auth.identities", "public.profiles", "public.notes", "public.types"]

    @Test("a backup through the pooler equals a direct one byte for byte, and leaves nothing behind")
    func backupEqualsDirect() throws {
        let source = try Self.project("pool_src", data: true)
        let directory = try TemporaryDirectory()
        let direct = try Self.backup(source.url, into: directory)
        Thread.sleep(forTimeInterval: 0.002)  // a distinct backup name
        let neighbours = try Neighbours(url: try Self.poolerURL(source))
        let pooled: BackupResult
        do {
            pooled = try Self.backup(try Self.poolerURL(source), into: directory)
        } catch {
            _ = try? neighbours.stop()
            throw error
        }
        let (leaks, samples) = try neighbours.stop()
        #expect(leaks.isEmpty, "other clients saw: \(leaks)")
        #expect(samples > 4)

        #expect(pooled.manifest.tables.map(\.tableName) == direct.manifest.tables.map(\.tableName))
        #expect(pooled.manifest.tables.count >= Self.tables.count)
        for table in direct.manifest.tables {
            let name = table.tableName.description
            #expect(try sortedLines(pooled, table.name) == sortedLines(direct, table.name), "\(name)")
            #expect(pooled.manifest.table(table.tableName)?.rows == table.rows, "\(name)")
        }
        #expect(pooled.manifest.sequences == direct.manifest.sequences)
        let schema = { (result: BackupResult) in
            try String(contentsOfFile: result.path + "/schema.sql", encoding: .utf8)
        }
        #expect(try schema(pooled) == schema(direct))
    }

    @Test("a pool with no room for the worker connections: the backup completes with the leader, nothing waits")
    func fullPool() throws {
        let source = try Self.project("pool_full", data: true)
        let url = try Self.poolerURL(source)
        // Three of the pool's four backends held in open transactions; the backup's leader gets
        // the last one and its workers queue in the pooler behind it.
        let holders = try (0..<3).map { _ in try PostgresConnection(conninfo: url) }
        defer { for holder in holders { holder.close() } }
        for holder in holders { try holder.execute("BEGIN; SELECT 1") }
        let directory = try TemporaryDirectory()
        var options = BackupOptions(connection: try ConnectionString(url), outputDirectory: directory.path)
        options.withAuth = true
        options.jobs = 4
        options.splitBytes = 8192
        // Workers queued behind the backup's own connections are interrupted when the work runs
        // out, quietly: they are not failures. (Were the leader to wait for them, this would take
        // the test pooler's query_wait_timeout, 20 s, not fail: no test here asserts on time.)
        let log = WarningLog()
        let pooled = try BackupEngine(options: options, logger: log.logger).run()
        #expect(!log.messages.contains { $0.contains("worker connections") }, "\(log.messages)")
        let direct = try Self.backup(source.url, into: directory)
        for table in direct.manifest.tables {
            #expect(try sortedLines(pooled, table.name) == sortedLines(direct, table.name), "\(table.name)")
        }
    }

    @Test(
        "restores through the pooler (fresh with --create-schema, existing, --disable-triggers) equal direct ones",
        arguments: [false, true])
    func restoreEqualsDirect(_ disableTriggers: Bool) throws {
        let source = try Self.project("pool_rsrc", data: true)
        let directory = try TemporaryDirectory()
        let result = try Self.backup(source.url, into: directory)

        let direct = try Self.project("pool_rdirect", data: false)
        _ = try Self.restore(result.name, from: directory, into: direct.url, createSchema: true)
        let pooledTarget = try Self.project("pool_rpooled", data: false)
        let neighbours = try Neighbours(url: try Self.poolerURL(pooledTarget))
        do {
            _ = try Self.restore(
                result.name, from: directory, into: try Self.poolerURL(pooledTarget), createSchema: true,
                disableTriggers: disableTriggers)
            // Again into the now existing tables: the upsert path, through the pooler.
            _ = try Self.restore(
                result.name, from: directory, into: try Self.poolerURL(pooledTarget), createSchema: false,
                disableTriggers: disableTriggers)
        } catch {
            _ = try? neighbours.stop()
            throw error
        }
        let (leaks, _) = try neighbours.stop()
        #expect(leaks.isEmpty, "other clients saw: \(leaks)")

        for table in Self.tables {
            #expect(try pooledTarget.digest(table) == source.digest(table), "\(table)")
            #expect(try pooledTarget.digest(table) == direct.digest(table), "\(table)")
        }
        #expect(
            try pooledTarget.rows(SupabaseProjectTests.fingerprint) == source.rows(SupabaseProjectTests.fingerprint))
        let hashes = "SELECT id::text, encrypted_password FROM auth.users ORDER BY id"
        #expect(try pooledTarget.rows(hashes) == source.rows(hashes))
        // Values whose text depends on the session: compared as the source prints them.
        let styled = "SELECT id, tstz::text, iv::text, by::text, f8::text, d::text FROM public.types ORDER BY id"
        #expect(try pooledTarget.rows(styled) == source.rows(styled))
        let nextNote = "SELECT last_value FROM public.notes_id_seq"
        #expect(try pooledTarget.scalar(nextNote) == source.scalar(nextNote))
    }
}
