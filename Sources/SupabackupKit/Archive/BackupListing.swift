import Foundation

/// One backup found in a backups folder.
public struct BackupSummary: Sendable, Encodable {
    public var name: String
    /// The start time the name encodes.
    public var time: Date
    public var mode: String?
    public var tables: Int?
    public var rows: Int64?
    /// Compressed bytes of all data files.
    public var bytes: Int64?
    /// Why the manifest could not be read, when it could not.
    public var problem: String?
    /// The folder or its manifest can be read by users other than the owner.
    public var readableByOthers = false
}

/// Finds backups in a folder: directories with a backup name and a manifest.
/// Folders of unfinished backups (hidden, `.<name>.partial`) and anything else are ignored.
public enum BackupListing {
    public static func list(in directory: String) throws -> [BackupSummary] {
        guard FileSystem.isRealDirectory(directory) else {
            if FileManager.default.fileExists(atPath: directory) {
                throw ArchiveError(.io, "\(directory) is not a directory")
            }
            return []
        }
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw ArchiveError(.io, "cannot read \(directory): \(error.localizedDescription)")
        }
        var found: [BackupSummary] = []
        for entry in entries {
            guard let time = BackupName.date(of: entry) else { continue }
            let path = (directory as NSString).appendingPathComponent(entry)
            guard FileSystem.isRealDirectory(path),
                FileSystem.isRegularFile((path as NSString).appendingPathComponent(BackupArchive.manifestFile))
            else { continue }
            var summary = BackupSummary(name: entry, time: time)
            for item in [path, (path as NSString).appendingPathComponent(BackupArchive.manifestFile)] {
                if let mode = (try? FileManager.default.attributesOfItem(atPath: item)[.posixPermissions]) as? Int,
                    mode & 0o077 != 0
                {
                    summary.readableByOthers = true
                }
            }
            do {
                let archive = try BackupArchive.open(name: entry, in: directory)
                summary.mode = archive.manifest.mode.rawValue
                summary.tables = archive.manifest.tables.count
                summary.rows = archive.manifest.totalRows
                summary.bytes = archive.manifest.totalBytes
            } catch {
                summary.problem = "\(error)"
            }
            found.append(summary)
        }
        return found.sorted { $0.name > $1.name }
    }
}
