import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// What a failed HTTP exchange means, decided in one place for every HTTP client (PostgREST,
/// Auth, Storage API, S3) from the error's type and code, never its text.
enum HTTPFailure {
    /// Whether another try may succeed: the connection was reset or closed before the response
    /// was whole (before the status line, inside the headers, mid-body: NIOHTTP1's early-EOF
    /// parser error), a TLS peer closed without close_notify, or a timeout. A refused connection
    /// or an unknown host is not: the URL is wrong or the service is down.
    static func isTransient(_ error: Error) -> Bool {
        switch error {
        case let error as HTTPClientError:
            return [
                HTTPClientError.remoteConnectionClosed, .readTimeout, .writeTimeout, .deadlineExceeded, .connectTimeout,
                .getConnectionFromPoolTimeout, .uncleanShutdown, .tlsHandshakeTimeout,
            ].contains(error)
        case let error as HTTPParserError:
            // The stream ended inside a message (status line, headers or a framed body).
            return error == .invalidEOFState
        case is NIOConnectionError:
            return false
        case let error as IOError:
            return [ECONNRESET, ECONNABORTED, EPIPE, ETIMEDOUT, ENETRESET, ENETDOWN, ENETUNREACH, EHOSTUNREACH]
                .contains(error.errnoCode)
        case let error as ChannelError:
            switch error {
            case .eof, .ioOnClosedChannel, .alreadyClosed, .outputClosed, .inputClosed, .connectTimeout: return true
            default: return false
            }
        case let error as NIOSSLError:
            if case .uncleanShutdown = error { return true }
            return false
        case is TruncatedBody:
            return true
        default:
            return false
        }
    }

    /// A short cause for "cannot reach ...", from the error's type.
    static func describe(_ error: Error) -> String {
        if let error = error as? NIOConnectionError {
            if error.connectionErrors.isEmpty && (error.dnsAError != nil || error.dnsAAAAError != nil) {
                return "host name not found"
            }
            let refused = error.connectionErrors.contains { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }
            return refused ? "connection refused" : "cannot connect"
        }
        if let error = error as? IOError, error.errnoCode == ECONNREFUSED { return "connection refused" }
        if let error = error as? HTTPParserError, error == .invalidEOFState {
            return "the connection closed before the response was complete"
        }
        let text = "\(error)"
        return text.count > 200 ? String(text.prefix(200)) : text
    }

    /// False when a JSON or XML body visibly stops short (an array or object without its close,
    /// XML without its last `>`): the connection closed mid-body where no length framed it, so
    /// HTTP itself saw a complete response. Other bodies pass.
    static func looksWhole(_ response: RESTResponse) -> Bool {
        let body = response.body
        guard let first = body.firstIndex(where: { !Self.isSpace($0) }),
            let last = body.lastIndex(where: { !Self.isSpace($0) })
        else { return true }
        let type = response.headers.first(name: "Content-Type")?.lowercased() ?? ""
        switch body[first] {
        case UInt8(ascii: "[") where type.contains("json"): return body[last] == UInt8(ascii: "]")
        case UInt8(ascii: "{") where type.contains("json"): return body[last] == UInt8(ascii: "}")
        case UInt8(ascii: "<") where type.contains("xml"): return body[last] == UInt8(ascii: ">")
        default: return true
        }
    }

    /// `outcome`, with a 2xx whose body visibly stops short turned into a `TruncatedBody`
    /// failure (transient), for the retry loops of every client.
    static func judged(_ outcome: Result<RESTResponse, Error>) -> Result<RESTResponse, Error> {
        if case .success(let response) = outcome, (200..<300).contains(response.status), !looksWhole(response) {
            return .failure(TruncatedBody())
        }
        return outcome
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }

    /// A 2xx response whose body is not the whole of what the server meant to send: a connection
    /// closed mid-body where no length framed it, seen when the content does not parse.
    struct TruncatedBody: Error, CustomStringConvertible {
        var description: String { "the response ended before its content was complete" }
    }
}
