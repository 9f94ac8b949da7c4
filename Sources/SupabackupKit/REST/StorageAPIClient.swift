import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A Storage API failure. The server answers HTTP 400 for every 4xx; `statusCode` is the body's,
/// the real one (shared/storage-api-subset.md, "Error shape").
public struct StorageAPIError: Error, CustomStringConvertible, CodedError, Sendable {
    public var httpStatus: Int?
    /// The body's `statusCode` ("404", "409", "413", ...), else the HTTP status.
    public var statusCode: String?
    /// `NoSuchKey`, `NoSuchBucket`, `InvalidKey`, `EntityTooLarge`, ...
    public var code: String?
    public var message: String
    public var advice: String?

    public var errorCode: ErrorCode { .rest }

    public var description: String {
        var text = message
        if let httpStatus {
            text += " [HTTP \(httpStatus)\(statusCode.map { $0 == String(httpStatus) ? "" : ", status \($0)" } ?? "")"
            text += (code.map { " \($0)" } ?? "") + "]"
        }
        if let advice { text += "; \(advice)" }
        return text
    }

    var isNotFound: Bool { code == "NoSuchKey" || code == "NoSuchBucket" || statusCode == "404" }
}

/// A bucket's settings, as `GET /bucket` gives them and `POST /bucket` takes them.
public struct StorageBucket: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var `public`: Bool
    /// Bytes; nil: the project's global limit only.
    public var fileSizeLimit: Int64?
    /// nil: any type.
    public var allowedMimeTypes: [String]?

    public init(id: String, name: String, public: Bool, fileSizeLimit: Int64?, allowedMimeTypes: [String]?) {
        self.id = id
        self.name = name
        self.public = `public`
        self.fileSizeLimit = fileSizeLimit
        self.allowedMimeTypes = allowedMimeTypes
    }
}

/// An object as a listing shows it: enough to tell whether it changed.
struct ListedObject: Sendable, Equatable {
    var name: String
    var size: Int64?
    var etag: String?
    var lastModified: String?
    var mimetype: String?
    var cacheControl: String?
}

/// What `/object/info` tells about one object: the only route that returns user metadata.
struct ObjectInfo: Sendable {
    var id: String?
    /// nil for rows without the API's metadata (made by SQL).
    var size: Int64?
    var contentType: String?
    var cacheControl: String?
    var etag: String?
    var lastModified: String?
    /// The JSON text (sorted keys), or nil.
    var userMetadata: String?
}

/// Talks to a project's Storage API (`<project URL>/storage/v1`) with the service key: buckets,
/// listings (list-v2, else v1 with its traps), ranged downloads and streamed uploads, retrying
/// what the server says is transient. Calls block the calling thread.
final class StorageAPIClient: @unchecked Sendable {
    // @unchecked: immutable after init; HTTPClient is thread-safe.
    let root: URL
    private let key: APIKey
    private let retry: RetryPolicy
    private let timeout: Int64
    private let http: OwnedHTTPClient
    private let logger: Logger
    /// Downloads read objects in ranges of this size: memory stays bounded whatever the object's
    /// size, and a dropped connection costs one range.
    static let rangeBytes: Int64 = 8 << 20

    init(settings: RESTSettings, logger: Logger) throws {
        guard let root = settings.storageRoot else {
            throw UsageError(
                "--with-storage needs the project URL (https://<ref>.supabase.co, http://127.0.0.1:54321); \(settings.root.absoluteString) is a bare PostgREST with no Storage API beside it",
                code: .notSupported)
        }
        self.root = root
        key = settings.key
        retry = settings.retry
        timeout = settings.requestTimeout
        self.logger = logger
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(10), read: .seconds(timeout)))
        configuration.connectionPool.retryConnectionEstablishment = false
        http = OwnedHTTPClient(configuration: configuration)
    }

    func shutdown() { http.shutdown() }

    /// `bucket/key` as a URL path: each segment percent-encoded as UTF-8, `/` between them
    /// (the official clients do not encode; `?`, `#`, `%`, `;` and spaces would break the URL).
    static func objectPath(_ bucket: String, _ key: String) -> String {
        ([bucket] + key.split(separator: "/", omittingEmptySubsequences: false).map(String.init))
            .map(PostgRESTClient.percentEncode).joined(separator: "/")
    }

    // MARK: - Buckets

    func buckets() throws -> [StorageBucket] {
        let response = try send(.GET, "bucket")
        guard let array = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]] else {
            throw StorageAPIError(message: "GET /bucket did not answer a JSON array")
        }
        return array.compactMap(Self.bucket)
    }

    private static func bucket(_ object: [String: Any]) -> StorageBucket? {
        guard let id = object["id"] as? String else { return nil }
        if let type = object["type"] as? String, type != "STANDARD" { return nil }
        return StorageBucket(
            id: id, name: object["name"] as? String ?? id, public: object["public"] as? Bool ?? false,
            fileSizeLimit: (object["file_size_limit"] as? NSNumber)?.int64Value,
            allowedMimeTypes: object["allowed_mime_types"] as? [String])
    }

    /// Creates `bucket` without limits (uploads are checked against them; `setLimits` follows).
    /// - Returns: false when it already existed.
    func createBucket(_ bucket: StorageBucket) throws -> Bool {
        let body: [String: Any] = ["id": bucket.id, "name": bucket.name, "public": bucket.public]
        do {
            _ = try send(.POST, "bucket", json: body)
            return true
        } catch let error as StorageAPIError where error.statusCode == "409" {
            return false
        }
    }

    func setLimits(_ bucket: StorageBucket) throws {
        let body: [String: Any] = [
            "public": bucket.public, "file_size_limit": bucket.fileSizeLimit.map { NSNumber(value: $0) } ?? NSNull(),
            "allowed_mime_types": bucket.allowedMimeTypes ?? NSNull(),
        ]
        _ = try send(.PUT, "bucket/" + PostgRESTClient.percentEncode(bucket.id), json: body)
    }

    // MARK: - Listing

    enum Listing: String, Sendable {
        case v2 = "list-v2"
        case v1 = "list-v1"
    }

    /// Every object in `bucket`, in name order (list-v2) or walk order (v1).
    /// - Returns: which listing the server answered.
    func listObjects(_ bucket: String, unnamed: inout [String], each: (ListedObject) throws -> Void) throws
        -> Listing
    {
        var cursor: String?
        var first = true
        while true {
            var body: [String: Any] = ["prefix": "", "limit": 1000]
            if let cursor { body["cursor"] = cursor }
            let response: RESTResponse
            do {
                response = try send(.POST, "object/list-v2/" + PostgRESTClient.percentEncode(bucket), json: body)
            } catch let error as StorageAPIError
                where first
                && (error.httpStatus == 404 && error.code == nil || error.code == "FeatureNotEnabled"
                    || error.message.contains("not available for your tenant"))
            {
                logger.notice("the Storage API has no list-v2 here; listing with v1", metadata: ["bucket": "\(bucket)"])
                try listV1(bucket, unnamed: &unnamed, each: each)
                return .v1
            }
            first = false
            guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
                let objects = object["objects"] as? [[String: Any]]
            else { throw StorageAPIError(message: "list-v2 of bucket \(bucket) did not answer a listing") }
            for entry in objects {
                // Without a delimiter every entry is an object (list-v2 lists no folders then).
                guard let name = entry["name"] as? String else { continue }
                try each(Self.listed(name, entry))
            }
            guard object["hasNext"] as? Bool == true, let next = object["nextCursor"] as? String else { return .v2 }
            cursor = next
        }
    }

    private static func listed(_ name: String, _ entry: [String: Any]) -> ListedObject {
        let metadata = entry["metadata"] as? [String: Any] ?? [:]
        return ListedObject(
            name: name, size: (metadata["size"] as? NSNumber)?.int64Value, etag: metadata["eTag"] as? String,
            lastModified: metadata["lastModified"] as? String ?? entry["updated_at"] as? String,
            mimetype: metadata["mimetype"] as? String, cacheControl: metadata["cacheControl"] as? String)
    }

    /// The v1 walk: one level per call, recursing into folders; pages stop on a short page (the
    /// server caps limits at 1500). Its matching is case-insensitive (listing `Foo/` also returns
    /// `foo/`'s children, named as if under `Foo/`; case twins show as one folder), and before
    /// v1.34 `_` and `%` in a prefix are wildcards: a rebuilt key may name another object, or
    /// none. So every object (by id) gathers the keys it was listed under; where that is not one
    /// key held by one id, `/object/info` (exact) says which key is whose. An object no key
    /// names cannot be backed up from v1: it goes to `unnamed`, never into the backup under a
    /// wrong key.
    private func listV1(_ bucket: String, unnamed: inout [String], each: (ListedObject) throws -> Void) throws {
        var keysOf: [String: [String]] = [:]
        var idsOf: [String: Set<String>] = [:]
        var listed: [String: ListedObject] = [:]
        var folders = [""]
        var walked = Set<String>()
        let page = 1000
        while let prefix = folders.popLast() {
            guard walked.insert(prefix).inserted else { continue }
            var offset = 0
            while true {
                let body: [String: Any] = [
                    "prefix": prefix, "limit": page, "offset": offset, "sortBy": ["column": "name", "order": "asc"],
                ]
                let response = try send(.POST, "object/list/" + PostgRESTClient.percentEncode(bucket), json: body)
                guard let entries = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]]
                else { throw StorageAPIError(message: "the v1 listing of bucket \(bucket) did not answer an array") }
                for entry in entries {
                    guard let name = entry["name"] as? String else { continue }
                    guard let id = entry["id"] as? String else {
                        folders.append(prefix + name + "/")
                        continue
                    }
                    let key = prefix + name
                    if !(keysOf[id]?.contains(key) ?? false) { keysOf[id, default: []].append(key) }
                    idsOf[key, default: []].insert(id)
                    listed[id + "\u{0}" + key] = Self.listed(key, entry)
                }
                if entries.count < page { break }
                offset += entries.count
            }
        }
        var owners: [String: String?] = [:]  // key -> the id /object/info says it holds
        var found: [ListedObject] = []
        for (id, keys) in keysOf {
            if keys.count == 1, idsOf[keys[0]]?.count == 1 {
                found.append(listed[id + "\u{0}" + keys[0]]!)
                continue
            }
            var named = false
            for key in keys {
                if owners[key] == nil { owners[key] = .some(try info(bucket, key)?.id) }
                if owners[key]! == id {
                    found.append(listed[id + "\u{0}" + key]!)
                    named = true
                    break
                }
            }
            if !named {
                unnamed.append(
                    "bucket \(bucket): object id \(id) lists as '\(keys[0])' but that key is another object's (a case twin, or a folder name with _ or %); the v1 listing cannot name it exactly, so it is not in this backup (list-v2 can)"
                )
            }
        }
        for object in found.sorted(by: { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }) { try each(object) }
    }

    // MARK: - Objects

    /// `/object/info/authenticated/...`; nil when the object does not exist (any more).
    func info(_ bucket: String, _ key: String) throws -> ObjectInfo? {
        let response: RESTResponse
        do {
            response = try send(.GET, "object/info/authenticated/" + Self.objectPath(bucket, key))
        } catch let error as StorageAPIError where error.isNotFound {
            return nil
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
            // Before v1.7.0 the route answered with headers only, like HEAD: no id, no user
            // metadata, and a Content-Length that describes the empty body (the listing's size counts).
            let headers = response.headers
            return ObjectInfo(
                id: nil, size: nil,
                contentType: headers.first(name: "Content-Type"), cacheControl: headers.first(name: "Cache-Control"),
                etag: headers.first(name: "ETag"), lastModified: headers.first(name: "Last-Modified"), userMetadata: nil
            )
        }
        var user: String?
        if let metadata = object["metadata"], !(metadata is NSNull) {
            user = Self.canonicalJSON(metadata)
        }
        return ObjectInfo(
            id: object["id"] as? String, size: (object["size"] as? NSNumber)?.int64Value,
            contentType: object["content_type"] as? String,
            cacheControl: object["cache_control"] as? String, etag: object["etag"] as? String,
            lastModified: object["last_modified"] as? String, userMetadata: user)
    }

    /// Streams the object's bytes to `body` in ranges of `rangeBytes`, each retried on its own.
    /// Throws `StorageAPIError` with `isNotFound` when the object is gone, and `changed` when its
    /// ETag moves between ranges (it was overwritten while being read).
    /// - Returns: the ETag the server sent.
    /// An unknown `size` (a row without metadata) is read in one request.
    func download(_ bucket: String, _ key: String, size: Int64?, into body: (UnsafeRawBufferPointer) throws -> Void)
        throws -> String?
    {
        let path = "object/authenticated/" + Self.objectPath(bucket, key)
        guard let size, size > Self.rangeBytes else {
            let response = try send(.GET, path, objectBytes: true)
            if let size, Int64(response.body.count) != size { throw Self.sizeMismatch(bucket, key, response, size) }
            try response.body.withUnsafeBytes(body)
            return response.headers.first(name: "ETag")
        }
        var offset: Int64 = 0
        var etag: String?
        while offset < size {
            let end = min(offset + Self.rangeBytes, size) - 1
            let response = try send(.GET, path, headers: [("Range", "bytes=\(offset)-\(end)")], objectBytes: true)
            let tag = response.headers.first(name: "ETag")
            if offset == 0 { etag = tag } else if tag != etag { throw Self.changed(bucket, key) }
            // A 200 here would be the whole object: a server ignoring Range is not read on.
            guard response.status == 206, Int64(response.body.count) == end - offset + 1 else {
                throw Self.sizeMismatch(bucket, key, response, size)
            }
            try response.body.withUnsafeBytes(body)
            offset = end + 1
        }
        return etag
    }

    static func changed(_ bucket: String, _ key: String) -> StorageAPIError {
        StorageAPIError(code: "Changed", message: "object \(bucket)/\(key) changed while it was being read")
    }

    private static func sizeMismatch(_ bucket: String, _ key: String, _ response: RESTResponse, _ size: Int64)
        -> StorageAPIError
    {
        StorageAPIError(
            code: "Changed",
            message:
                "object \(bucket)/\(key) sent \(response.body.count) bytes (HTTP \(response.status)) where its listing says \(size)"
        )
    }

    /// Uploads (upserting) from readers `open` makes, one per attempt, streaming `size` bytes.
    func upload(
        _ bucket: String, _ key: String, size: Int64, contentType: String, cacheControl: String?,
        userMetadata: String?, open: @escaping @Sendable () throws -> ObjectReader
    ) throws {
        var headers = [("Content-Type", contentType), ("x-upsert", "true")]
        if let cacheControl { headers.append(("Cache-Control", cacheControl)) }
        if let userMetadata, userMetadata != "null" {
            headers.append(("x-metadata", Data(userMetadata.utf8).base64EncodedString()))
        }
        _ = try send(.POST, "object/" + Self.objectPath(bucket, key), headers: headers, upload: (size, open))
    }

    /// JSON text with sorted keys, so equal metadata compares equal whoever wrote it.
    static func canonicalJSON(_ value: Any) -> String? {
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes])
        else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: - Requests

    private func send(
        _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], json: [String: Any]? = nil,
        upload: (size: Int64, open: @Sendable () throws -> ObjectReader)? = nil, objectBytes: Bool = false
    ) throws -> RESTResponse {
        let url = root.absoluteString + "/" + path
        var payload: [UInt8]?
        var extra = headers
        if let json {
            payload = Array(try JSONSerialization.data(withJSONObject: json))
            extra.append(("Content-Type", "application/json"))
        }
        return try retry.perform(
            path: path, logger: logger, apiResponse: !objectBytes,
            fetch: {
                Result {
                    var request = try HTTPClient.Request(url: url, method: method)
                    request.headers.add(name: "User-Agent", value: PostgRESTClient.userAgent)
                    // Storage reads only Authorization; a secret key goes in both (the gateway swaps it).
                    request.headers.add(name: "apikey", value: key.value)
                    request.headers.add(name: "Authorization", value: "Bearer \(key.value)")
                    for (name, value) in extra { request.headers.add(name: name, value: value) }
                    var seconds = timeout
                    if let payload { request.body = .bytes(payload) }
                    if let upload {
                        request.body = try Self.streamingBody(size: upload.size, reader: try upload.open())
                        seconds += upload.size >> 18  // at least 256 KiB/s
                    } else if method == .GET {
                        seconds += Self.rangeBytes >> 18
                    }
                    return (request, seconds)
                }.flatMap { http.fetch($0.0, timeout: .seconds($0.1)) }
            },
            wait: { response, attempt in
                Self.retryable(response.status, Self.error(for: response, path: path, attempts: attempt))
                    ? retry.delay(attempt) : nil
            },
            failure: { response, attempts in Self.error(for: response, path: path, attempts: attempts) },
            unreachable: { error, attempts in
                // Reading the archive for an upload failed: that error, not the network's.
                if error is UsageError || error is ArchiveError { return error }
                return StorageAPIError(message: RetryPolicy.unreachableMessage(root, error, attempts: attempts))
            })
    }

    /// HTTP 429, 499, 5xx gateways and 544, and a 400 whose body says 423/429/503/544
    /// (ResourceLocked, SlowDown, LockTimeout, DatabaseTimeout) are worth another try.
    static func retryable(_ status: Int, _ error: StorageAPIError) -> Bool {
        if [429, 499, 500, 502, 503, 504, 520, 544].contains(status) { return true }
        return status == 400 && ["423", "429", "503", "544"].contains(error.statusCode ?? "")
    }

    static func error(for response: RESTResponse, path: String, attempts: Int) -> StorageAPIError {
        var error = StorageAPIError(httpStatus: response.status, message: "HTTP \(response.status)")
        if let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] {
            error.statusCode = (object["statusCode"] as? String) ?? (object["statusCode"] as? NSNumber)?.stringValue
            error.code = object["code"] as? String
            error.message = (object["message"] as? String) ?? (object["error"] as? String) ?? error.message
        }
        switch error.statusCode ?? String(response.status) {
        case "401", "403":
            error.advice = "the Storage API refused the key: use the project's service_role key or a secret key"
        case "404" where response.status == 404 && error.code == nil:
            error.advice = "no Storage API at this URL: give the project URL (https://<ref>.supabase.co)"
        default:
            if attempts > 1 { error.advice = "gave up after \(attempts) attempts" }
        }
        return error
    }

    /// A request body streamed from `reader` on a thread of its own (reads block), one chunk at
    /// a time: memory stays bounded whatever the object's size.
    private static func streamingBody(size: Int64, reader: ObjectReader) throws -> HTTPClient.Body {
        let box = SendableBox(reader)
        return .stream(contentLength: size) { writer in
            let promise = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
            DispatchQueue.global().async {
                let reader = box.value
                defer { reader.close() }
                do {
                    var sent: Int64 = 0
                    try reader.forEachChunk(size: 256 << 10) { chunk in
                        sent += Int64(chunk.count)
                        try writer.write(.byteBuffer(ByteBuffer(bytes: chunk))).wait()
                    }
                    guard sent == size else {
                        throw ArchiveError(.damaged, "holds \(sent) bytes, the manifest says \(size)")
                    }
                    promise.succeed(())
                } catch {
                    promise.fail(error)
                }
            }
            return promise.futureResult
        }
    }
}
