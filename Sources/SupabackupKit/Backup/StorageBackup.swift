import Crypto
import Foundation
import Logging

/// Which of a project's Storage buckets a backup or restore takes.
public struct StorageSelection: Sendable {
    /// The project's API (its Storage API is at `<project URL>/storage/v1`) and service key.
    public var settings: RESTSettings
    /// Only these buckets (ids or names); empty: all.
    public var buckets: [String] = []
    public var excludeBuckets: [String] = []
    /// Objects transferred at once.
    public var jobs = 4

    public init(settings: RESTSettings, buckets: [String] = [], excludeBuckets: [String] = [], jobs: Int = 4) {
        self.settings = settings
        self.buckets = buckets
        self.excludeBuckets = excludeBuckets
        self.jobs = jobs
    }

    /// The selected buckets of `all`; a named bucket that is not there is a usage error.
    /// - Parameter hint: what else may explain a missing bucket.
    func select(_ all: [StorageBucket], from where: String, hint: String = "") throws -> [StorageBucket] {
        for name in buckets where !all.contains(where: { $0.id == name || $0.name == name }) {
            throw UsageError("--bucket \(name): no such bucket in \(`where`)\(hint)", code: .unknownName)
        }
        return all.filter { bucket in
            let named = { (list: [String]) in list.contains { $0 == bucket.id || $0 == bucket.name } }
            return (buckets.isEmpty || named(buckets)) && !named(excludeBuckets)
        }
    }
}

/// Backs up a project's Storage buckets and objects into a backup being written: bucket
/// settings, then every object's bytes (streamed in ranges, `jobs` at once) and metadata. An
/// object whose ETag, size and last-modified time match the latest earlier backup of the same
/// project in the same storage is not downloaded: its file is reused (hard link, server-side copy).
struct StorageBackup {
    let selection: StorageSelection
    let folder: PartialBackupFolder
    let logger: Logger

    struct Previous: Sendable {
        var name: String
        /// `bucket \0 name` -> the object as that backup holds it (plain backups).
        var objects: [String: Manifest.StorageObject] = [:]
        /// Reuse tag -> the stored file (encrypted backups, to the same recipients).
        var files: [String: Manifest.FileEntry] = [:]
    }

    func run() throws -> (section: Manifest.StorageSection, warnings: [String]) {
        try selection.settings.key.requireServiceLevel()
        let client = try StorageAPIClient(settings: selection.settings, logger: logger)
        defer { client.shutdown() }
        let project = client.root.absoluteString
        var warnings: [String] = []
        let all = try client.buckets()
        if all.isEmpty {
            warnings.append(
                "the Storage API at \(project) lists no buckets: if the project has some, this key cannot see them (row level security); use the service_role key"
            )
        }
        let buckets = try selection.select(
            all, from: project, hint: " (or the key cannot see it: use the service_role key)"
        ).sorted { $0.id < $1.id }
        let previous = findPrevious(project: project)
        var listing = StorageAPIClient.Listing.v2
        var missing: [String] = []
        var work: [(bucket: String, object: ListedObject)] = []
        for bucket in buckets {
            var unnamed: [String] = []
            let used = try client.listObjects(bucket.id, unnamed: &unnamed) { work.append((bucket.id, $0)) }
            if used == .v1 { listing = .v1 }
            missing += unnamed
        }
        let reuse = previous.map { " (unchanged ones are taken from backup \($0.name))" } ?? ""
        logger.info("storage: \(work.count) objects in \(buckets.count) bucket\(buckets.count == 1 ? "" : "s")\(reuse)")
        // Byte order, as Storage sorts (`COLLATE "C"`).
        work.sort {
            $0.bucket != $1.bucket
                ? $0.bucket < $1.bucket : $0.object.name.utf8.lexicographicallyPrecedes($1.object.name.utf8)
        }

        let shared = SendableBox((self, client, previous, work))
        let results = try ParallelWork.run(count: work.count, jobs: selection.jobs) { index in
            let (engine, client, previous, work) = shared.value
            return try engine.backUp(
                work[index].bucket, work[index].object, number: index + 1, client: client, previous: previous)
        }
        var objects: [Manifest.StorageObject] = []
        for (index, result) in results.enumerated() {
            switch result {
            case .stored(let object):
                objects.append(object)
            case .missing(let reason):
                missing.append("\(work[index].bucket)/\(work[index].object.name): \(reason)")
            }
        }
        for line in missing { warnings.append("storage: not in this backup: \(line)") }
        let section = Manifest.StorageSection(
            project: project, snapshot: false, listing: listing.rawValue, buckets: buckets, objects: objects,
            missing: missing)
        return (section, warnings)
    }

    enum Outcome: Sendable {
        case stored(Manifest.StorageObject)
        case missing(String)
    }

    private func fileName(_ number: Int) -> String {
        String(format: "\(BackupArchive.storageDirectory)/%06d", number) + (folder.isEncrypted ? ".age" : "")
    }

    private func backUp(
        _ bucket: String, _ listed: ListedObject, number: Int, client: StorageAPIClient, previous: Previous?
    ) throws -> Outcome {
        let file = fileName(number)
        if let reused = try reuseEncrypted(bucket, listed, file: file, client: client, previous: previous) {
            return reused
        }
        if let old = previous?.objects[bucket + "\u{0}" + listed.name], listed.etag != nil, old.etag == listed.etag,
            old.size == listed.size, old.lastModified == listed.lastModified,
            try folder.reuse(file, from: previous!.name + "/" + old.file)
        {
            var object = old
            object.file = file
            object.reusedFrom = old.reusedFrom ?? previous!.name
            return .stored(object)
        }
        // An object overwritten while it is read is read again, up to three times.
        var attempt = 0
        while true {
            attempt += 1
            guard let info = try client.info(bucket, listed.name) else {
                return .missing("deleted before it was read")
            }
            let expectedSize = info.size ?? listed.size
            let writer = HashingWriter(try folder.create(file, sizeHint: expectedSize))
            let sink: ObjectWriter =
                folder.isEncrypted ? try AgeWriter(into: writer, recipients: folder.recipients) : writer
            var md5 = Insecure.MD5()
            var size: Int64 = 0
            do {
                let etag = try client.download(bucket, listed.name, size: expectedSize) { chunk in
                    md5.update(bufferPointer: chunk)
                    size += Int64(chunk.count)
                    try sink.write(chunk)
                }
                if let etag, let expected = info.etag, etag != expected, attempt < 3 {
                    throw StorageAPIClient.changed(bucket, listed.name)
                }
                try sink.finish()
            } catch let error as StorageAPIError where error.isNotFound || error.code == "Changed" {
                sink.abort()
                try? folder.delete(file)
                if error.isNotFound { return .missing("deleted while it was read") }
                guard attempt < 3 else { return .missing("changed on every one of 3 reads") }
                continue
            } catch {
                sink.abort()
                try? folder.delete(file)
                throw error
            }
            return .stored(
                Manifest.StorageObject(
                    bucket: bucket, name: listed.name, file: file, bytes: writer.count, sha256: writer.sha256,
                    size: size, md5: md5.finalize().hex,
                    contentType: info.contentType ?? listed.mimetype ?? "application/octet-stream",
                    cacheControl: info.cacheControl ?? listed.cacheControl, userMetadata: info.userMetadata,
                    etag: listed.etag ?? info.etag, lastModified: listed.lastModified ?? info.lastModified,
                    reusedFrom: nil))
        }
    }

    /// In an encrypted backup, an unchanged object's file from the previous backup to the same
    /// recipients, found by its tag; its metadata comes from `/object/info` (no download).
    private func reuseEncrypted(
        _ bucket: String, _ listed: ListedObject, file: String, client: StorageAPIClient, previous: Previous?
    ) throws -> Outcome? {
        guard folder.isEncrypted, let previous, let etag = listed.etag, let size = listed.size,
            let lastModified = listed.lastModified
        else { return nil }
        let tag = StorageIndexEntry.tag(
            recipients: folder.recipients, project: client.root.absoluteString, bucket: bucket, name: listed.name,
            etag: etag, size: size, lastModified: lastModified)
        guard let old = previous.files[tag], let info = try client.info(bucket, listed.name), info.etag == etag,
            try folder.reuse(file, from: previous.name + "/" + old.file)
        else { return nil }
        // A single-part upload's ETag is the MD5 of the bytes; a multipart one's is not.
        let hex = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased()
        let md5 = hex.utf8.count == 32 && hex.allSatisfy(\.isHexDigit) ? hex : nil
        return .stored(
            Manifest.StorageObject(
                bucket: bucket, name: listed.name, file: file, bytes: old.bytes, sha256: old.sha256, size: size,
                md5: md5, contentType: info.contentType ?? listed.mimetype ?? "application/octet-stream",
                cacheControl: info.cacheControl ?? listed.cacheControl, userMetadata: info.userMetadata, etag: etag,
                lastModified: lastModified, reusedFrom: previous.name))
    }

    /// The latest published backup in the same storage with files of the same project, stored
    /// the same way: plain after plain (matched by key, ETag, size and time), encrypted after
    /// encrypted (matched by the readable index's tags, which only the same recipients produce).
    private func findPrevious(project: String) -> Previous? {
        let storage = folder.storage
        guard let entries = try? storage.list(prefix: "", recursive: false) else { return nil }
        let names = entries.filter(\.isFolder).map(\.baseName).filter { BackupName.date(of: $0) != nil }.sorted(by: >)
        for name in names.prefix(20) where name != folder.name {
            switch try? BackupArchive.inspect(name: name, in: storage) {
            case .plain(let manifest)?:
                guard !folder.isEncrypted, let section = manifest.storage, section.project == project else { continue }
                var previous = Previous(name: name)
                for object in section.objects { previous.objects[object.bucket + "\u{0}" + object.name] = object }
                return previous
            case .sealed(let sealed)?:
                guard folder.isEncrypted, let index = sealed.storageIndex, !index.isEmpty else { continue }
                let files = Dictionary(sealed.files.map { ($0.file, $0) }) { first, _ in first }
                var previous = Previous(name: name)
                for entry in index { previous.files[entry.tag] = files[entry.file] }
                return previous
            case nil:
                continue
            }
        }
        return nil
    }
}

private final class ParallelWorkState<T>: @unchecked Sendable {
    // @unchecked: every field is touched only under `lock`.
    let lock = NSLock()
    var next = 0
    var results: [T?]
    var failure: Error?
    init(count: Int) { results = Array(repeating: nil, count: count) }
}

/// Runs `count` items on `jobs` threads; the first error stops handing out work and is thrown.
enum ParallelWork {
    static func run<T: Sendable>(count: Int, jobs: Int, _ body: @escaping @Sendable (Int) throws -> T) throws -> [T] {
        let state = ParallelWorkState<T>(count: count)
        let group = DispatchGroup()
        for _ in 0..<max(1, min(jobs, count)) {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                while true {
                    let index = state.lock.withLock { () -> Int? in
                        guard state.failure == nil, state.next < count else { return nil }
                        defer { state.next += 1 }
                        return state.next
                    }
                    guard let index else { return }
                    do {
                        let result = try body(index)
                        state.lock.withLock { state.results[index] = result }
                    } catch {
                        state.lock.withLock { if state.failure == nil { state.failure = error } }
                    }
                }
            }
        }
        group.wait()
        if let failure = state.failure { throw failure }
        return state.results.map { $0! }
    }
}
