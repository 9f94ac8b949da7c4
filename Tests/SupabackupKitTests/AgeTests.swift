import Foundation
import TestSupport
import Testing

@testable import SupabackupKit

/// The age format against the reference implementation (`age`, `age-keygen`; installed by
/// scripts/test.sh), pyrage for passphrase files, and headers from age's published testkit.
@Suite("age encryption")
struct AgeTests {
    static func temporary(_ name: String) -> String {
        NSTemporaryDirectory() + "age-\(UUID().uuidString)-\(name)"
    }

    static func pattern(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        let seed = UInt8.random(in: 0...255, using: &generator)
        return (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }

    /// Empty, one byte, a chunk's edges, several chunks.
    static let sizes = [0, 1, 65535, 65536, 65537, 3 * 65536 + 17]

    @Test("supabackup encrypts, age -d decrypts", arguments: sizes)
    func ageDecryptsOurs(size: Int) throws {
        let identity = AgeIdentity.generate()
        let keyFile = Self.temporary("key")
        let sealedFile = Self.temporary("sealed")
        defer { for f in [keyFile, sealedFile] { try? FileManager.default.removeItem(atPath: f) } }
        try identity.fileContents().write(toFile: keyFile, atomically: true, encoding: .utf8)
        let plaintext = Self.pattern(size)
        let sealed = try AgeFile.encrypt(plaintext, to: [identity.recipient!, AgeIdentity.generate().recipient!])
        try Data(sealed).write(to: URL(fileURLWithPath: sealedFile))
        #expect(try Tool.run(["age", "-d", "-i", keyFile, sealedFile]) == plaintext)
        // One full chunk (sealed as the last) plus 16 bytes of tag per chunk.
        let chunks = max(1, (size + 65535) / 65536)
        let header = sealed.count - 16 - size - 16 * chunks
        #expect(header > 0 && header < 400)
    }

    @Test("age -r encrypts (binary and armored), supabackup decrypts", arguments: sizes)
    func weDecryptAges(size: Int) throws {
        let keyFile = Self.temporary("key")
        let plainFile = Self.temporary("plain")
        defer { for f in [keyFile, plainFile] { try? FileManager.default.removeItem(atPath: f) } }
        try Tool.run(["age-keygen", "-o", keyFile])
        let identities = try AgeIdentity.parseFile(
            Array(try Data(contentsOf: URL(fileURLWithPath: keyFile))), source: keyFile, passphrase: { "" })
        let recipient = String(decoding: try Tool.run(["age-keygen", "-y", keyFile]), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(identities[0].recipient?.description == recipient)
        let plaintext = Self.pattern(size)
        try Data(plaintext).write(to: URL(fileURLWithPath: plainFile))
        let sealed = try Tool.run(["age", "-r", recipient, plainFile])
        #expect(try AgeFile.decrypt(sealed, with: identities) == plaintext)
        let armored = try Tool.run(["age", "-a", "-r", recipient, plainFile])
        #expect(try AgeFile.decrypt(armored, with: identities) == plaintext)
    }

    @Test("a passphrase-encrypted identity file (pyrage, as age -p writes it) opens with its passphrase")
    func passphraseIdentityFile() throws {
        let identity = AgeIdentity.generate()
        let script = """
            import sys, pyrage
            data = sys.stdin.buffer.read()
            sys.stdout.buffer.write(pyrage.passphrase.encrypt(data, "correct horse"))
            """
        let sealed = try Tool.run(["python3", "-c", script], input: Array(identity.fileContents().utf8))
        #expect(AgeFile.looksEncrypted(sealed))
        let opened = try AgeIdentity.parseFile(sealed, source: "key.age", passphrase: { "correct horse" })
        #expect(opened.map(\.secretString) == [identity.secretString])
        #expect(throws: UsageError.self) {
            try AgeIdentity.parseFile(sealed, source: "key.age", passphrase: { "wrong" })
        }
        // And the other way: a file supabackup cannot encrypt with a passphrase, but pyrage decrypts ours.
        let ours = try AgeFile.encrypt(Array("hello".utf8), to: [identity.recipient!])
        let decrypt = """
            import sys, pyrage
            from pyrage import x25519
            key = x25519.Identity.from_str(sys.argv[1])
            sys.stdout.buffer.write(pyrage.decrypt(sys.stdin.buffer.read(), [key]))
            """
        #expect(try Tool.run(["python3", "-c", decrypt, identity.secretString!], input: ours) == Array("hello".utf8))
    }

    @Test("keys match age-keygen -y, and Bech32 round-trips")
    func keysMatchAgeKeygen() throws {
        let identity = AgeIdentity.generate()
        let keyFile = Self.temporary("key")
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        try identity.fileContents().write(toFile: keyFile, atomically: true, encoding: .utf8)
        let expected = String(decoding: try Tool.run(["age-keygen", "-y", keyFile]), as: UTF8.self)
        #expect(expected == identity.recipient!.description + "\n")
        #expect(try AgeRecipient(parsing: expected).description == identity.recipient!.description)
        #expect(try AgeIdentity(parsing: identity.secretString!).secretString == identity.secretString)
    }

    // From age's testkit (testdata/testkit/x25519, x25519_bad_tag, hmac_garbage): the headers,
    // whose file key is "YELLOW SUBMARINE".
    static let testkitIdentity = "AGE-SECRET-KEY-1XMWWC06LY3EE5RYTXM9MFLAZ2U56JJJ36S0MYPDRWSVLUL66MV4QX3S7F6"
    static let testkitShare = "-> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\n"

    static func testkitHeader(body: String, mac: String) -> [UInt8] {
        Array(("age-encryption.org/v1\n" + testkitShare + body + "\n--- " + mac + "\n").utf8)
    }

    @Test("age testkit: x25519 unwraps the published file key and checks the MAC")
    func testkitX25519() throws {
        let header = Self.testkitHeader(
            body: "EmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw7U", mac: "Vn+54jqiiUCE+WZcEVY3f1sqHjlu/z1LCQ/T7Xm7qI0")
        let (parsed, length) = try #require(try AgeHeader.parse(header[...]))
        #expect(length == header.count)
        let fileKey = try parsed.unwrap(with: [try AgeIdentity(parsing: Self.testkitIdentity)])
        #expect(fileKey == Array("YELLOW SUBMARINE".utf8))
    }

    @Test("age testkit: a bad stanza tag matches no identity; a garbage MAC is a header failure")
    func testkitFailures() throws {
        let identity = try AgeIdentity(parsing: Self.testkitIdentity)
        let badTag = Self.testkitHeader(
            body: "EmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw0o", mac: "tG0k9bg4iIuBdMWb13n7FFYDzoBbtsLppNLhbh22aKg")
        let error = #expect(throws: ArchiveError.self) { try AgeHeader.parse(badTag[...])!.0.unwrap(with: [identity]) }
        #expect(error?.code == .locked)
        let garbage = Self.testkitHeader(
            body: "hjabGXwSLQ9c3S6Lw2i+S2Tu2fiwQHHslbBN6B41FLE", mac: "WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNgAAA")
        let failure = #expect(throws: ArchiveError.self) {
            try AgeHeader.parse(garbage[...])!.0.unwrap(with: [
                try AgeIdentity(parsing: "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0")
            ])
        }
        #expect(failure?.code == .damaged)
    }

    @Test("tampering is caught: a flipped bit, truncation, chunks reordered or dropped, stanzas changed")
    func tampering() throws {
        let identity = AgeIdentity.generate()
        let plaintext = Self.pattern(3 * 65536 + 100)
        let sealed = try AgeFile.encrypt(plaintext, to: [identity.recipient!])
        let headerLength = try #require(try AgeHeader.parse(sealed[...])).1
        let payload = headerLength + 16
        let chunk = 65536 + 16
        func rejects(_ bytes: [UInt8], code: ArchiveError.Code = .damaged, _ comment: Comment) {
            let error = #expect(throws: ArchiveError.self, comment) { try AgeFile.decrypt(bytes, with: [identity]) }
            #expect(error?.code == code, comment)
        }
        var flipped = sealed
        flipped[payload + chunk + 5] ^= 0x01
        rejects(flipped, "a flipped bit in chunk 2")
        var flippedHeader = sealed
        flippedHeader[headerLength - 5] ^= 0x01
        rejects(flippedHeader, "a flipped bit in the MAC")
        rejects(Array(sealed.dropLast()), "one byte short")
        rejects(Array(sealed.prefix(payload + 2 * chunk)), "the last chunk dropped")
        rejects(Array(sealed.prefix(payload + 3 * chunk)), "truncated at a chunk boundary")
        rejects(Array(sealed.prefix(headerLength - 10)), "truncated in the header")
        rejects(sealed + [0], "a byte appended")
        var swapped = Array(sealed.prefix(payload))
        swapped += sealed[(payload + chunk)..<(payload + 2 * chunk)]
        swapped += sealed[payload..<(payload + chunk)]
        swapped += sealed[(payload + 2 * chunk)...]
        rejects(swapped, "chunks 1 and 2 swapped")
        let text = String(decoding: sealed.prefix(headerLength), as: UTF8.self)
        let unknownType =
            Array(text.replacingOccurrences(of: "-> X25519 ", with: "-> X25520 ").utf8)
            + sealed[headerLength...]
        rejects(unknownType, code: .locked, "only a stanza of an unknown type")
        let extra =
            Array(text.replacingOccurrences(of: "\n---", with: "\n-> grease x\nAAAA\n---").utf8)
            + sealed[headerLength...]
        rejects(extra, "a stanza added (the MAC covers the header)")
    }

    @Test("a wrong identity is refused as locked, never as damage")
    func wrongIdentity() throws {
        let sealed = try AgeFile.encrypt(Self.pattern(10), to: [AgeIdentity.generate().recipient!])
        let error = #expect(throws: ArchiveError.self) { try AgeFile.decrypt(sealed, with: [AgeIdentity.generate()]) }
        #expect(error?.code == .locked)
        #expect(error?.message.contains("no identity") == true)
    }

    @Test("recipient strings that are not keys are refused with a one-line reason")
    func badRecipients() throws {
        let secret = AgeIdentity.generate().secretString!
        for text in [
            "", "age1", "age1qqqq", "ssh-ed25519 AAAA", secret, "AGE1" + String(repeating: "Q", count: 58), "hello",
        ] {
            let error = #expect(throws: UsageError.self) { try AgeRecipient(parsing: text) }
            #expect(error?.message.contains("\n") == false)
            #expect(error?.message.contains(secret) == false)
        }
        let good = AgeIdentity.generate().recipient!.description
        let list = try AgeRecipient.parseList("# team\n\n\(good)\n  \(good)  \n", source: "r.txt")
        #expect(list.count == 2)
        #expect(throws: UsageError.self) { try AgeRecipient.parseList("\(good)\nnope\n", source: "r.txt") }
    }
}
