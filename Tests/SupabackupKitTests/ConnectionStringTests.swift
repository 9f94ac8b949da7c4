import SupabackupKit
import Testing

@Suite("Connection strings")
struct ConnectionStringTests {
    @Test(
        "passwords are removed from the description, in every spelling",
        arguments: [
            ("postgresql://user:p%40ss@host:5432/db", ["p%40ss", "p@ss"]),
            ("postgres://user:secret@host/db?sslmode=require", ["secret"]),
            ("postgresql://user@host/db?password=qwerty&application_name=x", ["qwerty"]),
            ("host=h user=u password=hunter2 dbname=d", ["hunter2"]),
            ("host=h user=u password='two words' dbname=d", ["two words"]),
        ])
    func redaction(_ raw: String, _ secrets: [String]) throws {
        let connection = try ConnectionString(raw)
        for secret in secrets {
            #expect(!connection.description.contains(secret))
            #expect(!connection.redact("error near \(secret)").contains(secret))
        }
    }

    @Test("malformed strings are refused without echoing the password")
    func malformed() {
        #expect {
            try ConnectionString("postgresql://u:topsecret@host:5432/db?bad-option=1")
        } throws: { !"\($0)".contains("topsecret") }
        #expect(throws: PostgresError.self) { try ConnectionString("not a url at all") }
    }
}
