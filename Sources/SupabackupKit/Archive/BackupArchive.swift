import Crypto
import Foundation

/// A complete backup folder, opened and with its manifest checked.
///
/// Opening refuses anything that is not a backup directly inside the backups folder, manifests
/// this version cannot read, and manifests naming files outside `data/`.
public struct BackupArchive: Sendable {
    public static let manifestFile = "manifest.json"
    public static let dataDirectory = "data"
    /// Storage objects' bytes, one file each.
    public static let storageDirectory = "storage"
    public static let schemaFile = "schema.sql"
    public static let encryptedSchemaFile = "schema.sql.age"
    /// Manifests are small; a huge one is damage, not something to load.
    static let maximumManifestBytes = 64 << 20

    public let storage: any BackupStorage
    public let name: String
    /// The full manifest (for encrypted archives, `manifest.age` decrypted).
    public let manifest: Manifest
    /// The readable part of an encrypted archive's manifest; nil when unencrypted.
    public let sealed: SealedManifest?
    /// What decrypts the archive's files (empty for unencrypted archives).
    let identities: [AgeIdentity]

    public var isEncrypted: Bool { sealed != nil }

    /// Where the backup is, for messages: `location/NAME`.
    public var path: String { storage.describe(name) }

    /// The storage name of a file of this backup (`data/x.ndjson.zst`, `schema.sql`).
    func object(_ file: String) -> String { name + "/" + file }

    /// Opens backup `name` in the backups folder or storage location `directory`.
    /// - Parameter identities: decrypt an encrypted archive; not needed for unencrypted ones.
    public static func open(name: String, in directory: String, identities: [AgeIdentity] = []) throws
        -> BackupArchive
    {
        try open(name: name, in: try StorageLocation.open(directory), identities: identities)
    }

    /// Opens backup `name` (or `latest`) in `storage`.
    public static func open(name: String, in storage: any BackupStorage, identities: [AgeIdentity] = []) throws
        -> BackupArchive
    {
        let name = try resolve(name, in: storage)
        return try open(stored: try inspect(name: name, in: storage), name: name, in: storage, identities: identities)
    }

    /// The name `latest` stands for: the newest complete backup, as `list` shows first.
    public static let latest = "latest"

    /// `name`, or for `latest` the newest complete backup's name in `storage`.
    public static func resolve(_ name: String, in storage: any BackupStorage) throws -> String {
        guard name == latest else { return name }
        guard let newest = try BackupListing.list(in: storage).first(where: { $0.problem == nil }) else {
            throw ArchiveError(.notFound, "latest: there is no complete backup in \(storage.location)")
        }
        return newest.name
    }

    /// Opens a backup whose `manifest.json` has been read; an encrypted one needs `identities`.
    public static func open(
        stored: StoredManifest, name: String, in storage: any BackupStorage, identities: [AgeIdentity]
    )
        throws -> BackupArchive
    {
        switch stored {
        case .plain(let manifest):
            return BackupArchive(storage: storage, name: name, manifest: manifest, sealed: nil, identities: [])
        case .sealed(let sealed):
            guard !identities.isEmpty else {
                throw ArchiveError(
                    .identityNeeded,
                    "backup \(name) is encrypted: give the identity file that holds its key with --identity FILE (or SUPABACKUP_IDENTITY_FILE)"
                )
            }
            let manifest = try openSealedManifest(sealed, name: name, in: storage, identities: identities)
            return BackupArchive(
                storage: storage, name: name, manifest: manifest, sealed: sealed, identities: identities)
        }
    }

    /// Reads and checks backup `name`'s `manifest.json` without decrypting anything: what
    /// listing, pruning and keyless verification work from.
    /// - Parameter known: the manifest's entry when the caller has just listed it (no second lookup).
    public static func inspect(name: String, in storage: any BackupStorage, manifestEntry known: StoredEntry? = nil)
        throws -> StoredManifest
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
        let stored = try StoredManifest.decode(try readSmall(manifestFile, of: name, in: storage))
        switch stored {
        case .plain(let manifest):
            guard !manifest.isEncrypted, manifest.formatVersion == Manifest.plainFormatVersion else {
                throw ArchiveError(.damaged, "claims encrypted files but has no readable part", file: manifestFile)
            }
            try manifest.validate(folderName: name)
        case .sealed(let sealed):
            try sealed.validate(folderName: name)
        }
        return stored
    }

    /// Decrypts `manifest.age` after checking its stored bytes, and holds it to the readable part.
    private static func openSealedManifest(
        _ sealed: SealedManifest, name: String, in storage: any BackupStorage, identities: [AgeIdentity]
    ) throws -> Manifest {
        let file = SealedManifest.manifestFile
        let stored = try readSmall(file, of: name, in: storage)
        guard Int64(stored.count) == sealed.manifestFile.bytes,
            Crypto.SHA256.hash(data: stored).hex == sealed.manifestFile.sha256
        else { throw ArchiveError(.damaged, "does not match the size and SHA-256 in manifest.json", file: file) }
        let plaintext: [UInt8]
        do {
            plaintext = try AgeFile.decrypt(Array(stored), with: identities)
        } catch var error as ArchiveError {
            error.file = file
            throw error
        }
        let manifest: Manifest
        do {
            manifest = try Manifest.decode(Data(plaintext))
        } catch var error as ArchiveError {
            error.file = file
            throw error
        }
        try manifest.validate(folderName: name)
        guard manifest.isEncrypted, manifest.name == sealed.name, manifest.startedAt == sealed.startedAt,
            SealedManifest.files(of: manifest) == sealed.files
        else {
            throw ArchiveError(
                .damaged, "does not match manifest.json (files, sizes or checksums differ: a file was swapped)",
                file: file)
        }
        return manifest
    }

    /// `schema.sql`, checked against the manifest (and decrypted); nil for backups without one (REST mode).
    public func schemaScript() throws -> SchemaScript? {
        try schemaText().map { try SchemaScript(parsing: $0) }
    }

    /// schema.sql as written (decrypted), checked against the manifest; nil when there is none.
    public func schemaText() throws -> String? {
        guard let entry = manifest.schemaFile else { return nil }
        guard let stored = try storage.entry(object(entry.file)), !stored.isFolder else {
            throw ArchiveError(.damaged, "is missing or not a regular file", file: entry.file)
        }
        let mismatch = ArchiveError(.damaged, "does not match the manifest's size and SHA-256", file: entry.file)
        guard stored.size == entry.bytes else { throw mismatch }
        var data: Data
        do {
            data = try storage.read(object(entry.file), limit: Int(clamping: entry.bytes))
            guard Crypto.SHA256.hash(data: data).hex == entry.sha256 else { throw mismatch }
            if isEncrypted { data = Data(try AgeFile.decrypt(Array(data), with: identities)) }
        } catch var error as ArchiveError {
            error.file = error.file ?? entry.file
            throw error
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// A manifest-sized file of backup `name`.
    private static func readSmall(_ file: String, of name: String, in storage: any BackupStorage) throws -> Data {
        do {
            return try storage.read(name + "/" + file, limit: maximumManifestBytes)
        } catch var error as ArchiveError {
            error.file = file
            if error.code == .io { error.message = "cannot be read: \(error.message)" }
            throw error
        }
    }

    /// Opens a data file for reading its decompressed-ready bytes: decrypting when the archive is
    /// encrypted. `hash` sees every stored byte.
    func openDataFile(_ file: String) throws -> (reader: ObjectReader, stored: HashingReader) {
        let hashing = HashingReader(try storage.openObject(object(file), from: 0))
        guard isEncrypted else { return (hashing, hashing) }
        do {
            return (try AgeReader(hashing, identities: identities), hashing)
        } catch {
            hashing.close()
            throw error
        }
    }
}

extension Manifest {
    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    /// A full manifest (`manifest.json` of an unencrypted archive, `manifest.age`'s contents).
    public static func decode(_ data: Data) throws -> Manifest {
        try decodeBody(data, version: try checkHeader(data))
    }

    /// Reads the format first, so a future version gets "unsupported", not a decoding error.
    /// - Returns: the format version.
    static func checkHeader(_ data: Data) throws -> Int {
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
                "has format version \(header.formatVersion.map(String.init) ?? "?"); this supabackup reads versions up to \(Manifest.currentFormatVersion) (upgrade supabackup)",
                file: BackupArchive.manifestFile)
        }
        return version
    }

    static func decodeBody(_ data: Data, version: Int) throws -> Manifest {
        do {
            return try decoder.decode(Manifest.self, from: data)
        } catch {
            throw ArchiveError(
                .damaged, "does not match format version \(version): \(describe(error))",
                file: BackupArchive.manifestFile)
        }
    }

    public func encoded() throws -> Data { try Self.encode(self) }

    /// How manifests (both kinds) are written: snake_case, sorted keys, pretty, a final newline.
    static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(value)
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
        let schemaName = isEncrypted ? BackupArchive.encryptedSchemaFile : BackupArchive.schemaFile
        if let schema = schemaFile, schema.file != schemaName {
            throw damaged("names schema file '\(BackupName.printable(schema.file))'; it is always \(schemaName)")
        }
        if let encryption, encryption != SealedManifest.encryptionName {
            throw ArchiveError(
                .unsupported,
                "uses encryption '\(BackupName.printable(encryption))', which this supabackup does not read",
                file: BackupArchive.manifestFile)
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
            guard Self.isSHA256(table.sha256) else { throw damaged("table \(label) has no valid sha256") }
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
        try validateStorage(damaged: damaged, files: &files)
    }

    static func isSHA256(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
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
