import Crypto
import Foundation

/// The result of checking an archive against its manifest.
public struct VerifyReport: Sendable {
    public struct TableCheck: Sendable {
        public var table: TableName
        public var file: String
        public var rows: Int64
        public var bytes: Int64
        /// nil when the file matches the manifest.
        public var problem: String?
    }

    /// A stored file checked without its key (encrypted archives): size and SHA-256 only.
    public struct FileCheck: Sendable {
        public var file: String
        public var bytes: Int64
        public var problem: String?
    }

    public var name: String
    public var tables: [TableCheck]
    public var files: [FileCheck] = []
    /// Problems not tied to one table (stray files, a missing data folder).
    public var problems: [String]

    public var isIntact: Bool {
        problems.isEmpty && tables.allSatisfy { $0.problem == nil } && files.allSatisfy { $0.problem == nil }
    }
    /// Every problem as one line naming the file and table.
    public var allProblems: [String] {
        problems + tables.compactMap { check in check.problem.map { "\(check.file) (table \(check.table)): \($0)" } }
            + files.compactMap { check in check.problem.map { "\(check.file): \($0)" } }
    }
}

/// Checks data files against the manifest without a database: size, SHA-256, zstd integrity,
/// row count, and that every line is one JSON object.
public enum ArchiveVerifier {
    public static func verify(_ archive: BackupArchive) -> VerifyReport {
        var report = VerifyReport(name: archive.name, tables: [], problems: [])
        report.problems = layoutProblems(archive)
        do {
            _ = try archive.schemaScript()
        } catch {
            report.problems.append("\(error)")
        }
        for table in archive.manifest.tables {
            var check = VerifyReport.TableCheck(
                table: table.tableName, file: table.file, rows: 0, bytes: 0, problem: nil)
            do {
                let result = try checkDataFile(archive, table, validateLines: true, consumer: nil)
                check.rows = result.rows
                check.bytes = result.bytes
            } catch let error as ArchiveError {
                check.problem = error.message
            } catch {
                check.problem = "\(error)"
            }
            report.tables.append(check)
        }
        report.files += storageChecks(archive, readData: true)
        return report
    }

    /// Every Storage object's file: its size against the listing, or with `readData` every byte
    /// against the manifest's SHA-256 (and, encrypted, that it decrypts to the object's size).
    /// Files in storage/ the manifest does not name are problems too.
    /// - Parameter sizes: every file of the backup by relative name, when the caller has listed them.
    static func storageChecks(_ archive: BackupArchive, readData: Bool, sizes: [String: Int64]? = nil)
        -> [VerifyReport.FileCheck]
    {
        let objects = archive.manifest.storage?.objects ?? []
        let prefix = BackupArchive.storageDirectory + "/"
        var listed: [String: Int64] = [:]
        var checks: [VerifyReport.FileCheck] = []
        if let sizes {
            listed = sizes.filter { $0.key.hasPrefix(prefix) && !$0.key.hasSuffix("/") }
        } else {
            let folder = archive.object(prefix)
            do {
                for entry in try archive.storage.list(prefix: folder, recursive: true) where !entry.isFolder {
                    listed[prefix + entry.name.dropFirst(folder.count)] = entry.size
                }
            } catch {
                return [.init(file: prefix, bytes: 0, problem: "cannot be listed: \(error)")]
            }
        }
        let known = Set(objects.map(\.file))
        for file in listed.keys.sorted() where !known.contains(file) {
            checks.append(.init(file: file, bytes: listed[file]!, problem: "not listed in the manifest"))
        }
        for object in objects {
            var check = VerifyReport.FileCheck(file: object.file, bytes: listed[object.file] ?? 0, problem: nil)
            defer { checks.append(check) }
            let label = " (object \(BackupName.printable(object.bucket))/\(BackupName.printable(object.name)))"
            guard let size = listed[object.file] else {
                check.problem = "is missing" + label
                continue
            }
            guard size == object.bytes else {
                check.problem = "is \(size) bytes, the manifest says \(object.bytes)" + label
                continue
            }
            guard readData else { continue }
            do {
                let (reader, stored) = try archive.openDataFile(object.file)
                defer { reader.close() }
                var content: Int64 = 0
                try reader.forEachChunk { content += Int64($0.count) }
                if stored.count != object.bytes || stored.sha256 != object.sha256 {
                    check.problem = "SHA-256 does not match the manifest (file changed or damaged)" + label
                } else if content != object.size {
                    check.problem = "holds \(content) bytes, the object had \(object.size)" + label
                }
            } catch let error as ArchiveError {
                check.problem = error.message + label
            } catch {
                check.problem = "\(error)" + label
            }
        }
        return checks
    }

    /// An encrypted archive checked without its key: every stored object is one `manifest.json`
    /// lists, and each has the size and (with `readData`) the SHA-256 it lists. Tables and rows
    /// are unknown without the key.
    public static func verifySealed(
        _ sealed: SealedManifest, name: String, in storage: any BackupStorage, readData: Bool
    ) -> VerifyReport {
        var report = VerifyReport(name: name, tables: [], problems: [])
        let prefix = name + "/"
        var listed: [String: Int64] = [:]
        do {
            for entry in try storage.list(prefix: prefix, recursive: true) where !entry.isFolder {
                listed[String(entry.name.dropFirst(prefix.count))] = entry.size
            }
        } catch {
            report.problems.append("cannot list \(storage.describe(name)): \(error)")
            return report
        }
        let expected = [sealed.manifestFile] + sealed.files
        let known = Set(expected.map(\.file) + [BackupArchive.manifestFile])
        for file in listed.keys.sorted() where !known.contains(file) {
            report.problems.append("\(BackupName.printable(file)): not listed in the manifest")
        }
        for entry in expected {
            var check = VerifyReport.FileCheck(file: entry.file, bytes: listed[entry.file] ?? 0, problem: nil)
            if let size = listed[entry.file] {
                if size != entry.bytes {
                    check.problem = "is \(size) bytes, the manifest says \(entry.bytes)"
                } else if readData {
                    do {
                        let reader = HashingReader(try storage.openObject(prefix + entry.file, from: 0))
                        defer { reader.close() }
                        try reader.forEachChunk { _ in }
                        if reader.count != entry.bytes || reader.sha256 != entry.sha256 {
                            check.problem = "SHA-256 does not match the manifest (file changed or damaged)"
                        }
                    } catch let error as ArchiveError {
                        check.problem = error.message
                    } catch {
                        check.problem = "\(error)"
                    }
                }
            } else {
                check.problem = "is missing"
            }
            report.files.append(check)
        }
        return report
    }

    /// What a listing can tell without downloading: the layout, and every file's size against
    /// the manifest. Rows are the manifest's. The check `verify` makes on object storage unless
    /// asked to read every byte.
    public static func verifyListing(_ archive: BackupArchive) -> VerifyReport {
        var report = VerifyReport(name: archive.name, tables: [], problems: [])
        let all: [StoredEntry]
        do {
            all = try archive.storage.list(prefix: archive.name + "/", recursive: true)
        } catch {
            all = []
            report.problems.append("cannot list \(archive.path): \(error)")
        }
        // One listing serves both checks: sizes, and data/'s own entries (a nested name is a folder).
        var sizes: [String: Int64] = [:]
        var data: [String: StoredEntry] = [:]
        let dataFolder = archive.object(BackupArchive.dataDirectory + "/")
        for entry in all {
            sizes[String(entry.name.dropFirst(archive.name.count + 1))] = entry.size
            guard entry.name.hasPrefix(dataFolder) else { continue }
            let rest = entry.name.dropFirst(dataFolder.count)
            if let slash = rest.firstIndex(of: "/") {
                let folder = dataFolder + rest[..<slash] + "/"
                data[folder] = StoredEntry(name: folder, isFolder: true, size: 0, modified: nil)
            } else {
                data[entry.name] = entry
            }
        }
        report.problems += layoutProblems(archive, dataEntries: data.values.sorted { $0.name < $1.name })
        if let schema = archive.manifest.schemaFile, sizes[schema.file] != schema.bytes {
            report.problems.append(
                "\(schema.file): " + (sizes[schema.file] == nil ? "is missing" : "does not match the manifest's size"))
        }
        for table in archive.manifest.tables {
            var check = VerifyReport.TableCheck(
                table: table.tableName, file: table.file, rows: table.rows, bytes: sizes[table.file] ?? 0, problem: nil)
            if let size = sizes[table.file] {
                if size != table.bytes { check.problem = "is \(size) bytes, the manifest says \(table.bytes)" }
            } else {
                check.problem = "is missing"
            }
            report.tables.append(check)
        }
        report.files += storageChecks(archive, readData: false, sizes: sizes)
        return report
    }

    /// The listing check for `tables`, throwing the first problem: what a restore from object
    /// storage checks before it writes (each file's SHA-256 is then checked as it streams).
    static func checkListedSizes(_ archive: BackupArchive, tables: [Manifest.Table]) throws {
        var report = verifyListing(archive)
        let selected = Set(tables.map(\.file))
        report.tables.removeAll { !selected.contains($0.file) }
        if let problem = report.allProblems.first { throw ArchiveError(.damaged, problem) }
    }

    /// Problems with the data folder itself: missing, or holding files the manifest does not list.
    /// - Parameter dataEntries: data/'s entries (one level) when the caller has listed them.
    static func layoutProblems(_ archive: BackupArchive, dataEntries: [StoredEntry]? = nil) -> [String] {
        var problems: [String] = []
        let folder = archive.object(BackupArchive.dataDirectory + "/")
        let entries: [StoredEntry]
        do {
            entries = try dataEntries ?? archive.storage.list(prefix: folder, recursive: false)
        } catch {
            return ["data/: cannot be listed: \(error)"]
        }
        if entries.isEmpty {
            if !archive.manifest.tables.isEmpty { problems.append("data/: missing or not a directory") }
            return problems
        }
        let prefix = BackupArchive.dataDirectory.count + 1
        let listed = Set(archive.manifest.tables.map { String($0.file.dropFirst(prefix)) })
        for entry in entries where !listed.contains(entry.baseName) || entry.isFolder {
            problems.append("data/\(BackupName.printable(entry.baseName)): not listed in the manifest")
        }
        return problems
    }

    /// Only the folder layout and the size and SHA-256 of every data file (no decompression):
    /// the cheap check a restore makes before it writes.
    public static func checkChecksums(_ archive: BackupArchive, tables: [Manifest.Table]) throws {
        if let problem = layoutProblems(archive).first { throw ArchiveError(.damaged, problem) }
        for table in tables {
            try checkStoredFile(
                archive, table.file, bytes: table.bytes, sha256: table.sha256, of: "table \(table.tableName)")
        }
    }

    /// Reads one stored file (no decryption, no decompression) and holds its size and SHA-256
    /// to the manifest's; `label` says what the file is in the error (`table x`, `object b/k`).
    static func checkStoredFile(
        _ archive: BackupArchive, _ file: String, bytes: Int64, sha256: String, of label: String
    )
        throws
    {
        do {
            let reader = HashingReader(try archive.storage.openObject(archive.object(file), from: 0))
            defer { reader.close() }
            try reader.forEachChunk { _ in }
            try compare(bytes: reader.count, sha256: reader.sha256, manifest: (bytes, sha256))
        } catch var error as ArchiveError {
            error.file = error.file ?? file
            error.message += " (\(label))"
            throw error
        }
    }

    /// Streams one data file, checking it against the manifest; `consumer` sees the
    /// decompressed bytes. Throws `ArchiveError` (`damaged`) on any mismatch.
    @discardableResult
    static func checkDataFile(
        _ archive: BackupArchive, _ table: Manifest.Table, validateLines: Bool,
        consumer: ((UnsafeRawBufferPointer) throws -> Void)?
    ) throws -> (rows: Int64, bytes: Int64) {
        var scanner = LineScanner()
        var newlines: Int64 = 0
        var lastByte: UInt8 = 0x0A
        var badLine: Int64?
        var lineNumber: Int64 = 0
        let (object, stored) = try archive.openDataFile(table.file)
        defer { object.close() }
        try ZstdFileReader().read(object) { chunk in
            if validateLines {
                scanner.feed(chunk) { line in
                    lineNumber += 1
                    if badLine == nil && !JSONValidator.isObject(line) { badLine = lineNumber }
                }
            } else {
                newlines += LineScanner.countNewlines(chunk)
            }
            if let last = chunk.last { lastByte = last }
            try consumer?(chunk)
        }
        let bytes = stored.count
        try compare(bytes: bytes, sha256: stored.sha256, manifest: (table.bytes, table.sha256))
        let rows = validateLines ? scanner.lines : newlines
        if let badLine { throw ArchiveError(.damaged, "line \(badLine) is not a JSON object") }
        if lastByte != 0x0A { throw ArchiveError(.damaged, "last line is incomplete (no newline)") }
        if rows != table.rows {
            throw ArchiveError(.damaged, "holds \(rows) rows, the manifest says \(table.rows)")
        }
        return (rows, bytes)
    }

    private static func compare(bytes: Int64, sha256: String, manifest: (bytes: Int64, sha256: String)) throws {
        if bytes != manifest.bytes {
            throw ArchiveError(.damaged, "is \(bytes) bytes, the manifest says \(manifest.bytes)")
        }
        if sha256 != manifest.sha256 {
            throw ArchiveError(.damaged, "SHA-256 does not match the manifest (file changed or damaged)")
        }
    }
}

extension Sequence where Element == UInt8 {
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}
