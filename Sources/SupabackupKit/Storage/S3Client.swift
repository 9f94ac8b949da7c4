import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// A refusal or failure of object storage, with S3's error `<Code>` when it sent one.
public struct S3Error: Error, CustomStringConvertible, CodedError, Sendable {
    public var status: Int?
    /// S3's `<Code>` (`NoSuchBucket`, `SignatureDoesNotMatch`, ...) or ours (`NoCredentials`).
    public var code: String?
    public var message: String
    public var errorCode: ErrorCode

    init(status: Int?, code: String?, message: String, errorCode: ErrorCode = .storage) {
        self.status = status
        self.code = code
        self.message = message
        self.errorCode = errorCode
    }

    public var description: String { message }
}

/// One response, body read whole (listings, errors and ranged reads are bounded by the caller).
typealias S3Response = RESTResponse

/// The dozen S3 operations supabackup needs, signed with SigV4, over AsyncHTTPClient.
/// Calls block the calling thread (never call from an event loop); transient failures (5xx,
/// 429/SlowDown, resets, timeouts) are retried with exponential backoff and full jitter.
final class S3Client: @unchecked Sendable {
    // @unchecked: immutable after init; the HTTP client is thread-safe.
    let configuration: S3Configuration
    private let http: OwnedHTTPClient
    private let signer: SigV4
    static let attempts = 5

    init(configuration: S3Configuration) {
        self.configuration = configuration
        signer = SigV4(credentials: configuration.credentials, region: configuration.region)
        var http = HTTPClient.Configuration(timeout: .init(connect: .seconds(10), read: .seconds(60)))
        http.connectionPool.retryConnectionEstablishment = false
        http.decompression = .disabled
        self.http = OwnedHTTPClient(configuration: http)
    }

    func shutdown() { http.shutdown() }

    /// The request path for `key` ("" for the bucket itself), percent-encoded once, as signed.
    func path(for key: String) -> String {
        let encoded = SigV4.encode(key, keepingSlash: true)
        switch configuration.addressing {
        case .path:
            let base =
                configuration.endpoint.path.hasSuffix("/")
                ? String(configuration.endpoint.path.dropLast()) : configuration.endpoint.path
            return base + "/" + configuration.bucket + (key.isEmpty ? "" : "/" + encoded)
        case .virtual:
            return "/" + encoded
        }
    }

    /// `host[:port]` as sent in the Host header.
    var host: String {
        let endpoint = configuration.endpoint
        var host = endpoint.host ?? ""
        if configuration.addressing == .virtual { host = configuration.bucket + "." + host }
        if let port = endpoint.port { host += ":\(port)" }
        return host
    }

    /// Sends one request, retrying transient failures; 2xx and the statuses in `accept` return,
    /// anything else throws an `S3Error` that says what to fix.
    func send(
        _ method: HTTPMethod, key: String, query: [(String, String)] = [], headers: [(String, String)] = [],
        body: [UInt8]? = nil, accept: Set<Int> = []
    ) throws -> S3Response {
        try execute(
            method, key: key, query: query, headers: headers, body: body.map { ByteBuffer(bytes: $0) }, accept: accept)
    }

    /// `send` with a body the caller already holds as a buffer (an upload part), sent without a copy.
    func send(_ method: HTTPMethod, key: String, query: [(String, String)] = [], payload: ByteBuffer) throws
        -> S3Response
    {
        try execute(method, key: key, query: query, headers: [], body: payload, accept: [])
    }

    /// Starts `send` on another thread; `wait` collects its result. Lets an upload run while the
    /// caller fills the next part.
    func start(
        _ method: HTTPMethod, key: String, query: [(String, String)] = [], headers: [(String, String)] = [],
        payload: ByteBuffer? = nil, accept: Set<Int> = []
    ) -> Pending {
        let pending = Pending()
        DispatchQueue.global().async { [self] in
            pending.complete(
                Result {
                    try execute(method, key: key, query: query, headers: headers, body: payload, accept: accept)
                })
        }
        return pending
    }

    func wait(_ pending: Pending) throws -> S3Response { try pending.result.get() }

    /// A request in flight on another thread.
    final class Pending: @unchecked Sendable {
        // @unchecked: `value` is only touched under `condition`.
        private let condition = NSCondition()
        private var value: Result<S3Response, Error>?
        func complete(_ result: Result<S3Response, Error>) {
            condition.withLock {
                value = result
                condition.broadcast()
            }
        }
        /// Waits for the result; any number of reads, from any thread.
        var result: Result<S3Response, Error> {
            condition.withLock {
                while value == nil { condition.wait() }
                return value!
            }
        }
    }

    private func execute(
        _ method: HTTPMethod, key: String, query: [(String, String)], headers: [(String, String)], body: ByteBuffer?,
        accept: Set<Int>
    ) throws -> S3Response {
        let path = path(for: key)
        let queryString = query.map { "\(SigV4.encode($0.0))=\(SigV4.encode($0.1))" }.joined(separator: "&")
        var base = configuration.endpoint.scheme! + "://" + host
        base += path
        let url = queryString.isEmpty ? base : base + "?" + queryString
        let payloadHash =
            body.map { payload in
                payload.withUnsafeReadableBytes { bytes in
                    var hasher = SHA256()
                    hasher.update(bufferPointer: bytes)
                    return hasher.finalize().hex
                }
            } ?? SigV4.emptyPayloadHash
        var attempt = 0
        while true {
            attempt += 1
            var outcome: Result<S3Response, Error>
            do {
                var request = try HTTPClient.Request(url: url, method: method)
                let (amzDate, _) = SigV4.timestamps(Date())
                var signed = [("Host", host), ("X-Amz-Date", amzDate), ("X-Amz-Content-Sha256", payloadHash)]
                if let token = configuration.credentials.sessionToken { signed.append(("X-Amz-Security-Token", token)) }
                signed += headers
                let authorization = signer.authorization(
                    method: method.rawValue, path: path, query: query, headers: signed, payloadHash: payloadHash)
                for (name, value) in signed { request.headers.replaceOrAdd(name: name, value: value) }
                request.headers.add(name: "Authorization", value: authorization)
                request.headers.add(name: "User-Agent", value: PostgRESTClient.userAgent)
                if let body { request.body = .byteBuffer(body) }
                outcome = http.fetch(request, timeout: .seconds(300))
            } catch {
                outcome = .failure(error)
            }
            // Listings and errors are XML; an object's bytes (a ranged GET or a whole one) are not judged.
            if key.isEmpty { outcome = HTTPFailure.judged(outcome) }
            switch outcome {
            case .success(let response) where (200..<300).contains(response.status) || accept.contains(response.status):
                // CompleteMultipartUpload may fail with 200 and an <Error> body; its code decides.
                if response.status == 200, method == .POST, attempt < Self.attempts,
                    let error = S3XML.error(in: response.body), Self.retryable(status: 200, code: error.code)
                {
                    Self.backoff(attempt)
                    continue
                }
                return response
            case .success(let response):
                let parsed = S3XML.error(in: response.body)
                if Self.retryable(status: response.status, code: parsed?.code) && attempt < Self.attempts {
                    Self.backoff(attempt)
                    continue
                }
                throw describe(status: response.status, code: parsed?.code, key: key, attempts: attempt)
            case .failure(let error) where HTTPFailure.isTransient(error) && attempt < Self.attempts:
                Self.backoff(attempt)
            case .failure(let error):
                var message =
                    "cannot reach the S3 endpoint \(configuration.endpoint.absoluteString): \(HTTPFailure.describe(error))"
                if attempt > 1 { message += " (after \(attempt) attempts)" }
                throw S3Error(status: nil, code: nil, message: message)
            }
        }
    }

    static func retryable(status: Int, code: String?) -> Bool {
        if let code, ["SlowDown", "InternalError", "RequestTimeout", "ServiceUnavailable"].contains(code) {
            return true
        }
        return [408, 429, 500, 502, 503, 504].contains(status)
    }

    /// Exponential backoff with full jitter: up to 0.2 s, 0.4 s, 0.8 s, ... capped at 10 s.
    static func backoff(_ attempt: Int) {
        let cap = min(10, 0.2 * pow(2, Double(attempt - 1)))
        Thread.sleep(forTimeInterval: Double.random(in: cap / 2...cap))
    }

    /// What went wrong, in terms of what to fix; decided from the status and S3's `<Code>`.
    func describe(status: Int, code: String?, key: String, attempts: Int) -> S3Error {
        let location = configuration.location
        let endpoint = configuration.endpoint.absoluteString
        let message: String
        var errorCode = ErrorCode.storage
        switch (status, code) {
        case (_, "SignatureDoesNotMatch"):
            message =
                "\(location): the S3 secret key is wrong for this access key (SignatureDoesNotMatch; check AWS_SECRET_ACCESS_KEY)"
        case (_, "InvalidAccessKeyId"):
            message =
                "\(location): the S3 access key is unknown to \(endpoint) (InvalidAccessKeyId; check AWS_ACCESS_KEY_ID)"
        case (_, "NoSuchBucket"):
            message = "\(location): no bucket '\(configuration.bucket)' at \(endpoint) (NoSuchBucket)"
            errorCode = .unknownName
        case (_, "AccessDenied"), (403, nil):
            message =
                "\(location): access denied\(key.isEmpty ? "" : " to \(key)") (AccessDenied; the key lacks permission on the bucket)"
        case (_, "PreconditionFailed"), (412, nil):
            message = "\(location): \(key) already exists"
        case (404, _):
            message = "\(location): \(key.isEmpty ? "the bucket" : key) was not found (\(code ?? "HTTP 404"))"
        default:
            message =
                "\(location): S3 answered HTTP \(status)\(code.map { " (\($0))" } ?? "")\(key.isEmpty ? "" : " for \(key)")"
                + (attempts > 1 ? " after \(attempts) attempts" : "")
        }
        return S3Error(status: status, code: code, message: message, errorCode: errorCode)
    }
}
