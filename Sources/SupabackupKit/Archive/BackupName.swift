import Foundation

/// Backup folder names: the backup's UTC start time, `2025-11-30T12-00-00-000Z`.
public enum BackupName {
    /// The name for a backup starting at `date`.
    public static func make(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let seconds = ms / 1000
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d-%02d-%02d-%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(ms % 1000))
    }

    /// The start time a name encodes, or nil when `name` is not a backup name.
    public static func date(of name: String) -> Date? {
        let bytes = Array(name.utf8)
        // YYYY-MM-DDTHH-MM-SS-mmmZ
        guard bytes.count == 24, bytes[23] == UInt8(ascii: "Z"), bytes[10] == UInt8(ascii: "T") else { return nil }
        for i in [4, 7, 13, 16, 19] where bytes[i] != UInt8(ascii: "-") { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for i in range {
                guard bytes[i] >= 48 && bytes[i] <= 57 else { return nil }
                value = value * 10 + Int(bytes[i] - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            let millisecond = number(20..<23), (1...12).contains(month), (1...31).contains(day), hour < 24,
            minute < 60, second < 61
        else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        return Date(timeIntervalSince1970: Double(seconds) + Double(millisecond) / 1000)
    }

    /// ISO 8601 with milliseconds, as the manifest stores times.
    public static func iso8601(_ date: Date) -> String {
        let name = make(date)
        // 2025-11-30T12-00-00-000Z -> 2025-11-30T12:00:00.000Z
        var chars = Array(name)
        chars[13] = ":"
        chars[16] = ":"
        chars[19] = "."
        return String(chars)
    }

    /// Checks a name given on the command line: a plain folder name, nothing path-like.
    /// - Throws: `ArchiveError` (`invalidName`) saying what is wrong.
    public static func validateUserInput(_ name: String) throws {
        if name.isEmpty { throw ArchiveError(.invalidName, "the backup name is empty") }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw ArchiveError(.invalidName, "backup name contains control characters")
        }
        if name.contains("/") || name.contains("\\") {
            let last = name.split(separator: "/").last.map(String.init) ?? name
            throw ArchiveError(
                .invalidName,
                "'\(printable(name))' is a path; give the backup's name (e.g. '\(printable(last))') and its folder with --dir"
            )
        }
        if name == "." || name == ".." || name.hasPrefix(".") {
            throw ArchiveError(.invalidName, "'\(printable(name))' is not a backup name")
        }
    }

    /// The name with anything unprintable escaped, safe to put in a one-line message.
    public static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += String(format: "\\x%02x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
