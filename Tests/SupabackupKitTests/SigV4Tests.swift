import Crypto
import Foundation
import Testing

@testable import SupabackupKit

@Suite("SigV4")
struct SigV4Tests {
    private static let date = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z
    private static let vectorSigner = SigV4(
        credentials: .init(
            accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: nil),
        region: "us-east-1", service: "service")
    private static let token =
        "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var method: String
        var query: [(String, String)]
        var headers: [(String, String)]
        var payload: String
        var signature: String
        var testDescription: String { name }
    }

    /// From AWS's SigV4 test suite (aws-sig-v4-test-suite): region us-east-1, service "service".
    static let vectors: [Vector] = [
        Vector(
            name: "get-vanilla", method: "GET", query: [], headers: [], payload: "",
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        Vector(
            name: "get-vanilla-query-order-key-case", method: "GET",
            query: [("Param2", "value2"), ("Param1", "value1")],
            headers: [], payload: "", signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        Vector(
            name: "get-vanilla-query-unreserved", method: "GET",
            query: [
                (
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                )
            ], headers: [], payload: "", signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
        Vector(
            name: "get-vanilla-utf8-query", method: "GET", query: [("\u{1234}", "bar")], headers: [], payload: "",
            signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
        Vector(
            name: "post-x-www-form-urlencoded", method: "POST", query: [],
            headers: [("Content-Type", "application/x-www-form-urlencoded")], payload: "Param1=value1",
            signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
        Vector(
            name: "post-sts-header-before", method: "POST", query: [], headers: [("X-Amz-Security-Token", token)],
            payload: "", signature: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
    ]

    @Test("AWS's published test vectors", arguments: vectors)
    func published(_ vector: Vector) {
        let headers = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")] + vector.headers
        let authorization = Self.vectorSigner.authorization(
            method: vector.method, path: "/", query: vector.query, headers: headers,
            payloadHash: SHA256.hash(data: Data(vector.payload.utf8)).hex)
        #expect(authorization.hasSuffix("Signature=\(vector.signature)"), "\(authorization)")
        #expect(
            authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"))
        // The client writes X-Amz-Date from this; the signature takes its time from that header.
        #expect(SigV4.timestamps(Self.date).amzDate == "20150830T123600Z")
    }

    /// The S3 requests supabackup sends, signed by botocore (the AWS SDK for Python) with the same
    /// inputs: keys with spaces, unicode and `=`, prefixes with `/`, empty values (`uploads=`).
    @Test("botocore signs the same S3 requests the same way")
    func botocore() throws {
        let requests: [(method: String, key: String, query: [(String, String)], headers: [(String, String)])] = [
            ("GET", "", [("list-type", "2"), ("prefix", "prod/2025-11-30T12-00-00-000Z/"), ("delimiter", "/")], []),
            ("GET", "", [("list-type", "2"), ("prefix", "a b+c=d/é/"), ("continuation-token", "1/+=x")], []),
            ("PUT", "prod/2025-11-30T12-00-00-000Z/data/public.ü ber=1+2.ndjson.zst", [], [("If-None-Match", "*")]),
            ("POST", "prod/x/data/t.ndjson.zst", [("uploads", "")], []),
            ("PUT", "prod/x/data/t.ndjson.zst", [("partNumber", "2"), ("uploadId", "a/b+c==")], []),
            ("GET", "prod/x/data/t.ndjson.zst", [], [("Range", "bytes=0-8388607")]),
            ("POST", "", [("delete", "")], [("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")]),
        ]
        let credentials = SigV4.Credentials(
            accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            sessionToken: "session/token+=")
        let signer = SigV4(credentials: credentials, region: "eu-central-1")
        var ours: [String] = []
        var specs: [[String: Any]] = []
        for request in requests {
            let path = "/bucket" + (request.key.isEmpty ? "" : "/" + SigV4.encode(request.key, keepingSlash: true))
            let headers =
                [
                    ("Host", "127.0.0.1:9000"), ("X-Amz-Date", "20150830T123600Z"),
                    ("X-Amz-Content-Sha256", SigV4.emptyPayloadHash), ("X-Amz-Security-Token", "session/token+="),
                ] + request.headers
            ours.append(
                signer.authorization(
                    method: request.method, path: path, query: request.query, headers: headers,
                    payloadHash: SigV4.emptyPayloadHash))
            specs.append([
                "method": request.method, "key": request.key, "query": request.query.map { [$0.0, $0.1] },
                "headers": headers.map { [$0.0, $0.1] },
            ])
        }
        let script = """
            import json, sys, urllib.parse
            from botocore.auth import S3SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
            auth = S3SigV4Auth(Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "session/token+="), "s3", "eu-central-1")
            for spec in json.load(sys.stdin):
                path = "/bucket" + ("/" + urllib.parse.quote(spec["key"], safe="/~") if spec["key"] else "")
                request = AWSRequest(method=spec["method"], url="http://127.0.0.1:9000" + path, params=dict(spec["query"]), headers=dict(spec["headers"]))
                request.context["timestamp"] = "20150830T123600Z"
                canonical = auth.canonical_request(request)
                signature = auth.signature(auth.string_to_sign(request, canonical), request)
                print(signature)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: specs))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "botocore is needed (pip install botocore)")
        let theirs = text.split(separator: "\n").map(String.init)
        #expect(theirs.count == ours.count)
        for (mine, signature) in zip(ours, theirs) {
            #expect(mine.hasSuffix("Signature=\(signature)"), "\(mine) vs \(signature)")
        }
    }

    @Test("locations, profiles and addressing follow the AWS conventions")
    func configuration() throws {
        let home = NSTemporaryDirectory() + "aws-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: home + "/.aws", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        try """
        [default]
        aws_access_key_id = DEFAULTKEY
        aws_secret_access_key = defaultsecret
        [r2]
        aws_access_key_id = R2KEY
        aws_secret_access_key = r2secret
        """.write(toFile: home + "/.aws/credentials", atomically: true, encoding: .utf8)
        try """
        [profile r2]
        region = auto
        endpoint_url = https://acct.r2.cloudflarestorage.com
        s3 =
          addressing_style = virtual
        """.write(toFile: home + "/.aws/config", atomically: true, encoding: .utf8)

        let aws = try S3Configuration.resolve("s3://acme-backups/prod/", environment: ["HOME": home])
        #expect(aws.bucket == "acme-backups" && aws.prefix == "prod/" && aws.location == "s3://acme-backups/prod")
        #expect(aws.credentials.accessKeyID == "DEFAULTKEY" && aws.region == "us-east-1")
        #expect(aws.endpoint.absoluteString == "https://s3.us-east-1.amazonaws.com" && aws.addressing == .virtual)

        let r2 = try S3Configuration.resolve("s3://acme-backups", environment: ["HOME": home, "AWS_PROFILE": "r2"])
        #expect(r2.credentials.accessKeyID == "R2KEY" && r2.region == "auto" && r2.prefix == "")
        #expect(r2.endpoint.host == "acct.r2.cloudflarestorage.com" && r2.addressing == .virtual)

        let env = [
            "HOME": home, "AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret",
            "AWS_SESSION_TOKEN": "tok", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        ]
        let minio = try S3Configuration.resolve("s3://b.with.dots/a/b", environment: env)
        #expect(minio.credentials.accessKeyID == "ENVKEY" && minio.credentials.sessionToken == "tok")
        #expect(minio.region == "eu-west-1" && minio.addressing == .path && minio.prefix == "a/b/")
        let forced = try S3Configuration.resolve("s3://bucket", environment: env, addressing: .virtual)
        #expect(forced.addressing == .virtual)
        var s3First = env
        s3First["AWS_ENDPOINT_URL_S3"] = "https://s3.example.com"
        #expect(try S3Configuration.resolve("s3://bucket", environment: s3First).endpoint.host == "s3.example.com")

        for bad in ["s3://", "s3:///x", "s3://b/../x", "s3://a/b//c", "s3://bad bucket/x", "http://x/y"] {
            #expect(throws: S3Error.self) { try S3Configuration.resolve(bad, environment: env) }
        }
        #expect { try S3Configuration.resolve("s3://bucket/x", environment: ["HOME": "/nonexistent"]) } throws: {
            ($0 as? S3Error)?.code == "NoCredentials"
        }
    }

    @Test("part sizes keep an object under 10,000 parts and are whole MiB")
    func partSizes() {
        #expect(S3ObjectWriter.partSize(for: nil) == 5 << 20)
        #expect(S3ObjectWriter.partSize(for: 1 << 30) == 5 << 20)
        let huge: Int64 = 500 << 30
        let part = S3ObjectWriter.partSize(for: huge)
        #expect(part % (1 << 20) == 0 && huge / Int64(part) < 9_000)
    }
}
