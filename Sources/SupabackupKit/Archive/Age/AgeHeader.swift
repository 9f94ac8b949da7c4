import Crypto
import Foundation
import _CryptoExtras

/// The header of an age file (age-encryption.org/v1): recipient stanzas wrapping a 16-byte file
/// key, and an HMAC over the header made with it.
///
/// Parsing is strict where the specification is: LF line ends, canonical unpadded base64, body
/// lines of 64 columns with a shorter last line. Stanzas of unknown types are skipped, as the
/// specification asks; they cannot be forged in, since the MAC covers them.
struct AgeHeader {
    struct Stanza {
        var arguments: [String]
        var body: [UInt8]
        var type: String { arguments[0] }
    }

    static let versionLine = "age-encryption.org/v1"
    static let maximumBytes = 1 << 20
    /// age's default: passphrase files with a higher work factor are refused (memory and time).
    static let maximumWorkFactor = 22

    var stanzas: [Stanza]
    var mac: [UInt8]
    /// The header bytes the MAC covers: everything up to and including `---`.
    var macInput: [UInt8]

    // MARK: Writing

    /// The header for `fileKey` wrapped to each recipient.
    static func encode(fileKey: [UInt8], recipients: [AgeRecipient]) -> [UInt8] {
        var text = versionLine + "\n"
        for recipient in recipients {
            let stanza = wrapX25519(fileKey: fileKey, to: recipient)
            text += "-> " + stanza.arguments.joined(separator: " ") + "\n" + wrapLines(base64(stanza.body))
        }
        text += "---"
        var bytes = Array(text.utf8)
        let mac = headerMAC(fileKey: fileKey, input: bytes)
        bytes += Array((" " + base64(mac) + "\n").utf8)
        return bytes
    }

    private static func wrapLines(_ encoded: String) -> String {
        var out = ""
        var rest = Substring(encoded)
        while rest.count >= 64 {
            out += rest.prefix(64) + "\n"
            rest = rest.dropFirst(64)
        }
        return out + rest + "\n"
    }

    private static func wrapX25519(fileKey: [UInt8], to recipient: AgeRecipient) -> Stanza {
        let ephemeral = Curve25519.KeyAgreement.PrivateKey()
        let share = Array(ephemeral.publicKey.rawRepresentation)
        let theirs = try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: recipient.publicKey)
        let shared = try! ephemeral.sharedSecretFromKeyAgreement(with: theirs)
        let key = shared.hkdfDerivedSymmetricKey(
            using: SHA256.self, salt: share + recipient.publicKey,
            sharedInfo: Array("age-encryption.org/v1/X25519".utf8),
            outputByteCount: 32)
        return Stanza(arguments: ["X25519", base64(share)], body: seal(fileKey, key: key))
    }

    // MARK: Reading

    /// Parses a header at the start of `bytes`.
    /// - Returns: the header and its length, or nil when `bytes` ends before the header does.
    static func parse(_ bytes: ArraySlice<UInt8>) throws -> (AgeHeader, Int)? {
        var position = bytes.startIndex
        func line() throws -> ArraySlice<UInt8>? {
            guard let end = bytes[position...].firstIndex(of: 0x0A) else {
                if bytes.count > maximumBytes { throw malformed("the header is too long") }
                return nil
            }
            let result = bytes[position..<end]
            position = end + 1
            return result
        }
        guard let first = try line() else { return nil }
        guard Array(first) == Array(versionLine.utf8) else {
            if first.starts(with: Array("age-encryption.org/".utf8)) {
                throw ArchiveError(.unsupported, "is an age file of a version this supabackup does not read")
            }
            throw ArchiveError(.damaged, "is not an age file")
        }
        var stanzas: [Stanza] = []
        while true {
            let start = position
            guard let next = try line() else { return nil }
            if next.starts(with: Array("--- ".utf8)) {
                let mac = try decodeBase64(next.dropFirst(4), what: "header MAC")
                guard mac.count == 32 else { throw malformed("the header MAC is malformed") }
                let input = Array(bytes[bytes.startIndex..<(start + 3)])
                return (AgeHeader(stanzas: stanzas, mac: mac, macInput: input), position - bytes.startIndex)
            }
            guard next.starts(with: Array("-> ".utf8)) else { throw malformed("a header line is malformed") }
            let arguments = next.dropFirst(3).split(separator: 0x20, omittingEmptySubsequences: false)
            guard arguments.allSatisfy({ !$0.isEmpty && $0.allSatisfy { (33...126).contains($0) } }) else {
                throw malformed("a stanza has a malformed argument")
            }
            var encoded: [UInt8] = []
            while true {
                guard let bodyLine = try line() else { return nil }
                guard bodyLine.count <= 64 else { throw malformed("a stanza body line is longer than 64 columns") }
                encoded += bodyLine
                if bodyLine.count < 64 { break }
            }
            let body = try decodeBase64(encoded[...], what: "stanza body")
            stanzas.append(Stanza(arguments: arguments.map { String(decoding: $0, as: UTF8.self) }, body: body))
        }
    }

    /// The file key, from the first stanza an identity opens, with the MAC checked.
    func unwrap(with identities: [AgeIdentity]) throws -> [UInt8] {
        if stanzas.contains(where: { $0.type == "scrypt" }) && stanzas.count != 1 {
            throw Self.malformed("a passphrase (scrypt) stanza must be the only one")
        }
        for stanza in stanzas {
            for identity in identities {
                guard let fileKey = try Self.open(stanza, with: identity) else { continue }
                guard
                    HMAC<SHA256>.isValidAuthenticationCode(
                        mac, authenticating: macInput, using: Self.macKey(fileKey))
                else { throw ArchiveError(.damaged, "its age header was altered (header MAC mismatch)") }
                return fileKey
            }
        }
        let types = Set(stanzas.map(\.type)).sorted().joined(separator: ", ")
        if identities.contains(where: { if case .passphrase = $0.kind { true } else { false } }) {
            throw ArchiveError(.locked, "the passphrase does not open it")
        }
        throw ArchiveError(
            .locked,
            "no identity given opens it (it is encrypted to \(stanzas.count) recipient\(stanzas.count == 1 ? "" : "s") of type \(types.isEmpty ? "none" : types))"
        )
    }

    private static func open(_ stanza: Stanza, with identity: AgeIdentity) throws -> [UInt8]? {
        switch (stanza.type, identity.kind) {
        case ("X25519", .x25519(let raw)):
            let key = try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw)
            guard stanza.arguments.count == 2 else { throw malformed("an X25519 stanza has the wrong arguments") }
            let share = try decodeBase64(Array(stanza.arguments[1].utf8)[...], what: "X25519 share")
            guard share.count == 32, stanza.body.count == 32 else { throw malformed("an X25519 stanza is malformed") }
            guard let theirs = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: share),
                let shared = try? key.sharedSecretFromKeyAgreement(with: theirs)
            else { throw malformed("an X25519 stanza is malformed") }
            guard shared.withUnsafeBytes({ $0.contains { $0 != 0 } }) else {
                throw malformed("an X25519 stanza has a low-order share")
            }
            let wrapKey = shared.hkdfDerivedSymmetricKey(
                using: SHA256.self, salt: share + Array(key.publicKey.rawRepresentation),
                sharedInfo: Array("age-encryption.org/v1/X25519".utf8), outputByteCount: 32)
            return try? openBody(stanza.body, key: wrapKey)
        case ("scrypt", .passphrase(let passphrase)):
            guard stanza.arguments.count == 3 else { throw malformed("a scrypt stanza has the wrong arguments") }
            let salt = try decodeBase64(Array(stanza.arguments[1].utf8)[...], what: "scrypt salt")
            let factorText = stanza.arguments[2]
            guard salt.count == 16, stanza.body.count == 32, factorText.utf8.allSatisfy({ (48...57).contains($0) }),
                !factorText.hasPrefix("0"), factorText.count <= 2, let factor = Int(factorText), factor > 0
            else { throw malformed("a scrypt stanza is malformed") }
            guard factor <= maximumWorkFactor else {
                throw ArchiveError(
                    .damaged, "its passphrase work factor \(factor) is above \(maximumWorkFactor), the most accepted")
            }
            let key = try KDF.Scrypt.deriveKey(
                from: passphrase, salt: Array("age-encryption.org/v1/scrypt".utf8) + salt, outputByteCount: 32,
                rounds: 1 << factor, blockSize: 8, parallelism: 1, maxMemory: 256 << factor)
            return try? openBody(stanza.body, key: key)
        default:
            return nil
        }
    }

    // MARK: Primitives

    static func macKey(_ fileKey: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: fileKey), salt: [UInt8](), info: Array("header".utf8),
            outputByteCount: 32)
    }

    static func headerMAC(fileKey: [UInt8], input: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: input, using: macKey(fileKey)))
    }

    private static var zeroNonce: ChaChaPoly.Nonce { try! ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)) }

    private static func seal(_ plaintext: [UInt8], key: SymmetricKey) -> [UInt8] {
        let box = try! ChaChaPoly.seal(plaintext, using: key, nonce: zeroNonce)
        return Array(box.ciphertext) + Array(box.tag)
    }

    private static func openBody(_ body: [UInt8], key: SymmetricKey) throws -> [UInt8] {
        let box = try ChaChaPoly.SealedBox(nonce: zeroNonce, ciphertext: body.dropLast(16), tag: body.suffix(16))
        let key = try ChaChaPoly.open(box, using: key)
        guard key.count == 16 else { throw malformed("a stanza wraps a file key of the wrong size") }
        return Array(key)
    }

    static func base64(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    /// Canonical unpadded base64 only: anything else would let two encodings of one header exist.
    static func decodeBase64(_ text: ArraySlice<UInt8>, what: String) throws -> [UInt8] {
        let valid = text.allSatisfy { byte in
            (65...90).contains(byte) || (97...122).contains(byte) || (48...57).contains(byte) || byte == 43
                || byte == 47
        }
        var padded = String(decoding: text, as: UTF8.self)
        while padded.utf8.count % 4 != 0 { padded += "=" }
        guard valid, let data = Data(base64Encoded: padded),
            base64(Array(data)) == String(decoding: text, as: UTF8.self)
        else { throw malformed("the \(what) is not canonical base64") }
        return Array(data)
    }

    static func malformed(_ message: String) -> ArchiveError {
        ArchiveError(.damaged, "has a malformed age header: \(message)")
    }
}
