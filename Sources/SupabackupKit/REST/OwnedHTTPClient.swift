import AsyncHTTPClient
import Foundation
import NIOCore

/// An AsyncHTTPClient with one owner: shut down exactly once, by `shutdown()` or when dropped.
final class OwnedHTTPClient: @unchecked Sendable {
    // @unchecked: `isShutDown` is only touched under `lock`; HTTPClient is thread-safe.
    let client: HTTPClient
    private let lock = NSLock()
    private var isShutDown = false

    init(configuration: HTTPClient.Configuration) {
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit { shutdown() }

    /// Sends `request` and reads the whole body; blocks the calling thread (never an event loop).
    func fetch(_ request: HTTPClient.Request, timeout: TimeAmount) -> Result<RESTResponse, Error> {
        Result {
            let response = try client.execute(request: request, deadline: .now() + timeout).wait()
            var bytes: [UInt8] = []
            if var buffer = response.body { bytes = buffer.readBytes(length: buffer.readableBytes) ?? [] }
            return RESTResponse(status: Int(response.status.code), headers: response.headers, body: bytes)
        }
    }

    func shutdown() {
        let first = lock.withLock { () -> Bool in
            defer { isShutDown = true }
            return !isShutDown
        }
        if first { try? client.syncShutdown() }
    }
}
