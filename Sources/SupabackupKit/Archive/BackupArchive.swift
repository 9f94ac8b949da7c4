import Crypto
import Foundation

/// A complete backup folder, opened and with its manifest checked.
///
/// Opening refuses anything that is not a backup directly inside the backups folder, manifests
/// this version cannot read, and manifests naming files outside `data/`.
public struct BackupArchive: Sendable {
    public static let manifestFile = "manifest.json"
    public static let dataDirectory = "data"
    public static let schemaFile = "schema.sql"
    /// Manifests are small; a huge one is damage, not something to load.
    static let maximumManifestBytes = 64 << 20

    public let storage: any BackupStorage
    public let name: String
    public let manifest: Manifest

    /// Where the backup is, for messages: `location/NAME`.
    public var path: String { storage.describe(name) }

    /// The storage name of a file of this backup (`data/x.ndjson.zst`, `schema.sql`).
    func object(_ file: String) -> String { name + "/" + file }

    /// Opens backup `name` in the backups folder or storage location `directory`.
    public static func open(name: String, in directory: String) throws -> BackupArchive {
        try open(name: name, in: try StorageLocation.open(directory))
    }

    /// Opens backup `name` in `storage`.
    public static func open(name: String, in storage: any BackupStorage) throws -> BackupArchive {
        try open(name: name, in: storage, manifestEntry: nil)
    }

    /// - Parameter known: the manifest's entry when the caller has just listed it (no second lookup).
    static func open(name: String, in storage: any BackupStorage, manifestEntry known: StoredEntry?) throws
        -> BackupArchive
    {
        try BackupName.validateUserInput(name)
        let location = storage.location
        guard let manifestEntry = try known ?? storage.entry(name + "/" + manifestFile), !manifestEntry.isFolder
        else {
            // `entry` finds a folder also where folders are only key prefixes (object storage).
            switch try storage.entry(name) {
            case .some(let entry) where !entry.isFolder:
                throw ArchiveError(
                    .invalidName, "'\(BackupName.printable(name))' in \(location) is not a backup folder")
            case .none:
                throw ArchiveError(
                    .notFound,
                    "no backup named '\(BackupName.printable(name))' in \(location) (see: supabackup list --dir \(location))"
                )
            case .some:
                throw ArchiveError(
                    .damaged, "'\(BackupName.printable(name))' has no manifest.json: it is not a complete backup")
            }
        }
        guard manifestEntry.size <= maximumManifestBytes else {
            throw ArchiveError(.damaged, "is too large to be a manifest", file: manifestFile)
        }
        let manifest = try readManifest(name + "/" + manifestFile, in: storage)
        try manifest.validate(folderName: name)
        return BackupArchive(storage: storage, name: name, manifest: manifest)
    }

    /// `schema.sql`, checked against the manifest; nil for backups without one (REST mode).
    public func schemaScript() throws -> SchemaScript? {
        guard let entry = manifest.schemaFile else { return nil }
        guard let stored = try storage.entry(object(entry.file)), !stored.isFolder else {
            throw ArchiveError(.damaged, "is missing or not a regular file", file: entry.file)
        }
        let mismatch = ArchiveError(.damaged, "does not match the manifest's size and SHA-256", file: entry.file)
        guard stored.size == entry.bytes else { throw mismatch }
        let data: Data
        do {
            data = try storage.read(object(entry.file), limit: Int(clamping: entry.bytes))
        } catch var error as ArchiveError {
            error.file = error.file ?? entry.file
            throw error
        }
        guard Crypto.SHA256.hash(data: data).hex == entry.sha256 else { throw mismatch }
        return try SchemaScript(parsing: String(decoding: data, as: UTF8.self))
    }

    static func readManifest(_ name: String, in storage: any BackupStorage) throws -> Manifest {
        let data: Data
        do {
            data = try storage.read(name, limit: maximumManifestBytes)
        } catch var error as ArchiveError {
            error.file = manifestFile
            if error.code == .io { error.message = "cannot be read: \(error.message)" }
            throw error
        }
        return try Manifest.decode(data)
    }
}

extension Manifest {
    public static func decode(_ data: Data) throws -> Manifest {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        // Read the format first, so a future version gets "unsupported", not a decoding error.
        struct Header: Decodable {
            var format: String?
            var formatVersion: Int?
        }
        guard let header = try? decoder.decode(Header.self, from: data) else {
            throw ArchiveError(.damaged, "is not valid JSON", file: BackupArchive.manifestFile)
        }
        guard header.format == Manifest.formatName else {
            throw ArchiveError(.damaged, "is not a supabackup manifest", file: BackupArchive.manifestFile)
        }
        guard let version = header.formatVersion, version <= Manifest.currentFormatVersion, version >= 1 else {
            throw ArchiveError(
                .unsupported,
                "has format version \(header.formatVersion.map(String.init) ?? "?"); this supabackup reads version \(Manifest.currentFormatVersion) (upgrade supabackup)",
                file: BackupArchive.manifestFile)
        }
        do {
            return try decoder.decode(Manifest.self, from: data)
        } catch {
            throw ArchiveError(
                .damaged, "does not match format version \(version): \(describe(error))",
                file: BackupArchive.manifestFile)
        }
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        return data
    }

    /// Checks internal consistency. Every path must be a plain file directly under `data/`.
    public func validate(folderName: String? = nil) throws {
        func damaged(_ message: String) -> ArchiveError {
            ArchiveError(.damaged, message, file: BackupArchive.manifestFile)
        }
        if let folderName, name != folderName {
            throw damaged(
                "names backup '\(BackupName.printable(name))' but lies in folder '\(BackupName.printable(folderName))'")
        }
        if let schema = schemaFile, schema.file != BackupArchive.schemaFile {
            throw damaged("names schema file '\(BackupName.printable(schema.file))'; it is always schema.sql")
        }
        var files = Set<String>()
        var names = Set<TableName>()
        for table in tables {
            let label = table.tableName.description
            guard Self.isSafeDataFile(table.file) else {
                throw damaged(
                    "table \(label) names file '\(BackupName.printable(table.file))', which is not a file inside data/")
            }
            guard files.insert(table.file).inserted else { throw damaged("file \(table.file) is listed twice") }
            guard names.insert(table.tableName).inserted else { throw damaged("table \(label) is listed twice") }
            guard table.rows >= 0, table.bytes >= 0 else { throw damaged("table \(label) has a negative size") }
            guard table.sha256.utf8.count == 64,
                table.sha256.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
            else { throw damaged("table \(label) has no valid sha256") }
            if let parts = table.parts,
                parts.reduce(0, { $0 + $1.rows }) != table.rows || parts.reduce(0, { $0 + $1.bytes }) != table.bytes
                    || parts.contains(where: { $0.rows < 0 || $0.bytes <= 0 })
            {
                throw damaged("table \(label) has parts that do not add up to its rows and bytes")
            }
            var columnNames = Set<String>()
            for column in table.columns {
                guard columnNames.insert(column.name).inserted else {
                    throw damaged("table \(label) lists column \(column.name) twice")
                }
            }
            for key in table.primaryKey where !columnNames.contains(key) {
                throw damaged("table \(label) has primary key column \(key) that is not among its columns")
            }
        }
    }

    /// `data/<name>` with a name that cannot leave the folder or hide.
    static func isSafeDataFile(_ file: String) -> Bool {
        let prefix = BackupArchive.dataDirectory + "/"
        guard file.hasPrefix(prefix) else { return false }
        let base = file.dropFirst(prefix.count)
        guard !base.isEmpty, !base.hasPrefix("."), base.utf8.count <= 255 else { return false }
        return base.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F && $0 != "/" && $0 != "\\" }
    }
}

func describe(_ error: Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, let context):
        return "missing '\(path(context.codingPath + [key]))'"
    case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
        return "wrong type at '\(path(context.codingPath))'"
    case DecodingError.dataCorrupted(let context):
        return context.codingPath.isEmpty ? "not valid JSON" : "invalid value at '\(path(context.codingPath))'"
    default:
        return "\(error)"
    }
}

private func path(_ keys: [CodingKey]) -> String {
    keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
}
