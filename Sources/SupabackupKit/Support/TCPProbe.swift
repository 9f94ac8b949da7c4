import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Whether anything listens at an address, for telling an unreachable database from one that
/// answered and refused.
enum TCPProbe {
    /// Whether a TCP connection to host:port (or a Unix socket's folder) can be opened within
    /// three seconds: tells "no server there" from "a server said no" without reading its text.
    static func listens(host: String, port: String) -> Bool {
        if host.hasPrefix("/") { return FileManager.default.fileExists(atPath: "\(host)/.s.PGSQL.\(port)") }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host.isEmpty ? "localhost" : host, port.isEmpty ? "5432" : port, &hints, &list) == 0
        else { return false }
        defer { freeaddrinfo(list) }
        var entry = list
        while let info = entry {
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd >= 0 {
                defer { close(fd) }
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return true }
                if errno == EINPROGRESS {
                    var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    var failure: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    if poll(&poller, 1, 3000) == 1, getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length) == 0,
                        failure == 0
                    {
                        return true
                    }
                }
            }
            entry = info.pointee.ai_next
        }
        return false
    }
}
