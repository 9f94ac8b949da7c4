import Foundation
import NIOCore
import NIOHTTP1

/// Reads an object in ranged GETs of `chunk` bytes, the next one in flight while the caller
/// consumes the current one: memory stays at two chunks, and a failed range is simply asked again
/// (from the last byte received, never from the start).
final class S3ObjectReader: ObjectReader {
    private let client: S3Client
    private let key: String
    private var offset: Int64
    private var size: Int64?
    static let chunk: Int64 = 4 << 20
    private var current: [UInt8] = []
    private var position = 0
    private var next: S3Client.Pending?
    private var nextStart: Int64 = 0

    init(client: S3Client, key: String, offset: Int64) {
        self.client = client
        self.key = key
        self.offset = offset
    }

    /// Fetches the first range: a missing object fails here, at open.
    func start() throws {
        current = try take(fetch(from: offset), start: offset)
        position = 0
        prefetch()
    }

    private func fetch(from start: Int64) -> S3Client.Pending {
        client.start(
            .GET, key: key, headers: [("Range", "bytes=\(start)-\(start + Self.chunk - 1)")], accept: [404, 416])
    }

    private func prefetch() {
        let start = offset + Int64(current.count)
        if let size, start >= size {
            next = nil
            return
        }
        nextStart = start
        next = fetch(from: start)
    }

    private func take(_ pending: S3Client.Pending, start: Int64) throws -> [UInt8] {
        let response = try client.wait(pending)
        switch response.status {
        case 404:
            throw ArchiveError(.damaged, "is missing")
        case 416:
            // Nothing at or after `start`: the end (an empty object answers so to any range).
            size = start
            return []
        case 206:
            // Content-Range: bytes a-b/total
            if let range = response.headers.first(name: "Content-Range"), let slash = range.lastIndex(of: "/") {
                size = Int64(range[range.index(after: slash)...])
            }
            return response.body
        default:
            // A 200 is the whole object (a server that ignores Range).
            size = Int64(response.body.count)
            return start == 0 ? response.body : Array(response.body.dropFirst(Int(start)))
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while position == current.count {
            guard let pending = next else { return 0 }
            offset += Int64(current.count)
            current = try take(pending, start: nextStart)
            position = 0
            if current.isEmpty {
                next = nil
                return 0
            }
            prefetch()
        }
        let n = min(buffer.count, current.count - position)
        current.withUnsafeBytes { bytes in
            buffer.baseAddress!.copyMemory(from: bytes.baseAddress! + position, byteCount: n)
        }
        position += n
        return n
    }

    func close() {
        if let next { _ = next.result }
        next = nil
        current = []
    }
}

/// Writes an object as it is produced: a single PUT when it fits one part, else a multipart
/// upload with parts of one size (R2 wants equal parts but the last), at least 5 MiB and large
/// enough that the expected size needs at most 9,000 of the 10,000 parts allowed. One part is in
/// flight while the next fills, so memory is two parts per object.
final class S3ObjectWriter: ObjectWriter {
    private let client: S3Client
    private let key: String
    let partSize: Int
    /// The part being filled; handed to the request as it is (no copy) when full.
    private var buffer = ByteBuffer()
    private var uploadID: String?
    private var parts: [(number: Int, etag: String)] = []
    private var inFlight: (number: Int, pending: S3Client.Pending)?
    private var done = false
    static let minimumPart = 5 << 20
    static let defaultPart = 5 << 20

    init(client: S3Client, key: String, sizeHint: Int64?) {
        self.client = client
        self.key = key
        partSize = Self.partSize(for: sizeHint)
    }

    deinit { if !done { abort() } }

    /// The part size for an object expected to be `hint` bytes: whole MiB, at least 5 MiB.
    static func partSize(for hint: Int64?) -> Int {
        guard let hint, hint > 0 else { return defaultPart }
        let needed = (hint + 8_999) / 9_000
        let mib = Int64(1 << 20)
        return max(defaultPart, Int((needed + mib - 1) / mib * mib))
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes[...]
        while !rest.isEmpty {
            if buffer.capacity < partSize { buffer = ByteBufferAllocator().buffer(capacity: partSize) }
            let n = min(partSize - buffer.readableBytes, rest.count)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: rest.prefix(n)))
            rest = rest.dropFirst(n)
            if buffer.readableBytes == partSize { try sendPart() }
        }
    }

    private func sendPart() throws {
        if uploadID == nil {
            let response = try client.send(.POST, key: key, query: [("uploads", "")])
            guard let id = S3XML.parse(response.body)?.value("UploadId") else {
                throw S3Error(status: response.status, code: nil, message: "\(key): no upload ID in S3's answer")
            }
            uploadID = id
        }
        try collect()
        let number = parts.count + 1
        inFlight = (
            number,
            client.start(
                .PUT, key: key, query: [("partNumber", "\(number)"), ("uploadId", uploadID!)], payload: buffer)
        )
        buffer = ByteBuffer()
    }

    /// Waits for the part in flight and records its ETag.
    private func collect() throws {
        guard let (number, pending) = inFlight else { return }
        inFlight = nil
        let response = try client.wait(pending)
        guard let etag = response.headers.first(name: "ETag") else {
            throw S3Error(status: response.status, code: nil, message: "\(key): part \(number) has no ETag")
        }
        parts.append((number, etag))
    }

    func finish() throws {
        defer { done = true }
        do {
            if uploadID == nil {
                _ = try client.send(.PUT, key: key, payload: buffer)
                buffer = ByteBuffer()
                return
            }
            if buffer.readableBytes > 0 { try sendPart() }
            try collect()
            var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            for part in parts {
                xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(S3XML.escape(part.etag))</ETag></Part>"
            }
            xml += "</CompleteMultipartUpload>"
            let response = try client.send(
                .POST, key: key, query: [("uploadId", uploadID!)], headers: [("Content-Type", "application/xml")],
                body: Array(xml.utf8))
            if let error = S3XML.error(in: response.body) {
                throw S3Error(
                    status: response.status, code: error.code,
                    message: "\(key): the upload did not complete (\(error.code))")
            }
        } catch {
            abortUpload()
            throw error
        }
    }

    func abort() {
        guard !done else { return }
        done = true
        abortUpload()
    }

    private func abortUpload() {
        if let (_, pending) = inFlight { _ = pending.result }
        inFlight = nil
        buffer = ByteBuffer()
        if let uploadID {
            _ = try? client.send(.DELETE, key: key, query: [("uploadId", uploadID)], accept: [404])
        }
        uploadID = nil
    }
}
