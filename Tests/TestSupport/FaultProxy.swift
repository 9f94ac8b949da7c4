import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An HTTP/1.1 proxy on a real TCP socket that forwards each request to an upstream server and
/// cuts chosen responses short the way networks do: a reset or a close before the response, a
/// close inside the status line and headers, after the headers, in the middle of the body, after
/// N bytes, or a body stripped of its framing and cut (which looks complete to HTTP). Clients see
/// exactly what a dropped connection produces, not a constructed error value.
///
/// Faults are planned per route (a method and path prefix): every `every`-th matching response
/// gets the next cut of the route's list until the list is used up, and each injected cut is
/// counted, so a test can fail when a fault it relies on never happened.
public final class FaultProxy: @unchecked Sendable {
    // @unchecked: `routes`, `counts`, `running` and `clients` are guarded by `lock`; the rest is
    // immutable after init.
    public enum Cut: Sendable, Hashable, CustomStringConvertible {
        /// A TCP reset after the request, no response byte.
        case resetBeforeResponse
        /// A clean close after the request, no response byte.
        case closeBeforeResponse
        /// Half of the status line and headers, then a close.
        case insideHeaders
        /// The whole head, no body byte (only for responses with a body).
        case afterHeaders
        /// The head and half the body as framed (Content-Length or chunked), then a close.
        case midBody
        /// The first N bytes of the response, then a reset.
        case afterBytes(Int)
        /// Content-Length and chunking removed, `Connection: close`, half the body, then a
        /// close: to HTTP a complete response; only the content can tell.
        case unframedMidBody

        public var description: String {
            switch self {
            case .resetBeforeResponse: return "reset before the response"
            case .closeBeforeResponse: return "close before the response"
            case .insideHeaders: return "close inside the headers"
            case .afterHeaders: return "close after the headers"
            case .midBody: return "close mid-body"
            case .afterBytes(let n): return "reset after \(n) bytes"
            case .unframedMidBody: return "unframed body cut"
            }
        }

        var needsBody: Bool {
            switch self {
            case .afterHeaders, .midBody, .unframedMidBody: return true
            default: return false
            }
        }

        /// Every kind, with `afterBytes` at a few bytes in.
        public static let all: [Cut] = [
            .resetBeforeResponse, .closeBeforeResponse, .insideHeaders, .afterHeaders, .midBody, .afterBytes(7),
            .unframedMidBody,
        ]
    }

    public struct Route: Sendable {
        public var method: String?
        public var pathPrefix: String
        public var every: Int
        public var cuts: [Cut]

        /// - Parameters:
        ///   - method: only requests with this method (nil: any).
        ///   - every: cut every `every`-th matching response (1: each one, until `cuts` is used up).
        public init(method: String? = nil, pathPrefix: String, every: Int, cuts: [Cut]) {
            self.method = method
            self.pathPrefix = pathPrefix
            self.every = every
            self.cuts = cuts
        }
    }

    private let upstreamPort: UInt16
    private let listener: Int32
    public let port: Int
    private let lock = NSLock()
    private var routes: [Route]
    private var seen: [Int]
    private var next: [Int]
    private var counts: [String: [Cut: Int]] = [:]
    private var running = true
    private var clients: Set<Int32> = []
    private let done = DispatchGroup()

    public init(upstreamPort: Int, routes: [Route]) throws {
        self.upstreamPort = UInt16(upstreamPort)
        self.routes = routes
        seen = Array(repeating: 0, count: routes.count)
        next = Array(repeating: 0, count: routes.count)
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: 0)
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            close(listener)
            throw TestEnvironmentError(description: "the fault proxy cannot listen: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        done.enter()
        Thread { [self] in
            defer { done.leave() }
            acceptLoop()
        }.start()
    }

    deinit { stop() }

    /// `http://127.0.0.1:PORT`.
    public var url: String { "http://127.0.0.1:\(port)" }

    /// Cuts injected so far, per route prefix and kind.
    public func injected(_ pathPrefix: String) -> [Cut: Int] { lock.withLock { counts[pathPrefix] ?? [:] } }

    public func stop() {
        let open = lock.withLock { () -> Set<Int32>? in
            guard running else { return nil }
            running = false
            return clients
        }
        guard let open else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
        done.wait()
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            let accepted = lock.withLock { () -> Bool in
                guard running else { return false }
                clients.insert(client)
                return true
            }
            guard accepted else {
                close(client)
                return
            }
            done.enter()
            Thread { [self] in
                defer {
                    lock.withLock { _ = clients.remove(client) }
                    close(client)
                    done.leave()
                }
                serve(client)
            }.start()
        }
    }

    /// One client connection: requests in turn, each on a fresh upstream connection.
    private func serve(_ client: Int32) {
        let reader = SocketReader(client)
        while let request = try? Message.read(from: reader, isRequest: true, requestMethod: nil) {
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(upstream) }
            var address = Self.loopback(port: upstreamPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0, Self.send(upstream, request.head + request.body),
                let response = try? Message.read(
                    from: SocketReader(upstream), isRequest: false, requestMethod: request.method)
            else { return }
            if let cut = plan(request, hasBody: !response.body.isEmpty) {
                deliver(response, cut: cut, to: client)
                return
            }
            guard Self.send(client, response.head + response.body), !response.closes, !request.closes else { return }
        }
    }

    /// The cut for this response, counted, or nil.
    private func plan(_ request: Message, hasBody: Bool) -> Cut? {
        lock.withLock {
            for index in routes.indices {
                let route = routes[index]
                guard route.method.map({ $0 == request.method }) ?? true, request.target.hasPrefix(route.pathPrefix)
                else { continue }
                seen[index] += 1
                guard next[index] < route.cuts.count, seen[index] % route.every == 0 else { return nil }
                let cut = route.cuts[next[index]]
                // A cut aimed at the body waits for a response that has one.
                guard hasBody || !cut.needsBody else { return nil }
                next[index] += 1
                counts[route.pathPrefix, default: [:]][cut, default: 0] += 1
                return cut
            }
            return nil
        }
    }

    private func deliver(_ response: Message, cut: Cut, to client: Int32) {
        var reset = false
        var bytes: [UInt8]
        switch cut {
        case .resetBeforeResponse:
            bytes = []
            reset = true
        case .closeBeforeResponse: bytes = []
        case .insideHeaders: bytes = Array(response.head.prefix(max(1, response.head.count / 2)))
        case .afterHeaders: bytes = response.head
        case .midBody: bytes = response.head + response.body.prefix(max(1, response.body.count / 2))
        case .afterBytes(let n):
            bytes = Array((response.head + response.body).prefix(n))
            reset = true
        case .unframedMidBody:
            let content = response.decodedBody
            bytes = Message.unframedHead(response.head) + content.prefix(max(1, content.count / 2))
        }
        _ = Self.send(client, bytes)
        if reset {
            // SO_LINGER with a zero timeout: close sends RST, not FIN.
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        } else {
            shutdown(client, Int32(SHUT_WR))
        }
    }

    private static func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    /// A buffered reader over a socket.
    final class SocketReader {
        private let fd: Int32
        private var buffer: [UInt8] = []
        private var start = 0
        private(set) var atEnd = false

        init(_ fd: Int32) { self.fd = fd }

        private func fill() -> Bool {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else {
                atEnd = true
                return false
            }
            if start > 0 {
                buffer.removeFirst(start)
                start = 0
            }
            buffer += chunk.prefix(count)
            return true
        }

        /// Bytes up to and including `delimiter`.
        func read(through delimiter: [UInt8]) throws -> [UInt8] {
            var searchFrom = start
            while true {
                if buffer.count - start >= delimiter.count {
                    var index = max(searchFrom, start)
                    while index + delimiter.count <= buffer.count {
                        if buffer[index] == delimiter[0] && Array(buffer[index..<index + delimiter.count]) == delimiter
                        {
                            let result = Array(buffer[start..<index + delimiter.count])
                            start = index + delimiter.count
                            return result
                        }
                        index += 1
                    }
                    searchFrom = max(start, buffer.count - delimiter.count + 1)
                }
                let offset = searchFrom - start
                guard fill() else { throw ProxyError() }
                searchFrom = start + offset
            }
        }

        func read(count: Int) throws -> [UInt8] {
            while buffer.count - start < count {
                guard fill() else { throw ProxyError() }
            }
            let result = Array(buffer[start..<start + count])
            start += count
            return result
        }

        func readToEnd() -> [UInt8] {
            while fill() {}
            let result = Array(buffer[start...])
            start = buffer.count
            return result
        }
    }

    struct ProxyError: Error {}

    /// One request or response: its head as sent and its body as framed on the wire.
    struct Message {
        var head: [UInt8]
        var body: [UInt8]
        var method: String
        var target: String
        var chunked: Bool
        var closes: Bool

        static func read(from reader: SocketReader, isRequest: Bool, requestMethod: String?) throws -> Message {
            let head = try reader.read(through: Array("\r\n\r\n".utf8))
            let text = String(decoding: head, as: UTF8.self)
            let lines = text.components(separatedBy: "\r\n")
            let first = lines[0].split(separator: " ", maxSplits: 2).map(String.init)
            guard first.count >= 2 else { throw ProxyError() }
            var length: Int?
            var chunked = false
            var closes = false
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces).lowercased()
                if name == "content-length" { length = Int(value) }
                if name == "transfer-encoding" && value.contains("chunked") { chunked = true }
                if name == "connection" && value == "close" { closes = true }
            }
            var body: [UInt8] = []
            let status = isRequest ? 0 : Int(first[1]) ?? 0
            let bodiless = !isRequest && (requestMethod == "HEAD" || status == 204 || status == 304 || status < 200)
            if bodiless {
            } else if chunked {
                while true {
                    let sizeLine = try reader.read(through: Array("\r\n".utf8))
                    body += sizeLine
                    let hex = String(decoding: sizeLine, as: UTF8.self).split(separator: ";")[0]
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                    guard let size = Int(hex, radix: 16) else { throw ProxyError() }
                    if size == 0 {
                        // Trailers, then the blank line.
                        while true {
                            let line = try reader.read(through: Array("\r\n".utf8))
                            body += line
                            if line.count == 2 { break }
                        }
                        break
                    }
                    body += try reader.read(count: size + 2)
                }
            } else if let length {
                body = try reader.read(count: length)
            } else if !isRequest {
                body = reader.readToEnd()
                closes = true
            }
            return Message(
                head: head, body: body, method: isRequest ? first[0] : requestMethod ?? "",
                target: isRequest ? first[1] : "", chunked: chunked, closes: closes)
        }

        /// The body without chunked framing.
        var decodedBody: [UInt8] {
            guard chunked else { return body }
            var out: [UInt8] = []
            var index = 0
            while index < body.count {
                var end = index
                while end + 1 < body.count && !(body[end] == 13 && body[end + 1] == 10) { end += 1 }
                let hex = String(decoding: body[index..<end], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(hex.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
                out += body[(end + 2)..<min(body.count, end + 2 + size)]
                index = end + 2 + size + 2
            }
            return out
        }

        /// The head without Content-Length and Transfer-Encoding, announcing a close.
        static func unframedHead(_ head: [UInt8]) -> [UInt8] {
            let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n").filter { line in
                let name = line.split(separator: ":").first.map { $0.lowercased() } ?? ""
                return name != "content-length" && name != "transfer-encoding" && name != "connection"
            }.filter { !$0.isEmpty }
            return Array((lines.joined(separator: "\r\n") + "\r\nConnection: close\r\n\r\n").utf8)
        }
    }
}
