import Foundation

/// The readable part of an encrypted archive's `manifest.json`: what `list`, `verify` and
/// `prune` need without a key. Everything else (tables, columns, rows, keys, sequences, the
/// source) is in `manifest.age`, the full `Manifest` encrypted like the data files.
///
/// Every stored file is listed with the size and SHA-256 of its stored (encrypted) bytes, so
/// `verify` checks every byte with no key at hand, and a file swapped in from another backup
/// encrypted to the same key fails its checksum.
public struct SealedManifest: Codable, Sendable, Equatable {
    public static let manifestFile = "manifest.age"
    public static let encryptionName = "age-encryption.org/v1"

    public var format: String
    public var formatVersion: Int
    public var toolVersion: String
    public var name: String
    public var startedAt: String
    public var finishedAt: String
    /// Always `age-encryption.org/v1`.
    public var encryption: String
    /// `manifest.age`.
    public var manifestFile: Manifest.FileEntry
    /// `schema.sql.age` (when there is one) and every data file, sorted by name.
    public var files: [Manifest.FileEntry]
    /// Storage files with their reuse tags, for the next incremental backup (`--with-storage`).
    public var storageIndex: [StorageIndexEntry]? = nil

    /// The readable part for `manifest`, whose encrypted form is `manifestFile`.
    init(for manifest: Manifest, manifestFile: Manifest.FileEntry) {
        format = Manifest.formatName
        formatVersion = Manifest.encryptedFormatVersion
        toolVersion = manifest.toolVersion
        name = manifest.name
        startedAt = manifest.startedAt
        finishedAt = manifest.finishedAt
        encryption = Self.encryptionName
        self.manifestFile = manifestFile
        files = Self.files(of: manifest)
    }

    /// The stored files a full manifest names, as the readable part lists them.
    static func files(of manifest: Manifest) -> [Manifest.FileEntry] {
        let tables = manifest.tables.map { Manifest.FileEntry(file: $0.file, bytes: $0.bytes, sha256: $0.sha256) }
        let objects = (manifest.storage?.objects ?? []).map {
            Manifest.FileEntry(file: $0.file, bytes: $0.bytes, sha256: $0.sha256)
        }
        return (tables + objects + (manifest.schemaFile.map { [$0] } ?? [])).sorted { $0.file < $1.file }
    }

    /// Data bytes, for listings.
    public var dataBytes: Int64 {
        files.filter {
            $0.file.hasPrefix(BackupArchive.dataDirectory + "/")
                || $0.file.hasPrefix(BackupArchive.storageDirectory + "/")
        }.reduce(0) { $0 + $1.bytes }
    }

    func encoded() throws -> Data { try Manifest.encode(self) }

    /// Checks names and checksums: every file a plain file under `data/` or `schema.sql.age`.
    func validate(folderName: String?) throws {
        func damaged(_ message: String) -> ArchiveError {
            ArchiveError(.damaged, message, file: BackupArchive.manifestFile)
        }
        if let folderName, name != folderName {
            throw damaged(
                "names backup '\(BackupName.printable(name))' but lies in folder '\(BackupName.printable(folderName))'")
        }
        guard encryption == Self.encryptionName else {
            throw ArchiveError(
                .unsupported,
                "uses encryption '\(BackupName.printable(encryption))', which this supabackup does not read",
                file: BackupArchive.manifestFile)
        }
        guard manifestFile.file == Self.manifestFile else { throw damaged("names its encrypted manifest wrongly") }
        var seen = Set<String>()
        for entry in files + [manifestFile] {
            guard
                entry.file == Self.manifestFile || entry.file == BackupArchive.encryptedSchemaFile
                    || Manifest.isSafeDataFile(entry.file) || Manifest.isSafeStorageFile(entry.file)
            else { throw damaged("names file '\(BackupName.printable(entry.file))', which is not a file of a backup") }
            guard seen.insert(entry.file).inserted else { throw damaged("file \(entry.file) is listed twice") }
            guard entry.bytes >= 0, Manifest.isSHA256(entry.sha256) else {
                throw damaged("file \(entry.file) has no valid size and sha256")
            }
        }
        for entry in storageIndex ?? [] {
            guard seen.contains(entry.file), Manifest.isSafeStorageFile(entry.file), Manifest.isSHA256(entry.tag) else {
                throw damaged("indexes file '\(BackupName.printable(entry.file))', which it does not list")
            }
        }
    }
}

/// What a `manifest.json` holds: a full manifest (unencrypted archives) or the readable part of
/// an encrypted one.
public enum StoredManifest: Sendable {
    case plain(Manifest)
    case sealed(SealedManifest)

    public var name: String {
        switch self {
        case .plain(let manifest): return manifest.name
        case .sealed(let sealed): return sealed.name
        }
    }

    /// Decodes `manifest.json`, either kind, with format and version checked.
    static func decode(_ data: Data) throws -> StoredManifest {
        let version = try Manifest.checkHeader(data)
        struct Probe: Decodable { var manifestFile: Manifest.FileEntry? }
        guard (try? Manifest.decoder.decode(Probe.self, from: data))?.manifestFile != nil else {
            return .plain(try Manifest.decodeBody(data, version: version))
        }
        do {
            return .sealed(try Manifest.decoder.decode(SealedManifest.self, from: data))
        } catch {
            throw ArchiveError(
                .damaged, "does not match format version \(version): \(describe(error))",
                file: BackupArchive.manifestFile)
        }
    }
}
