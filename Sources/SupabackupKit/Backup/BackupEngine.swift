import Foundation
import Logging

public struct BackupOptions: Sendable {
    public var connection: ConnectionString
    /// The backups folder; the backup becomes `outputDirectory/NAME`.
    public var outputDirectory: String
    public var schemas: [String]
    public var tables: [TableFilter]
    public var excludeTables: [TableFilter]
    public var compressionLevel: Int32

    public init(
        connection: ConnectionString, outputDirectory: String = "backups", schemas: [String] = ["public"],
        tables: [TableFilter] = [], excludeTables: [TableFilter] = [], compressionLevel: Int32 = 3
    ) {
        self.connection = connection
        self.outputDirectory = outputDirectory
        self.schemas = schemas
        self.tables = tables
        self.excludeTables = excludeTables
        self.compressionLevel = compressionLevel
    }
}

public struct BackupResult: Sendable {
    public var name: String
    public var path: String
    public var manifest: Manifest
}

/// Backs up tables over one direct connection, in one `REPEATABLE READ` snapshot.
///
/// The backup is written into a hidden `.NAME.partial` folder and renamed to `NAME` only after
/// the manifest is on disk; any error removes the partial folder.
public struct BackupEngine {
    public var options: BackupOptions
    public var logger: Logger

    public init(options: BackupOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public func run(now: Date = Date()) throws -> BackupResult {
        guard !options.schemas.isEmpty else { throw UsageError("no schema to back up") }
        let connection: PostgresConnection
        do {
            connection = try PostgresConnection(conninfo: options.connection.raw)
        } catch var error as PostgresError {
            error.message = options.connection.redact(error.message)
            throw error
        }
        defer { connection.close() }
        try Session.configure(connection, applicationName: "supabackup backup", pinSearchPath: true)
        try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        // row_security = off makes RLS an error instead of a silently partial backup.
        try connection.execute("SET LOCAL row_security = off")

        let selected = try selectTables(connection)
        if !selected.isEmpty {
            // Like pg_dump: keep the tables from being dropped or altered while we read them.
            try connection.execute(
                "LOCK TABLE " + selected.map(\.tableName.quoted).joined(separator: ", ") + " IN ACCESS SHARE MODE")
        }

        let folder = try PartialBackupFolder(in: options.outputDirectory, startingAt: now)
        do {
            var manifest = try writeTables(selected, connection: connection, folder: folder, now: now)
            try connection.execute("COMMIT")
            manifest.finishedAt = BackupName.iso8601(Date())
            let path = try folder.publish(manifest)
            logger.info("backup complete", metadata: ["name": "\(folder.name)", "tables": "\(manifest.tables.count)"])
            return BackupResult(name: folder.name, path: path, manifest: manifest)
        } catch {
            folder.discard()
            throw error
        }
    }

    private func selectTables(_ connection: PostgresConnection) throws -> [CatalogTable] {
        let schemas = Array(Set(options.schemas + options.tables.compactMap(\.schema))).sorted()
        let existing = try Catalog.existingSchemas(schemas, on: connection)
        for schema in options.schemas where !existing.contains(schema) {
            throw UsageError("schema \(SQL.displayIdentifier(schema)) does not exist")
        }
        let all = try Catalog.tables(in: schemas, on: connection)
        let candidates = all.filter { table in
            options.schemas.contains(table.schema) || options.tables.contains { $0.matches(table.tableName) }
        }
        let names = try options.tables.select(from: candidates.map(\.tableName), excluding: options.excludeTables)
        let wanted = Set(names)
        return candidates.filter { wanted.contains($0.tableName) }
    }

    private func writeTables(
        _ tables: [CatalogTable], connection: PostgresConnection, folder: PartialBackupFolder, now: Date
    ) throws -> Manifest {
        let classifier = TypeClassifier(connection: connection)
        var fileNames = DataFileName()
        var entries: [Manifest.Table] = []
        for table in tables {
            var columns: [Manifest.Column] = []
            for column in table.columns {
                columns.append(
                    Manifest.Column(
                        name: column.name, type: column.type, nullable: column.nullable,
                        generated: column.isGenerated ? "stored" : nil,
                        identity: column.identity == "a" ? "always" : column.identity == "d" ? "by_default" : nil,
                        encoding: try classifier.encoding(forType: column.typeOid)))
            }
            let file = fileNames.next(for: table.tableName)
            let statement = RowQuery.copyStatement(
                table: table.tableName, partitioned: table.kind == "p",
                columns: columns.map { RowQuery.Column(name: $0.name, encoding: $0.encoding) })
            let started = Date()
            let writer = try ZstdFileWriter(path: folder.path(of: file), level: options.compressionLevel)
            let rows: Int
            do {
                rows = try connection.copyOut(statement) { row in try writer.write(row) }
            } catch let error as PostgresError {
                throw BackupError(table: table.tableName, underlying: error)
            }
            let (bytes, sha256) = try writer.finish()
            let seconds = Date().timeIntervalSince(started)
            logger.info(
                "table done",
                metadata: [
                    "table": "\(table.tableName)", "rows": "\(rows)", "raw_bytes": "\(writer.rawBytes)",
                    "bytes": "\(bytes)", "seconds": "\(String(format: "%.2f", seconds))",
                ])
            entries.append(
                Manifest.Table(
                    schema: table.schema, name: table.name, kind: table.kind == "p" ? "partitioned" : "table",
                    file: file, columns: columns, primaryKey: table.primaryKey ?? [],
                    foreignKeys: table.foreignKeys ?? [], rows: Int64(rows), bytes: bytes, sha256: sha256))
        }
        let sequences = try SequenceCatalog.sequences(feeding: tables, on: connection)
        return Manifest(
            format: Manifest.formatName, formatVersion: Manifest.currentFormatVersion, toolVersion: Supabackup.version,
            name: folder.name, startedAt: BackupName.iso8601(folder.startedAt), finishedAt: "",
            mode: "direct",
            source: Manifest.Source(
                host: connection.host, port: connection.port, database: connection.database, user: connection.user),
            serverVersion: try connection.query("SHOW server_version").scalar ?? "",
            consistentSnapshot: true, schemas: options.schemas, tables: entries,
            restoreOrder: RestoreOrder(manifestTables: entries).order, sequences: sequences, warnings: [])
    }
}

/// A failure while backing up one table.
public struct BackupError: Error, CustomStringConvertible, Sendable {
    public var table: TableName
    public var underlying: PostgresError

    public var description: String {
        if underlying.sqlState == "42501" {
            return "table \(table): \(underlying.message); the role needs SELECT on it and must bypass row level security (BYPASSRLS or table owner)"
        }
        return "table \(table): \(underlying)"
    }
}
