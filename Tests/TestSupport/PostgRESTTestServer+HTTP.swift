import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The NIO side of the test server: one HTTP/1.1 request at a time per connection, handled on a
/// GCD queue (libpq blocks) and answered on the connection's event loop.
final class TestHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: all mutable state is touched only on the channel's event loop.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    struct Request: Sendable {
        var method: HTTPMethod
        var uri: String
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    enum Reply: Sendable {
        case response(status: Int, headers: [(String, String)], body: [UInt8])
        /// Close the connection without answering (an injected fault).
        case drop
        /// Announce the whole body, send its first `sent` bytes, then close (a dropped transfer).
        case truncated(status: Int, headers: [(String, String)], body: [UInt8], sent: Int)
    }

    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private let handle: @Sendable (Request) -> Reply
    private static let queue = DispatchQueue(label: "postgrest-test-server", attributes: .concurrent)

    init(handle: @escaping @Sendable (Request) -> Reply) {
        self.handle = handle
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(var buffer):
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head else { return }
            let request = Request(method: head.method, uri: head.uri, headers: head.headers, body: body)
            let keepAlive = head.isKeepAlive
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            let handle = self.handle
            Self.queue.async {
                let reply = handle(request)
                loop.execute {
                    let (handler, context) = bound.value
                    handler.send(reply, keepAlive: keepAlive, context: context)
                }
            }
        }
    }

    private func send(_ reply: Reply, keepAlive: Bool, context: ChannelHandlerContext) {
        switch reply {
        case .drop:
            context.close(promise: nil)
        case .truncated(let status, let extra, let bytes, let sent):
            var headers = HTTPHeaders()
            for (name, value) in extra { headers.add(name: name, value: value) }
            headers.add(name: "Content-Length", value: String(bytes.count))
            let head = HTTPResponseHead(
                version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            let part = ByteBuffer(bytes: bytes.prefix(sent))
            let done = context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(part))))
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in bound.value.close(promise: nil) }
        case .response(let status, let extra, let bytes):
            var headers = HTTPHeaders()
            for (name, value) in extra { headers.add(name: name, value: value) }
            headers.add(name: "Content-Length", value: String(bytes.count))
            headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
            let head = HTTPResponseHead(
                version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: bytes)))), promise: nil)
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive {
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                done.whenComplete { _ in bound.value.close(promise: nil) }
            }
        }
    }
}

/// Binds an HTTP server on 127.0.0.1 with a free port.
final class TestHTTPServer: @unchecked Sendable {
    // @unchecked: the channel is set once in init and only closed afterwards.
    let port: Int
    private let channel: Channel

    init(handle: @escaping @Sendable (TestHTTPHandler.Request) -> TestHTTPHandler.Reply) throws {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(TestHTTPHandler(handle: handle))
                }
            }
        channel = try bootstrap.bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress?.port ?? 0
    }

    func stop() {
        try? channel.close().wait()
    }
}
