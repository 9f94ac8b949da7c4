import Foundation

/// The throwaway S3 server (moto, signatures checked) that scripts/test.sh starts:
/// `SUPABACKUP_TEST_S3_ENDPOINT`, `_BUCKET`, `_KEY_ID`, `_SECRET`.
public enum TestS3 {
    private static func value(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment["SUPABACKUP_TEST_S3_\(name)"], !value.isEmpty else {
            throw TestEnvironmentError(
                description:
                    "SUPABACKUP_TEST_S3_\(name) is not set: run the tests with scripts/test.sh, which starts an S3 server"
            )
        }
        return value
    }

    public static func endpoint() throws -> String { try value("ENDPOINT") }
    public static func bucket() throws -> String { try value("BUCKET") }

    /// `s3://<bucket>/<prefix>`; a fresh prefix per test keeps tests apart.
    public static func location(_ prefix: String = "t-\(UUID().uuidString.prefix(8).lowercased())") throws -> String {
        "s3://\(try bucket())/\(prefix)"
    }

    /// The AWS variables a user would set, for supabackup children and in-process storage.
    public static func environment(secret: String? = nil) throws -> [String: String] {
        [
            "AWS_ACCESS_KEY_ID": try value("KEY_ID"), "AWS_SECRET_ACCESS_KEY": try secret ?? value("SECRET"),
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": try endpoint(),
            // No profile files of the machine's user leak in.
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent", "HOME": "/nonexistent",
        ]
    }
}
