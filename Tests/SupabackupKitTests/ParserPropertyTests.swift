import Foundation
import Testing

@testable import SupabackupKit

/// Property tests (a bounded fuzz) for the parsers that read untrusted bytes: the JSON line
/// validator, the page/row scanner, and the manifest decoder. Longer runs:
/// `SUPABACKUP_FUZZ_ITERATIONS=1000000 scripts/test.sh --filter ParserPropertyTests`.
@Suite("Parser properties")
struct ParserPropertyTests {
    static let iterations = Int(ProcessInfo.processInfo.environment["SUPABACKUP_FUZZ_ITERATIONS"] ?? "") ?? 5000

    /// SplitMix64: reproducible runs from a seed.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static let tokens = [
        "{", "}", "[", "]", ":", ",", " ", "\n", "\"a\"", "\"k\\\"e\\\\y\"", "\"\\u00e9\"", "\"日本\"", "1", "-0",
        "12.5e-3",
        "1.", ".5", "01", "true", "false", "null", "nul", "\"", "\\", "\"\\x\"", "\t", "1e", "-", "\"unterminated",
    ]

    @Test("the line validator agrees with Foundation's JSON parser on random token soup")
    func validatorAgrees() throws {
        var random = Random(state: 42)
        var disagreements: [String] = []
        for _ in 0..<Self.iterations {
            var text = random.below(4) == 0 ? "" : "{"
            for _ in 0..<random.below(12) { text += Self.tokens[random.below(Self.tokens.count)] }
            if random.below(2) == 0 { text += "}" }
            let ours = JSONValidator.isObject(text)
            let foundation = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) is [String: Any]
            if ours != foundation { disagreements.append(text) }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
    }

    @Test("the row scanner and string decoder never crash on random bytes, and split valid pages exactly")
    func scanner() throws {
        var random = Random(state: 7)
        for _ in 0..<Self.iterations {
            let bytes = (0..<random.below(64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            bytes.withUnsafeBytes { buffer in
                _ = JSONScanner.forEachArrayElement(buffer) { _ in }
                _ = JSONScanner.members(buffer, in: 0..<buffer.count)
                _ = JSONScanner.decodeString(buffer)
            }
        }
        // Pages as PostgreSQL's json_agg writes them split back into exactly their rows.
        for _ in 0..<(Self.iterations / 10) {
            let rows = (0..<random.below(6)).map { i in
                "{\"id\":\(i),\"s\":\"a,\\\"b}\\\\\",\"n\":[\(random.below(9)),{\"x\":null}]}"
            }
            let page = rows.isEmpty ? "[]" : "[" + rows.joined(separator: ", \n ") + "]"
            var split: [String] = []
            let ok = Array(page.utf8).withUnsafeBytes { buffer in
                JSONScanner.forEachArrayElement(buffer) {
                    split.append(String(decoding: UnsafeRawBufferPointer(rebasing: buffer[$0]), as: UTF8.self))
                }
            }
            #expect(ok && split == rows)
        }
    }

    @Test("the manifest decoder refuses mutated manifests with an archive error, never a crash")
    func manifestDecoder() throws {
        var random = Random(state: 99)
        let valid = Array(try ManifestTests.sample().encoded())
        var refused = 0
        var accepted = 0
        let runs = Self.iterations / 5
        for _ in 0..<runs {
            var bytes = valid
            for _ in 0..<(1 + random.below(4)) {
                let index = random.below(bytes.count)
                switch random.below(3) {
                case 0: bytes[index] = UInt8(truncatingIfNeeded: random.next())
                case 1: bytes.remove(at: index)
                default: bytes.insert(Array("\"{}[],:0".utf8)[random.below(8)], at: index)
                }
            }
            do {
                let manifest = try Manifest.decode(Data(bytes))
                try manifest.validate()
                accepted += 1
            } catch is ArchiveError {
                refused += 1
            }
        }
        // Only ArchiveError may come out (anything else fails the test above), and most
        // mutations of a manifest's structure must be refused rather than decoded.
        #expect(refused + accepted == runs)
        #expect(refused > runs / 2, "\(refused) of \(runs) mutated manifests refused")
    }
}
