import Foundation
import TestSupport

// Runs the PostgREST-compatible test server until killed, for benchmarks and manual checks.
// Environment: DATABASE_URL (required), SERVICE_KEY, MAX_ROWS, GATEWAY=0 for a bare PostgREST at
// `/`. Prints the project URL (REST at /rest/v1 behind the gateway) on stdout.
let environment = ProcessInfo.processInfo.environment
guard let databaseURL = environment["DATABASE_URL"] else {
    FileHandle.standardError.write(Data("postgrest-test-server: DATABASE_URL is not set\n".utf8))
    exit(64)
}
var options = PostgRESTTestServer.Options()
if let key = environment["SERVICE_KEY"] { options.serviceKey = key }
if let maxRows = environment["MAX_ROWS"].flatMap(Int.init) { options.maxRows = maxRows }
if environment["GATEWAY"] == "0" { options.gateway = false }
let server = try PostgRESTTestServer(databaseURL: databaseURL, options: options)
FileHandle.standardOutput.write(Data((server.url + "\n").utf8))
while true { sleep(3600) }
