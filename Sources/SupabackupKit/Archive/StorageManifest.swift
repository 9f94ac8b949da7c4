import Crypto
import Foundation

extension Manifest {
    /// Supabase Storage in a backup (`--with-storage`): every bucket's settings and every
    /// object's bytes and metadata. docs/FORMAT.md describes each field.
    public struct StorageSection: Codable, Sendable, Equatable {
        /// The Storage API the files came from (`https://<ref>.supabase.co/storage/v1`); the
        /// next backup of the same project reuses unchanged objects' bytes.
        public var project: String
        /// Always false: objects are listed and read one by one while the project runs, not in
        /// one snapshot (and not in the tables' snapshot).
        public var snapshot: Bool
        /// `list-v2`, or `list-v1` when a bucket had to be listed with the older listing.
        public var listing: String
        public var buckets: [StorageBucket]
        /// Sorted by bucket, then name (byte order).
        public var objects: [StorageObject]
        /// Objects listed but not in this backup (gone before they were read, or not nameable),
        /// one line each.
        public var missing: [String]

        public var bytes: Int64 { objects.reduce(0) { $0 + $1.bytes } }
        public var size: Int64 { objects.reduce(0) { $0 + $1.size } }
        /// Objects this backup read from the project, and those it took unchanged from an
        /// earlier backup (`reused_from`), with their sizes.
        public var downloaded: (count: Int, size: Int64) { Self.tally(objects.filter { $0.reusedFrom == nil }) }
        public var reused: (count: Int, size: Int64) { Self.tally(objects.filter { $0.reusedFrom != nil }) }

        private static func tally(_ objects: [StorageObject]) -> (count: Int, size: Int64) {
            (objects.count, objects.reduce(0) { $0 + $1.size })
        }
    }

    public struct StorageObject: Codable, Sendable, Equatable {
        /// The bucket's id.
        public var bucket: String
        /// The object's key, exactly as Storage holds it.
        public var name: String
        /// `storage/000001` (`.age` when encrypted): the object's bytes, unchanged (not compressed).
        public var file: String
        /// Size and SHA-256 of the stored file.
        public var bytes: Int64
        public var sha256: String
        /// The object's size in bytes (equal to `bytes` unless encrypted).
        public var size: Int64
        /// MD5 of the object's bytes, lowercase hex: what Storage's ETag is for a single-part
        /// upload, so a restore can tell an object already in the target. Absent when an
        /// encrypted backup reused the file without reading it and the ETag was not an MD5.
        public var md5: String?
        public var contentType: String
        public var cacheControl: String?
        /// The object's user metadata as JSON text (keys sorted), nil when none.
        public var userMetadata: String?
        /// The source's ETag and last-modified time, to tell the next backup what changed.
        public var etag: String?
        public var lastModified: String?
        /// The backup whose file this one reuses (not downloaded again), when so.
        public var reusedFrom: String?
    }

    public var storageBytes: Int64 { storage?.bytes ?? 0 }

    /// `storage/<name>`: a file name that cannot leave the folder or hide.
    static func isSafeStorageFile(_ file: String) -> Bool {
        let prefix = BackupArchive.storageDirectory + "/"
        guard file.hasPrefix(prefix) else { return false }
        let base = file.dropFirst(prefix.count)
        return !base.isEmpty && !base.hasPrefix(".") && base.utf8.count <= 255
            && base.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F && $0 != "/" && $0 != "\\" }
    }

    /// The storage section's own consistency: safe file names, listed once, known buckets.
    func validateStorage(damaged: (String) -> ArchiveError, files: inout Set<String>) throws {
        guard let storage else { return }
        let buckets = Set(storage.buckets.map(\.id))
        guard buckets.count == storage.buckets.count else { throw damaged("storage lists a bucket twice") }
        var keys = Set<String>()
        for object in storage.objects {
            let label = "storage object \(BackupName.printable(object.bucket))/\(BackupName.printable(object.name))"
            guard Self.isSafeStorageFile(object.file) else {
                throw damaged(
                    "\(label) names file '\(BackupName.printable(object.file))', which is not a file inside storage/")
            }
            guard files.insert(object.file).inserted else { throw damaged("file \(object.file) is listed twice") }
            guard keys.insert(object.bucket + "\u{0}" + object.name).inserted else {
                throw damaged("\(label) is listed twice")
            }
            guard buckets.contains(object.bucket) else { throw damaged("\(label) is in a bucket the manifest lacks") }
            guard object.bytes >= 0, object.size >= 0, Self.isSHA256(object.sha256) else {
                throw damaged("\(label) has no valid size and sha256")
            }
        }
    }
}

/// Lets the next encrypted backup find unchanged objects without a key: each Storage file of an
/// encrypted archive is listed in the readable `manifest.json` with a tag, an HMAC of the object's
/// identity (project, bucket, key, ETag, size, last-modified) keyed by the recipients. A backup to
/// the same recipients computes the same tag and reuses the file; one to other recipients never
/// does (it could not decrypt it). Confirming a guess from a tag needs the object's key, ETag and
/// last-modified time to the second.
public struct StorageIndexEntry: Codable, Sendable, Equatable {
    public var file: String
    public var tag: String

    static func tag(
        recipients: [AgeRecipient], project: String, bucket: String, name: String, etag: String, size: Int64,
        lastModified: String
    ) -> String {
        let key = SymmetricKey(
            data: SHA256.hash(data: Data(recipients.map(\.description).sorted().joined(separator: "\n").utf8)))
        let message = [project, bucket, name, etag, String(size), lastModified].joined(separator: "\u{0}")
        return Data(HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: key)).hex
    }

    /// The index of `manifest`'s Storage files (objects without an ETag are never reused).
    static func index(of manifest: Manifest, recipients: [AgeRecipient]) -> [StorageIndexEntry]? {
        guard let storage = manifest.storage else { return nil }
        return storage.objects.compactMap { object in
            guard let etag = object.etag, let lastModified = object.lastModified else { return nil }
            return StorageIndexEntry(
                file: object.file,
                tag: tag(
                    recipients: recipients, project: storage.project, bucket: object.bucket, name: object.name,
                    etag: etag, size: object.size, lastModified: lastModified))
        }
    }
}

extension BackupArchive {
    /// The object `bucket/key` (bucket id, then the exact key) of this backup's Storage files.
    public func storageObject(named path: String) throws -> Manifest.StorageObject {
        guard let section = manifest.storage else {
            throw UsageError("backup \(name) holds no Storage files (back up with --with-storage)", code: .unknownName)
        }
        // Bucket ids have no `/`, so the first one ends the bucket.
        let found = section.objects.first { $0.bucket + "/" + $0.name == path }
        guard let found else {
            throw UsageError(
                "backup \(name) has no Storage object '\(BackupName.printable(path))' (give BUCKET/KEY exactly; keys are case-sensitive)",
                code: .unknownName)
        }
        return found
    }

    /// Streams an object's bytes (decrypted), then checks the stored file against the manifest:
    /// a mismatch throws after the bytes went out, as `cat` does for tables.
    public func readObject(_ object: Manifest.StorageObject, to body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let (reader, stored) = try openDataFile(object.file)
        defer { reader.close() }
        var size: Int64 = 0
        do {
            try reader.forEachChunk { chunk in
                size += Int64(chunk.count)
                try body(chunk)
            }
        } catch var error as ArchiveError {
            error.file = error.file ?? object.file
            throw error
        }
        guard stored.count == object.bytes, stored.sha256 == object.sha256, size == object.size else {
            throw ArchiveError(.damaged, "does not match the manifest's size and SHA-256", file: object.file)
        }
    }
}
