import Testing

@testable import SupabackupKit

@Suite("Exit status")
struct ExitStatusTests {
    struct Other: Error {}

    @Test("every error code has its documented exit status")
    func everyCode() {
        let expected: [ErrorCode: Int32] = [
            .invalidArgument: 64, .unknownName: 64, .notSupported: 64, .damagedArchive: 3, .unsupportedFormat: 3,
            .decryption: 4,
            .io: 1, .database: 1, .connection: 1, .rest: 1, .storage: 1, .targetMismatch: 1, .internalFailure: 1,
        ]
        #expect(Set(expected.keys) == Set(ErrorCode.allCases))
        for code in ErrorCode.allCases {
            #expect(ExitStatus.code(for: code) == expected[code], "\(code)")
        }
        #expect([ExitStatus.success, ExitStatus.interrupted, ExitStatus.terminated] == [0, 130, 143])
        // No key is a usage error; a key that does not open the archive has its own code.
        #expect(ExitStatus.code(for: ArchiveError(.identityNeeded, "encrypted")) == 64)
        #expect(ExitStatus.code(for: ArchiveError(.locked, "no identity given opens it")) == 4)
    }

    @Test("each error type says its code; the exit status follows from it, never from the message")
    func mapping() throws {
        let postgres = PostgresError(code: .server, message: "invalid input", sqlState: "23503")
        let cases: [(Error, ErrorCode?, Int32)] = [
            (UsageError("no table x"), .invalidArgument, 64),
            (UsageError("no table x", code: .unknownName), .unknownName, 64),
            (UsageError("--create-schema over REST", code: .notSupported), .notSupported, 64),
            (ArchiveError(.invalidName, "../x"), .invalidArgument, 64),
            (ArchiveError(.notFound, "no backup"), .unknownName, 64),
            (ArchiveError(.damaged, "checksum"), .damagedArchive, 3),
            (ArchiveError(.unsupported, "format 9"), .unsupportedFormat, 3),
            (ArchiveError(.io, "disk full"), .io, 1),
            (PostgresError(code: .invalidConnectionString, message: "invalid database URL"), .invalidArgument, 64),
            (PostgresError(code: .connectionFailed, message: "refused"), .connection, 1),
            (PostgresError(code: .connectionLost, message: "lost"), .connection, 1),
            (PostgresError(code: .server, message: "terminated", sqlState: "57P01"), .connection, 1),
            (postgres, .database, 1),
            (PostgresError(code: .protocolViolation, message: "x"), .database, 1),
            (RestoreError(table: nil, underlying: postgres, advice: nil), .database, 1),
            (BackupError(table: TableName(schema: "public", name: "t"), underlying: postgres), .database, 1),
            (
                RESTError(status: 401, code: nil, message: "Invalid API key", details: nil, advice: nil, table: nil),
                .rest, 1
            ),
            // A message starting with "invalid" is no usage error: codes decide, not text.
            (
                RESTError(status: nil, code: nil, message: "invalid response", details: nil, advice: nil, table: nil),
                .rest, 1
            ),
            (RestoreValidationError(problems: ["x"]), .targetMismatch, 1),
            (InternalError("x"), .internalFailure, 1),
            (Other(), nil, 1),
        ]
        for (error, code, status) in cases {
            #expect((error as? CodedError)?.errorCode == code, "\(error)")
            #expect(ExitStatus.code(for: error) == status, "\(error)")
        }
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
