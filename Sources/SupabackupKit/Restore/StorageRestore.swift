import Foundation
import Logging

/// What a storage restore did.
public struct StorageRestoreResult: Sendable {
    public struct Unwritable: Sendable, Equatable {
        public var bucket: String
        public var name: String
        public var reason: String
    }
    public var bucketsCreated: [String] = []
    public var bucketsExisting: [String] = []
    public var uploaded = 0
    public var uploadedBytes: Int64 = 0
    /// Already in the target with the same bytes and metadata.
    public var skipped = 0
    /// Objects the target's Storage API would not take, with why: the restore is partial.
    public var unwritable: [Unwritable] = []
}

/// Restores a backup's Storage buckets and objects through the target project's Storage API:
/// buckets created without limits, objects uploaded (upserting) with their content type, cache
/// control and user metadata, `jobs` at once, objects already identical in the target skipped,
/// then each bucket's settings applied (uploads are checked against them). A rerun after a
/// failure uploads only what is not there yet.
struct StorageRestore {
    let selection: StorageSelection
    let archive: BackupArchive
    let logger: Logger

    /// The characters the Storage API accepts in object names on every write path (`isValidKey`).
    static let writableCharacters = Set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/!-.*'() &$@=;:+,?".unicodeScalars)

    static func unwritableReason(_ name: String, contentType: String = "") -> String? {
        guard name.unicodeScalars.allSatisfy(writableCharacters.contains) else {
            return
                "the Storage API accepts only letters A-Z a-z, digits and _/!-.*'() &$@=;:+,? in names (no non-ASCII, %, #, ...); no API can write it back"
        }
        if contentType.lowercased().hasPrefix("multipart/form-data") {
            return
                "its content type \(contentType) makes the Storage API parse the upload as a form; upload it through the S3 endpoint"
        }
        return nil
    }

    /// The objects of the selected buckets, checked before anything is written: every stored
    /// file has the size and SHA-256 the manifest lists.
    static func plan(_ archive: BackupArchive, _ selection: StorageSelection) throws
        -> (buckets: [StorageBucket], objects: [Manifest.StorageObject])
    {
        guard let section = archive.manifest.storage else {
            throw UsageError(
                "--with-storage: backup \(archive.name) holds no Storage files (back up with --with-storage)",
                code: .unknownName)
        }
        let buckets = try selection.select(section.buckets, from: "backup \(archive.name)")
        let ids = Set(buckets.map(\.id))
        return (buckets, section.objects.filter { ids.contains($0.bucket) })
    }

    static func checkFiles(_ archive: BackupArchive, _ objects: [Manifest.StorageObject]) throws {
        for object in objects {
            try ArchiveVerifier.checkStoredFile(
                archive, object.file, bytes: object.bytes, sha256: object.sha256,
                of: "object \(object.bucket)/\(BackupName.printable(object.name))")
        }
    }

    /// - Parameters: buckets, objects: what `plan` selected.
    func run(buckets: [StorageBucket], objects: [Manifest.StorageObject]) throws -> StorageRestoreResult {
        try selection.settings.key.requireServiceLevel()
        try Self.checkFiles(archive, objects)
        let client = try StorageAPIClient(settings: selection.settings, logger: logger)
        defer { client.shutdown() }
        var result = StorageRestoreResult()
        let existing = Set(try client.buckets().map(\.id))
        var present: [String: ListedObject] = [:]
        for bucket in buckets {
            if existing.contains(bucket.id) {
                result.bucketsExisting.append(bucket.id)
                var unnamed: [String] = []
                _ = try client.listObjects(bucket.id, unnamed: &unnamed) { present[bucket.id + "\u{0}" + $0.name] = $0 }
            } else if try client.createBucket(bucket) {
                result.bucketsCreated.append(bucket.id)
            } else if try client.buckets().contains(where: { $0.id == bucket.id && $0.name == bucket.name }) {
                // Our own create, retried after its response was cut.
                result.bucketsCreated.append(bucket.id)
            } else {
                throw StorageAPIError(
                    message:
                        "bucket \(bucket.id) cannot be created: its name is taken (another bucket has the name \(bucket.name))"
                )
            }
        }
        logger.info(
            "storage: \(objects.count) objects in \(buckets.count) bucket\(buckets.count == 1 ? "" : "s") to restore (identical ones are skipped)"
        )
        let shared = SendableBox((self, client, present, objects))
        let outcomes = try ParallelWork.run(count: objects.count, jobs: selection.jobs) { index in
            let (engine, client, present, objects) = shared.value
            let object = objects[index]
            return try engine.restore(object, present: present[object.bucket + "\u{0}" + object.name], client: client)
        }
        for (index, outcome) in outcomes.enumerated() {
            switch outcome {
            case .uploaded:
                result.uploaded += 1
                result.uploadedBytes += objects[index].size
            case .identical:
                result.skipped += 1
            case .unwritable(let reason):
                result.unwritable.append(
                    .init(bucket: objects[index].bucket, name: objects[index].name, reason: reason))
            }
        }
        for bucket in buckets { try client.setLimits(bucket) }
        return result
    }

    enum Outcome: Sendable {
        case uploaded
        case identical
        case unwritable(String)
    }

    private func restore(_ object: Manifest.StorageObject, present: ListedObject?, client: StorageAPIClient) throws
        -> Outcome
    {
        if let reason = Self.unwritableReason(object.name, contentType: object.contentType) {
            return .unwritable(reason)
        }
        if let present, let md5 = object.md5, present.size == object.size, present.etag == "\"\(md5)\"",
            present.mimetype == object.contentType, present.cacheControl == object.cacheControl,
            try client.info(object.bucket, object.name)?.userMetadata ?? "{}" == object.userMetadata ?? "{}"
        {
            return .identical
        }
        let archive = self.archive
        let file = object.file
        do {
            try client.upload(
                object.bucket, object.name, size: object.size, contentType: object.contentType,
                cacheControl: object.cacheControl, userMetadata: object.userMetadata
            ) {
                try archive.openDataFile(file).reader
            }
            return .uploaded
        } catch let error as StorageAPIError {
            // What is about this object is reported and the rest goes on; what is about the key,
            // the bucket or the service (401, 403, 404, 5xx after retries) stops the restore.
            switch error.statusCode ?? "" {
            case "413":
                return .unwritable(
                    "\(object.size) bytes is more than the target accepts (its upload limit, or the bucket's file size limit): \(error.message)"
                )
            case "415": return .unwritable("the target bucket does not allow its type \(object.contentType)")
            case "431": return .unwritable("its user metadata is too large for the upload's headers")
            case "400", "422": return .unwritable("the Storage API refused it: \(error.message)")
            default: throw error
            }
        }
    }
}
