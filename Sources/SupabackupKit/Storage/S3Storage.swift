import Crypto
import Foundation
import NIOHTTP1

/// Backups in S3-compatible object storage (AWS S3, R2, B2, MinIO, Supabase Storage) under
/// `s3://bucket/prefix/`, in exactly the local layout.
///
/// Without rename, a backup is written in place under `NAME/` and made complete by its manifest,
/// the last object written. The name is reserved by `NAME/.reserved`, created with
/// `If-None-Match: *` (a conditional write: where a store ignores the condition, a read-back of
/// the reservation's token catches all but a simultaneous race) and refreshed every few minutes
/// while the backup runs, so `prune` can tell a running backup from an abandoned one by age. It is
/// removed after the manifest is written. Data goes up in parts as it is compressed, never through
/// a temporary file.
public final class S3Storage: BackupStorage, @unchecked Sendable {
    // @unchecked: immutable once set up (tests lower `pageSize` before use); the client is thread-safe.
    let client: S3Client
    var configuration: S3Configuration { client.configuration }
    public var location: String { configuration.location }
    static let reservation = ".reserved"
    /// How often a running backup refreshes its reservation (prune's safe age is an hour).
    static let heartbeat: TimeInterval = 300
    /// Keys per listing page (S3's maximum; tests lower it to exercise continuation).
    var pageSize = 1000

    init(configuration: S3Configuration) {
        client = S3Client(configuration: configuration)
    }

    public convenience init(location: String, addressing: String? = nil) throws {
        let forced = try addressing.map { value -> S3Configuration.Addressing in
            guard let style = S3Configuration.Addressing(rawValue: value) else {
                throw UsageError("S3 addressing must be 'path' or 'virtual', not '\(value)'")
            }
            return style
        }
        self.init(configuration: try S3Configuration.resolve(location, addressing: forced))
    }

    func key(_ name: String) throws -> String {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        let inner = name.hasSuffix("/") ? parts.dropLast() : parts[...]
        guard !name.hasPrefix("/"), name.isEmpty || inner.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." })
        else {
            throw ArchiveError(.invalidName, "'\(BackupName.printable(name))' is not a name inside \(location)")
        }
        return configuration.prefix + name
    }

    // MARK: Listing

    public func list(prefix: String, recursive: Bool) throws -> [StoredEntry] {
        let full = try key(prefix)
        var entries: [StoredEntry] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", full), ("max-keys", "\(pageSize)")]
            if !recursive { query.append(("delimiter", "/")) }
            if let token { query.append(("continuation-token", token)) }
            let response = try client.send(.GET, key: "", query: query)
            guard let root = S3XML.parse(response.body), root.name == "ListBucketResult" else {
                throw S3Error(status: response.status, code: nil, message: "\(location): the listing is not S3's XML")
            }
            for object in root.all("Contents") {
                guard let objectKey = object.value("Key"), objectKey.hasPrefix(configuration.prefix) else { continue }
                entries.append(
                    StoredEntry(
                        name: String(objectKey.dropFirst(configuration.prefix.count)), isFolder: false,
                        size: Int64(object.value("Size") ?? "") ?? 0, modified: S3XML.date(object.value("LastModified"))
                    ))
            }
            for common in root.all("CommonPrefixes") {
                guard let folder = common.value("Prefix"), folder.hasPrefix(configuration.prefix) else { continue }
                entries.append(
                    StoredEntry(
                        name: String(folder.dropFirst(configuration.prefix.count)), isFolder: true, size: 0,
                        modified: nil))
            }
            token = root.value("IsTruncated") == "true" ? root.value("NextContinuationToken") : nil
        } while token != nil
        return entries.sorted { $0.name < $1.name }
    }

    public func entry(_ name: String) throws -> StoredEntry? {
        if name.isEmpty {
            // The root: the bucket answers.
            _ = try client.send(.GET, key: "", query: [("list-type", "2"), ("max-keys", "1")])
            return StoredEntry(name: "", isFolder: true, size: 0, modified: nil)
        }
        let response = try client.send(.HEAD, key: try key(name), accept: [404])
        if response.status == 200 {
            return StoredEntry(
                name: name, isFolder: false, size: Int64(response.headers.first(name: "Content-Length") ?? "") ?? 0,
                modified: S3XML.httpDate(response.headers.first(name: "Last-Modified")))
        }
        if try !list(prefix: name + "/", recursive: false).isEmpty {
            return StoredEntry(name: name + "/", isFolder: true, size: 0, modified: nil)
        }
        return nil
    }

    // MARK: Objects

    public func openObject(_ name: String, from offset: Int64) throws -> ObjectReader {
        let reader = S3ObjectReader(client: client, key: try key(name), offset: offset)
        try reader.start()
        return reader
    }

    public func delete(_ name: String) throws {
        _ = try client.send(.DELETE, key: try key(name), accept: [404])
    }

    public func deleteAll(under prefix: String) throws {
        try abortUploads(under: prefix)
        let names = try list(prefix: prefix, recursive: true).map(\.name)
        try deleteObjects(names)
    }

    /// DeleteObjects, 1000 keys per request.
    func deleteObjects(_ names: [String]) throws {
        var start = 0
        while start < names.count {
            let batch = names[start..<min(start + 1000, names.count)]
            start += batch.count
            var xml = "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>"
            for name in batch { xml += "<Object><Key>\(S3XML.escape(try key(name)))</Key></Object>" }
            xml += "</Delete>"
            let body = Array(xml.utf8)
            let md5 = Data(Insecure.MD5.hash(data: body)).base64EncodedString()
            let response = try client.send(
                .POST, key: "", query: [("delete", "")],
                headers: [("Content-MD5", md5), ("Content-Type", "application/xml")],
                body: body)
            if let root = S3XML.parse(response.body), let failed = root.all("Error").first {
                throw S3Error(
                    status: response.status, code: failed.value("Code"),
                    message:
                        "\(location): cannot delete \(failed.value("Key") ?? "an object"): \(failed.value("Code") ?? "error")"
                )
            }
        }
    }

    // MARK: Multipart uploads left behind

    struct Upload {
        var key: String
        var id: String
        var initiated: Date?
    }

    /// Incomplete multipart uploads under `prefix` (a name relative to the root).
    func uploads(under prefix: String) throws -> [Upload] {
        var result: [Upload] = []
        var keyMarker: String?
        var idMarker: String?
        repeat {
            var query = [("uploads", ""), ("prefix", try key(prefix)), ("max-uploads", "\(pageSize)")]
            if let keyMarker { query.append(("key-marker", keyMarker)) }
            if let idMarker { query.append(("upload-id-marker", idMarker)) }
            let response = try client.send(.GET, key: "", query: query)
            guard let root = S3XML.parse(response.body) else { break }
            for upload in root.all("Upload") {
                guard let key = upload.value("Key"), let id = upload.value("UploadId") else { continue }
                result.append(Upload(key: key, id: id, initiated: S3XML.date(upload.value("Initiated"))))
            }
            if root.value("IsTruncated") == "true" {
                keyMarker = root.value("NextKeyMarker")
                idMarker = root.value("NextUploadIdMarker")
            } else {
                keyMarker = nil
            }
        } while keyMarker != nil
        return result
    }

    func abortUploads(under prefix: String) throws {
        for upload in try uploads(under: prefix) {
            _ = try client.send(.DELETE, key: upload.key, query: [("uploadId", upload.id)], accept: [404])
        }
    }

    // MARK: Backups

    public func beginBackup(named name: String) throws -> PendingBackup? {
        if try !list(prefix: name + "/", recursive: false).isEmpty { return nil }
        let token = UUID().uuidString
        let reservation = try key(name + "/" + Self.reservation)
        let response = try client.send(
            .PUT, key: reservation, headers: [("If-None-Match", "*")], body: Array(token.utf8), accept: [409, 412])
        // A refusal may answer our own write, retried after its response was cut: the token tells.
        if response.status == 409 || response.status == 412, !(try holds(reservation, Array(token.utf8))) {
            return nil
        }
        // Where the store ignored the condition, the last writer's token is what reads back.
        let check = try client.send(.GET, key: reservation, accept: [404])
        guard check.status == 200, check.body == Array(token.utf8) else { return nil }
        return S3PendingBackup(storage: self, name: name, token: token)
    }

    /// Whether the object at `key` holds exactly `bytes`.
    func holds(_ key: String, _ bytes: [UInt8]) throws -> Bool {
        let response = try client.send(.GET, key: key, accept: [404])
        return response.status == 200 && response.body == bytes
    }

    public func unfinishedBackups() throws -> [UnfinishedBackup] {
        var found: [UnfinishedBackup] = []
        var seen = Set<String>()
        for folder in try list(prefix: "", recursive: false) where folder.isFolder {
            let name = folder.baseName
            // One HEAD per complete backup; only leftovers are listed (for their newest object's time).
            guard BackupName.date(of: name) != nil, try entry(name + "/" + BackupArchive.manifestFile) == nil else {
                continue
            }
            let objects = try list(prefix: name + "/", recursive: true)
            seen.insert(name)
            found.append(
                UnfinishedBackup(
                    label: name + "/", name: name, modified: objects.compactMap(\.modified).max(), held: false))
        }
        // Uploads whose backup has no object at all, or that a finished backup left behind.
        for upload in try uploads(under: "") {
            let relative = String(upload.key.dropFirst(configuration.prefix.count))
            guard let name = relative.split(separator: "/").first.map(String.init), BackupName.date(of: name) != nil,
                !seen.contains(name)
            else { continue }
            found.append(
                UnfinishedBackup(
                    label: relative + " (incomplete upload)", name: name, modified: upload.initiated, held: false,
                    handle: "upload\n\(upload.key)\n\(upload.id)"))
        }
        return found
    }

    public func removeUnfinished(_ backup: UnfinishedBackup) throws {
        let parts = backup.handle.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 3 && parts[0] == "upload" {
            _ = try client.send(.DELETE, key: parts[1], query: [("uploadId", parts[2])], accept: [404])
        } else {
            try deleteAll(under: backup.name + "/")
        }
    }

    /// Object stores have no locks: two prunes at once may both delete, which is harmless (deletes
    /// are idempotent and each removes manifests first).
    public func maintenanceLock() throws -> StorageLock? { nil }

    public var isRemote: Bool { true }
}

/// A backup being written in place under `NAME/`.
final class S3PendingBackup: PendingBackup, @unchecked Sendable {
    // @unchecked: `finished` is guarded by `state`; the rest is immutable.
    let name: String
    private let storage: S3Storage
    private let token: String
    private let state = NSCondition()
    private var finished = false

    init(storage: S3Storage, name: String, token: String) {
        self.storage = storage
        self.name = name
        self.token = token
        let thread = Thread { [weak self] in self?.beat() }
        thread.name = "supabackup-s3-heartbeat"
        thread.start()
    }

    var location: String { storage.describe(name) + "/" }

    private func key(_ file: String) throws -> String { try storage.key(name + "/" + file) }

    /// Refreshes the reservation until the backup is published or discarded.
    private func beat() {
        while true {
            let stop = state.withLock { () -> Bool in
                if !finished { _ = state.wait(until: Date().addingTimeInterval(S3Storage.heartbeat)) }
                return finished
            }
            if stop { return }
            _ = try? storage.client.send(
                .PUT, key: try key(S3Storage.reservation), body: Array(token.utf8))
        }
    }

    func create(_ file: String) throws -> ObjectWriter {
        try create(file, sizeHint: nil)
    }

    func create(_ file: String, sizeHint: Int64?) throws -> ObjectWriter {
        try state.withLock {
            guard !finished else { throw ArchiveError(.io, "the backup was discarded") }
        }
        return S3ObjectWriter(client: storage.client, key: try key(file), sizeHint: sizeHint)
    }

    func open(_ file: String) throws -> ObjectReader {
        try storage.openObject(name + "/" + file, from: 0)
    }

    func delete(_ file: String) throws {
        try storage.delete(name + "/" + file)
    }

    /// CopyObject: the bytes are copied inside the object store, never downloaded. Objects over
    /// 5 GB need a multipart copy, which is not done: they are read again.
    func reuse(_ file: String, from source: String) throws -> Bool {
        guard let size = try storage.entry(source)?.size, size <= 5_000_000_000 else { return false }
        let configuration = storage.client.configuration
        let sourceKey = try storage.key(source)
        let copySource =
            "/" + configuration.bucket + "/"
            + sourceKey.split(separator: "/", omittingEmptySubsequences: false).map { SigV4.encode(String($0)) }
            .joined(separator: "/")
        // The source may be pruned meanwhile (404): then the object is read again.
        let response = try storage.client.send(
            .PUT, key: try key(file), headers: [("x-amz-copy-source", copySource)], accept: [404])
        // A copy can also fail with 200 and an <Error> body.
        return response.status == 200 && S3XML.error(in: response.body) == nil
    }

    func publish(manifest: Data) throws -> String {
        try state.withLock {
            guard !finished else { throw ArchiveError(.io, "the backup was discarded before it was published") }
        }
        let response = try storage.client.send(
            .PUT, key: try key(BackupArchive.manifestFile), headers: [("If-None-Match", "*")], body: Array(manifest),
            accept: [409, 412])
        // A refusal may answer our own write, retried after its response was cut.
        let refused = response.status == 409 || response.status == 412
        guard try !refused || storage.holds(try key(BackupArchive.manifestFile), Array(manifest)) else {
            throw ArchiveError(.io, "cannot publish backup: \(location)manifest.json already exists")
        }
        state.withLock {
            finished = true
            state.broadcast()
        }
        try? storage.delete(name + "/" + S3Storage.reservation)
        return storage.describe(name)
    }

    /// Aborts the backup's multipart uploads and deletes its objects, as found on the server:
    /// safe from a signal handler's queue while writers still run on their threads (their next
    /// request fails). An upload started after the listing is left for `prune`.
    func discard() {
        let first = state.withLock { () -> Bool in
            defer {
                finished = true
                state.broadcast()
            }
            return !finished
        }
        guard first else { return }
        try? storage.deleteAll(under: name + "/")
    }
}
