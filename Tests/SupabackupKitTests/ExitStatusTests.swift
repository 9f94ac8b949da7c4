import Testing

@testable import SupabackupKit

@Suite("Exit status")
struct ExitStatusTests {
    struct Other: Error {}

    @Test("every error code maps to its documented exit status")
    func mapping() throws {
        let cases: [(Error, Int32)] = [
            (UsageError("no table x"), 64),
            (ArchiveError(.invalidName, "../x"), 64),
            (ArchiveError(.notFound, "no backup"), 64),
            (ArchiveError(.damaged, "checksum"), 3),
            (ArchiveError(.unsupported, "format 9"), 3),
            (ArchiveError(.io, "disk full"), 1),
            (PostgresError(code: .invalidConnectionString, message: "invalid database URL"), 64),
            (PostgresError(code: .connectionFailed, message: "refused"), 1),
            (PostgresError(code: .connectionLost, message: "lost"), 1),
            (PostgresError(code: .server, message: "x", sqlState: "23503"), 1),
            (PostgresError(code: .protocolViolation, message: "x"), 1),
            (RESTError(status: 401, code: nil, message: "Invalid API key", details: nil, advice: nil, table: nil), 1),
            (RESTError(status: nil, code: nil, message: "invalid response", details: nil, advice: nil, table: nil), 1),
            (RestoreValidationError(problems: ["x"]), 1),
            (Other(), 1),
        ]
        for (error, status) in cases {
            #expect(ExitStatus.code(for: error) == status, "\(error)")
        }
        #expect([ExitStatus.success, ExitStatus.interrupted, ExitStatus.terminated] == [0, 130, 143])
    }

    @Test("a malformed database URL is a usage error, without its password")
    func malformedURL() {
        #expect {
            try ConnectionString("postgresql://u:hunter2@host/db?nosuchoption=1")
        } throws: { error in
            ExitStatus.code(for: error) == ExitStatus.usage && !"\(error)".contains("hunter2")
        }
    }

    @Test("a URL without a database says so")
    func noDatabase() throws {
        #expect(try ConnectionString("postgresql://u@host:5432/app").namesDatabase)
        #expect(try ConnectionString("host=h dbname=app").namesDatabase)
    }
}
