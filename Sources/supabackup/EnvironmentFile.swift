import Foundation
import SupabackupKit

/// `SUPABACKUP_ENV_FILE`: a file of `KEY=VALUE` lines read the way systemd reads an
/// `EnvironmentFile=`, so the one file serves both the systemd unit and the cron line. No shell
/// runs it: `$`, backquotes and spaces in a password are literal. Blank lines and lines starting
/// with `#` or `;` are skipped; a value in single or double quotes loses them (in double quotes
/// `\"` and `\\` are a quote and a backslash).
enum EnvironmentFile {
    static let variable = "SUPABACKUP_ENV_FILE"

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// The file's variables, in order.
    static func parse(_ text: String, file: String) throws -> [(key: String, value: String)] {
        var pairs: [(key: String, value: String)] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix(";") { continue }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw Malformed(description: "\(file):\(number + 1): not a KEY=VALUE line")
            }
            let key = trimmed[..<equals].trimmingCharacters(in: .whitespaces)
            // systemd's rule: ASCII letters, digits and underscores, not starting with a digit.
            let isNameByte = { (byte: UInt8) in
                (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F
                    || (byte >= 0x30 && byte <= 0x39)
            }
            guard let first = key.utf8.first, isNameByte(first), !(first >= 0x30 && first <= 0x39),
                key.utf8.allSatisfy(isNameByte)
            else {
                throw Malformed(description: "\(file):\(number + 1): '\(key)' is not a variable name")
            }
            var value = trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("'"), value.hasSuffix("'") {
                value = String(value.dropFirst().dropLast())
            } else if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                var unescaped = ""
                var escaping = false
                for character in value.dropFirst().dropLast() {
                    if escaping || character != "\\" {
                        unescaped.append(character)
                        escaping = false
                    } else {
                        escaping = true
                    }
                }
                value = unescaped
            }
            pairs.append((key, value))
        }
        return pairs
    }

    /// Sets the variables of the file `SUPABACKUP_ENV_FILE` names, if it names one.
    static func load() throws {
        guard let file = ProcessInfo.processInfo.environment[variable], !file.isEmpty else { return }
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw UsageError("\(variable): cannot read \(file)")
        }
        for pair in try parse(text, file: file) { setenv(pair.key, pair.value, 1) }
    }
}
