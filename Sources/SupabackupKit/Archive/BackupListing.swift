import Foundation

/// One backup found in a backups folder.
public struct BackupSummary: Sendable, Encodable {
    public var name: String
    /// The start time the name encodes.
    public var time: Date
    public var mode: String?
    public var tables: Int?
    public var rows: Int64?
    /// Stored bytes of all data files (tables and Storage objects).
    public var bytes: Int64?
    /// Storage objects (`--with-storage`), nil when the backup has none or they are private.
    public var objects: Int?
    /// The files are age-encrypted: mode, tables and rows are known only with the key.
    public var encrypted = false
    /// Why the manifest could not be read, when it could not.
    public var problem: String?
    /// The folder or its manifest can be read by users other than the owner.
    public var readableByOthers = false
}

/// Finds backups in storage: folders with a backup name and a manifest.
/// Unfinished backups (locally `.<name>.partial`) and anything else are ignored.
public enum BackupListing {
    public static func list(in directory: String) throws -> [BackupSummary] {
        try list(in: try StorageLocation.open(directory))
    }

    public static func list(in storage: any BackupStorage) throws -> [BackupSummary] {
        var found: [BackupSummary] = []
        for folder in try storage.list(prefix: "", recursive: false) where folder.isFolder {
            let name = folder.baseName
            guard let time = BackupName.date(of: name),
                let manifest = try storage.entry(name + "/" + BackupArchive.manifestFile), !manifest.isFolder
            else { continue }
            var summary = BackupSummary(name: name, time: time)
            summary.readableByOthers = folder.readableByOthers || manifest.readableByOthers
            do {
                switch try BackupArchive.inspect(name: name, in: storage, manifestEntry: manifest) {
                case .plain(let manifest):
                    summary.mode = manifest.mode.rawValue
                    summary.tables = manifest.tables.count
                    summary.rows = manifest.totalRows
                    summary.bytes = manifest.totalBytes + manifest.storageBytes
                    summary.objects = manifest.storage?.objects.count
                case .sealed(let sealed):
                    summary.encrypted = true
                    summary.bytes = sealed.dataBytes
                }
            } catch {
                summary.problem = "\(error)"
            }
            found.append(summary)
        }
        return found.sorted { $0.name > $1.name }
    }
}
