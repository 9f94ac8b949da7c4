import Foundation
import SupabackupKit
import TestSupport

func backup(
    _ database: TestDatabase, into directory: TemporaryDirectory, schemas: [String] = ["public"],
    tables: [String] = [], exclude: [String] = []
) throws -> BackupResult {
    let options = BackupOptions(
        connection: try ConnectionString(database.url), outputDirectory: directory.path, schemas: schemas,
        tables: try tables.map { try TableFilter(parsing: $0) },
        excludeTables: try exclude.map { try TableFilter(parsing: $0) })
    return try BackupEngine(options: options.forTests, logger: silentLogger).run()
}

@discardableResult
func restore(
    _ name: String, from directory: TemporaryDirectory, into database: TestDatabase, tables: [String] = [],
    dryRun: Bool = false, disableTriggers: Bool = false
) throws -> RestoreResult {
    let options = RestoreOptions(
        connection: try ConnectionString(database.url), directory: directory.path, name: name,
        tables: try tables.map { try TableFilter(parsing: $0) }, dryRun: dryRun, disableTriggers: disableTriggers)
    return try RestoreEngine(options: options, logger: silentLogger).run()
}

/// A source database loaded from fixture files and an empty target with the same schema.
func sourceAndTarget(_ label: String, schema: String, data: String? = nil) throws -> (TestDatabase, TestDatabase) {
    let source = try TestDatabase(label + "_src")
    try source.run(sqlFile: schema)
    if let data { try source.run(sqlFile: data) }
    let target = try TestDatabase(label + "_dst")
    try target.run(sqlFile: schema)
    return (source, target)
}

/// Every row of `table` as text, ordered by its text.
func rowTexts(_ database: TestDatabase, _ table: String) throws -> [String?] {
    try database.rows("SELECT t::text FROM \(table) t ORDER BY 1").map { $0[0] }
}

/// A table's decompressed NDJSON, read through the archive (checksums checked).
func ndjson(_ archive: BackupArchive, _ table: Manifest.Table) throws -> Data {
    var data = Data()
    try archive.readRows(of: table) { data.append(contentsOf: $0) }
    return data
}
