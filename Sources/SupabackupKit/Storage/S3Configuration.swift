import Foundation

/// Where an `s3://bucket/prefix` location lives and how to sign for it, from the AWS
/// conventions: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, `AWS_REGION` or
/// `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, and `AWS_PROFILE` with
/// `~/.aws/credentials` and `~/.aws/config` (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`).
struct S3Configuration: Sendable {
    enum Addressing: String, Sendable {
        /// `https://endpoint/bucket/key`: MinIO, moto, Supabase Storage, any custom endpoint.
        case path
        /// `https://bucket.endpoint/key`: AWS.
        case virtual
    }

    var bucket: String
    /// "" or ending in `/`.
    var prefix: String
    var endpoint: URL
    var region: String
    var addressing: Addressing
    var credentials: SigV4.Credentials

    /// `s3://bucket/prefix`, as the user gave it (no trailing slash).
    var location: String { "s3://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix.dropLast()) }

    static func isS3(_ location: String) -> Bool { location.lowercased().hasPrefix("s3://") }

    /// - Parameter addressing: a forced choice (`SUPABACKUP_S3_ADDRESSING`, `--s3-addressing`), else
    ///   the profile's `s3.addressing_style`, else path style for custom endpoints and virtual for AWS.
    static func resolve(
        _ location: String, environment: [String: String] = ProcessInfo.processInfo.environment,
        addressing forced: Addressing? = nil
    ) throws -> S3Configuration {
        let (bucket, prefix) = try parse(location)
        let profileName = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        let home = environment["HOME"] ?? NSHomeDirectory()
        let credentialsFile = IniFile(
            path: environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials", profileSections: false)
        let configFile = IniFile(path: environment["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config", profileSections: true)
        let fromFiles = credentialsFile.section(profileName) ?? [:]
        let config = configFile.section(profileName) ?? [:]
        func setting(_ env: [String], _ key: String) -> String? {
            for name in env { if let value = environment[name], !value.isEmpty { return value } }
            return fromFiles[key] ?? config[key]
        }
        guard let keyID = setting(["AWS_ACCESS_KEY_ID"], "aws_access_key_id"),
            let secret = setting(["AWS_SECRET_ACCESS_KEY"], "aws_secret_access_key")
        else {
            throw S3Error(
                status: nil, code: "NoCredentials",
                message:
                    "no S3 credentials for \(location): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (now '\(profileName)') with keys in ~/.aws/credentials",
                errorCode: .invalidArgument)
        }
        let token = setting(["AWS_SESSION_TOKEN"], "aws_session_token")
        let region = setting(["AWS_REGION", "AWS_DEFAULT_REGION"], "region") ?? "us-east-1"
        let custom = setting(["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"], "endpoint_url")
        let endpoint: URL
        if let custom {
            guard let url = URL(string: custom), let scheme = url.scheme?.lowercased(),
                ["http", "https"].contains(scheme),
                url.host != nil
            else {
                throw S3Error(
                    status: nil, code: "InvalidEndpoint",
                    message: "the S3 endpoint '\(custom)' is not an http(s) URL (AWS_ENDPOINT_URL)",
                    errorCode: .invalidArgument)
            }
            endpoint = url
        } else {
            endpoint = URL(string: "https://s3.\(region).amazonaws.com")!
        }
        let style: Addressing
        if let forced {
            style = forced
        } else if let configured = config["s3.addressing_style"].flatMap(Addressing.init(rawValue:)) {
            style = configured
        } else {
            // Dots in a bucket name break the TLS wildcard of virtual-hosted names.
            style = custom != nil || bucket.contains(".") ? .path : .virtual
        }
        return S3Configuration(
            bucket: bucket, prefix: prefix, endpoint: endpoint, region: region, addressing: style,
            credentials: .init(accessKeyID: keyID, secretAccessKey: secret, sessionToken: token))
    }

    /// `s3://bucket/a/b/` -> ("bucket", "a/b/").
    static func parse(_ location: String) throws -> (bucket: String, prefix: String) {
        let bad = { (why: String) in
            S3Error(
                status: nil, code: "InvalidLocation", message: "'\(location)' is not an S3 location: \(why)",
                errorCode: .invalidArgument)
        }
        guard isS3(location) else { throw bad("it does not start with s3://") }
        let rest = location.dropFirst(5)
        let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let bucket = String(parts[0])
        guard !bucket.isEmpty else { throw bad("no bucket name (s3://bucket/prefix)") }
        guard bucket.count >= 3 && bucket.count <= 63,
            bucket.unicodeScalars.allSatisfy({
                ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "." || $0 == "_"
                    || ("A"..."Z").contains($0)
            })
        else { throw bad("'\(bucket)' is not a valid bucket name") }
        var prefix = parts.count > 1 ? String(parts[1]) : ""
        while prefix.hasSuffix("/") { prefix.removeLast() }
        if !prefix.isEmpty {
            let components = prefix.split(separator: "/", omittingEmptySubsequences: false)
            guard components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }),
                prefix.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F })
            else { throw bad("the prefix has an empty, '.' or '..' part") }
            prefix += "/"
        }
        return (bucket, prefix)
    }
}

/// The AWS CLI's INI files: `[default]`, `[name]` in credentials and `[profile name]` in config;
/// nested settings (`s3 =` followed by indented `key = value`) are read as `s3.key`.
struct IniFile {
    private var sections: [String: [String: String]] = [:]

    init(path: String, profileSections: Bool) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        var current: String?
        var parent: String?
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                var name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if profileSections && name.hasPrefix("profile ") {
                    name = String(name.dropFirst(8)).trimmingCharacters(in: .whitespaces)
                }
                current = name
                parent = nil
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            let indented = raw.first == " " || raw.first == "\t"
            if indented, let parent {
                sections[current, default: [:]]["\(parent).\(key)"] = value
            } else if value.isEmpty {
                parent = key
            } else {
                parent = nil
                sections[current, default: [:]][key] = value
            }
        }
    }

    func section(_ name: String) -> [String: String]? { sections[name] }
}
