/// Checks that bytes are exactly one JSON object (RFC 8259), without building any values.
///
/// Used by `verify` on every line of every data file, so it is a single pass over bytes with an
/// explicit stack (no recursion: nesting depth cannot overflow the call stack).
public enum JSONValidator {
    public static func isObject(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = bytes.count
        func skipSpace() {
            while i < n {
                let b = bytes[i]
                if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { i += 1 } else { break }
            }
        }
        skipSpace()
        guard i < n, bytes[i] == UInt8(ascii: "{") else { return false }
        // Containers open: true for object, false for array.
        var stack: [Bool] = []
        // What the parser expects next.
        enum Expect { case value, keyOrEnd, key, colon, commaOrEnd, valueOrEnd }
        var expect = Expect.value
        while true {
            skipSpace()
            if i >= n { return false }
            let b = bytes[i]
            switch expect {
            case .value, .valueOrEnd:
                if expect == .valueOrEnd && b == UInt8(ascii: "]") {
                    stack.removeLast()
                    i += 1
                    if stack.isEmpty { skipSpace(); return i == n }
                    expect = .commaOrEnd
                    continue
                }
                switch b {
                case UInt8(ascii: "{"):
                    stack.append(true)
                    i += 1
                    expect = .keyOrEnd
                    continue
                case UInt8(ascii: "["):
                    stack.append(false)
                    i += 1
                    expect = .valueOrEnd
                    continue
                case UInt8(ascii: "\""):
                    guard scanString(bytes, &i) else { return false }
                case UInt8(ascii: "t"):
                    guard literal(bytes, &i, "true") else { return false }
                case UInt8(ascii: "f"):
                    guard literal(bytes, &i, "false") else { return false }
                case UInt8(ascii: "n"):
                    guard literal(bytes, &i, "null") else { return false }
                default:
                    guard scanNumber(bytes, &i) else { return false }
                }
                if stack.isEmpty { return false }
                expect = .commaOrEnd
            case .keyOrEnd, .key:
                if expect == .keyOrEnd && b == UInt8(ascii: "}") {
                    stack.removeLast()
                    i += 1
                    if stack.isEmpty { skipSpace(); return i == n }
                    expect = .commaOrEnd
                    continue
                }
                guard b == UInt8(ascii: "\""), scanString(bytes, &i) else { return false }
                expect = .colon
            case .colon:
                guard b == UInt8(ascii: ":") else { return false }
                i += 1
                expect = .value
            case .commaOrEnd:
                let inObject = stack.last!
                if b == UInt8(ascii: ",") {
                    i += 1
                    expect = inObject ? .key : .value
                } else if b == (inObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    stack.removeLast()
                    i += 1
                    if stack.isEmpty { skipSpace(); return i == n }
                } else {
                    return false
                }
            }
        }
    }

    private static func literal(_ bytes: UnsafeRawBufferPointer, _ i: inout Int, _ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard i + count <= bytes.count else { return false }
        for k in 0..<count where bytes[i + k] != word.utf8Start[k] { return false }
        i += count
        return true
    }

    /// A string starting at the opening quote; validates escapes and UTF-8.
    private static func scanString(_ bytes: UnsafeRawBufferPointer, _ i: inout Int) -> Bool {
        i += 1
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                return true
            }
            if b < 0x20 { return false }
            if b == UInt8(ascii: "\\") {
                guard i + 1 < n else { return false }
                let e = bytes[i + 1]
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 2
                case UInt8(ascii: "u"):
                    guard i + 6 <= n else { return false }
                    for k in 2..<6 where !isHex(bytes[i + k]) { return false }
                    i += 6
                default:
                    return false
                }
                continue
            }
            if b < 0x80 {
                i += 1
                continue
            }
            // UTF-8 multi-byte sequence (RFC 3629).
            let length: Int
            let minimum: UInt32
            if b & 0xE0 == 0xC0 {
                length = 2; minimum = 0x80
            } else if b & 0xF0 == 0xE0 {
                length = 3; minimum = 0x800
            } else if b & 0xF8 == 0xF0 {
                length = 4; minimum = 0x10000
            } else {
                return false
            }
            guard i + length <= n else { return false }
            var scalar = UInt32(b) & (0x7F >> UInt32(length))
            for k in 1..<length {
                let c = bytes[i + k]
                guard c & 0xC0 == 0x80 else { return false }
                scalar = scalar << 6 | UInt32(c & 0x3F)
            }
            guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else { return false }
            i += length
        }
        return false
    }

    private static func scanNumber(_ bytes: UnsafeRawBufferPointer, _ i: inout Int) -> Bool {
        let n = bytes.count
        func digit(_ k: Int) -> Bool { k < n && bytes[k] >= 48 && bytes[k] <= 57 }
        if i < n && bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard digit(i) else { return false }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while digit(i) { i += 1 }
        }
        if i < n && bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digit(i) else { return false }
            while digit(i) { i += 1 }
        }
        if i < n && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
            i += 1
            if i < n && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { i += 1 }
            guard digit(i) else { return false }
            while digit(i) { i += 1 }
        }
        return true
    }

    private static func isHex(_ b: UInt8) -> Bool {
        (b >= 48 && b <= 57) || (b >= 65 && b <= 70) || (b >= 97 && b <= 102)
    }
}

extension JSONValidator {
    public static func isObject(_ text: String) -> Bool {
        var copy = text
        return copy.withUTF8 { isObject(UnsafeRawBufferPointer($0)) }
    }
}
