import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing

@testable import SupabackupKit

@Suite("REST retries")
struct TransientErrorTests {
    @Test("transient or fatal follows the error's type and code, not its text")
    func classification() {
        let transient: [Error] = [
            HTTPClientError.remoteConnectionClosed, HTTPClientError.readTimeout, HTTPClientError.deadlineExceeded,
            IOError(errnoCode: ECONNRESET, reason: "read"), IOError(errnoCode: EPIPE, reason: "write"),
            ChannelError.eof, ChannelError.ioOnClosedChannel, NIOSSLError.uncleanShutdown,
            HTTPParserError.invalidEOFState,
            HTTPClientError.uncleanShutdown,
        ]
        let fatal: [Error] = [
            IOError(errnoCode: ECONNREFUSED, reason: "connect"), HTTPClientError.invalidURL,
            ChannelError.writeMessageTooLarge,
            NIOSSLError.handshakeFailed(.sslError([])), RESTError(message: "reset EOF"), CocoaError(.fileReadUnknown),
        ]
        for error in transient { #expect(HTTPFailure.isTransient(error), "\(error)") }
        for error in fatal { #expect(!HTTPFailure.isTransient(error), "\(error)") }
        #expect(HTTPFailure.describe(IOError(errnoCode: ECONNREFUSED, reason: "connect")) == "connection refused")
    }
}
