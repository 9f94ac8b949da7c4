import Crypto
import Foundation

/// An age X25519 recipient: the public key (`age1...`) files are encrypted to.
public struct AgeRecipient: Sendable, Hashable, CustomStringConvertible {
    let publicKey: [UInt8]

    init(publicKey: [UInt8]) { self.publicKey = publicKey }

    /// Parses `age1...`; anything else is a usage error naming what was given (keys are public).
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("ssh-") {
            throw UsageError("SSH keys are not supported as recipients; give an age public key (age1...)")
        }
        if trimmed.uppercased().hasPrefix("AGE-SECRET-KEY-") {
            throw UsageError(
                "that is a private key, not a recipient; give its public key (age-keygen -y or supabackup keygen -y)")
        }
        guard let (hrp, data) = Bech32.decode(trimmed), hrp == "age", data.count == 32, trimmed == trimmed.lowercased()
        else {
            throw UsageError("'\(Self.printable(trimmed))' is not an age public key (age1... from age-keygen)")
        }
        publicKey = data
    }

    /// `age1...`
    public var description: String { Bech32.encode(hrp: "age", data: publicKey) }

    /// Recipients in age's recipients-file format: one per line, `#` comments and blank lines
    /// ignored.
    public static func parseList(_ text: String, source: String) throws -> [AgeRecipient] {
        var out: [AgeRecipient] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            do {
                out.append(try AgeRecipient(parsing: trimmed))
            } catch let error as UsageError {
                throw UsageError("\(source) line \(number + 1): \(error.message)")
            }
        }
        return out
    }

    static func printable(_ text: String) -> String {
        let short = text.count > 80 ? String(text.prefix(77)) + "..." : text
        return String(short.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
    }
}

/// What opens an age file: an X25519 private key (`AGE-SECRET-KEY-1...`) or a passphrase.
public struct AgeIdentity: Sendable {
    enum Kind: Sendable {
        /// The raw 32-byte scalar (the key type itself is not Sendable).
        case x25519([UInt8])
        case passphrase([UInt8])
    }

    let kind: Kind

    /// A new random X25519 identity.
    public static func generate() -> AgeIdentity {
        AgeIdentity(kind: .x25519(Array(Curve25519.KeyAgreement.PrivateKey().rawRepresentation)))
    }

    /// A passphrase, for files encrypted with `age -p`.
    public static func passphrase(_ passphrase: String) -> AgeIdentity {
        AgeIdentity(kind: .passphrase(Array(passphrase.utf8)))
    }

    init(kind: Kind) { self.kind = kind }

    /// Parses `AGE-SECRET-KEY-1...`. The message never repeats the text: it may be a secret.
    public init(parsing text: String) throws {
        guard let (hrp, data) = Bech32.decode(text), hrp == "age-secret-key-", data.count == 32,
            text == text.uppercased(),
            (try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: data)) != nil
        else { throw UsageError("not an age identity (AGE-SECRET-KEY-1...)") }
        kind = .x25519(data)
    }

    /// `AGE-SECRET-KEY-1...`, nil for a passphrase.
    public var secretString: String? {
        guard case .x25519(let key) = kind else { return nil }
        return Bech32.encode(hrp: "AGE-SECRET-KEY-", data: key).uppercased()
    }

    /// The public key, nil for a passphrase.
    public var recipient: AgeRecipient? {
        guard case .x25519(let raw) = kind else { return nil }
        let key = try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw)
        return AgeRecipient(publicKey: Array(key.publicKey.rawRepresentation))
    }

    /// The identities an age identity file holds: `AGE-SECRET-KEY-1` lines, `#` comments and blank
    /// lines. A file that is itself age-encrypted (`age -p`, armored or not) is decrypted first
    /// with the passphrase `passphrase()` supplies, asked only then.
    public static func parseFile(_ contents: [UInt8], source: String, passphrase: () throws -> String) throws
        -> [AgeIdentity]
    {
        var text = contents
        if AgeFile.looksEncrypted(contents) {
            let secret = try passphrase()
            do {
                text = try AgeFile.decrypt(contents, with: [.passphrase(secret)])
            } catch let error as ArchiveError where error.code == .locked {
                throw UsageError("\(source): the passphrase does not open this identity file")
            } catch let error as ArchiveError {
                throw UsageError("\(source): \(error.message)")
            }
        }
        var out: [AgeIdentity] = []
        for (number, line) in String(decoding: text, as: UTF8.self).split(
            separator: "\n", omittingEmptySubsequences: false
        ).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            do {
                out.append(try AgeIdentity(parsing: trimmed))
            } catch {
                throw UsageError(
                    "\(source) line \(number + 1): not an age identity (AGE-SECRET-KEY-1...); SSH and plugin keys are not supported"
                )
            }
        }
        guard !out.isEmpty else { throw UsageError("\(source) holds no age identity (AGE-SECRET-KEY-1...)") }
        return out
    }

    /// An identity file as age-keygen writes it.
    public func fileContents(created: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return "# created: \(formatter.string(from: created))\n# public key: \(recipient?.description ?? "")\n"
            + "\(secretString ?? "")\n"
    }
}
