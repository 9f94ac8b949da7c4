import SupabackupKit
import Testing

@Suite("JSON line validation")
struct JSONValidatorTests {
    @Test(
        "JSON objects are accepted",
        arguments: [
            "{}", "{\"a\":1}", " {\"a\" : [1, 2.5e-3, -0, true, false, null, {\"b\": \"\\u00e9\\n\\\"\"}]} ",
            "{\"big\":123456789012345678901234567890.12345}", "{\"u\":\"日本 🎉\"}", "{\"a\":{\"b\":{\"c\":[[[]]]}}}",
        ])
    func valid(_ text: String) {
        #expect(JSONValidator.isObject(text))
    }

    @Test(
        "everything else is refused",
        arguments: [
            "", "[]", "1", "\"s\"", "null", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{\"a\":01}",
            "{\"a\":1.}", "{\"a\":.5}", "{\"a\":tru}", "{\"a\":\"\n\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}",
            "{\"a\":1}{}", "{\"a\":[1,]}", "{\"a\":[1 2]}", "{\"a\":1]", "{\"a\":\"unterminated}",
        ])
    func invalid(_ text: String) {
        #expect(!JSONValidator.isObject(text))
    }

    @Test("invalid UTF-8 is refused")
    func badUTF8() {
        for bytes: [UInt8] in [
            [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D], [0x7B, 0x22, 0xC0, 0xAF, 0x22, 0x3A, 0x31, 0x7D],
        ] {
            #expect(!bytes.withUnsafeBytes { JSONValidator.isObject($0) })
        }
    }

    @Test("deep nesting neither crashes nor passes when unbalanced")
    func deep() {
        let deep = "{\"a\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        #expect(JSONValidator.isObject(deep))
        #expect(!JSONValidator.isObject("{\"a\":" + String(repeating: "[", count: 100_000) + "}"))
    }
}
