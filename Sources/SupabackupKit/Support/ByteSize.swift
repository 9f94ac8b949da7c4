import Foundation

/// Sizes as PostgreSQL writes them: a number with an optional unit B, kB, MB, GB or TB
/// (multiples of 1024, case-insensitive), e.g. `64MB`, `512kB`, `1 GB`.
public enum ByteSize {
    public static func parse(_ text: String) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let number = Int64(digits) else { return nil }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        let shifts: [String: Int64] = ["": 0, "b": 0, "kb": 10, "mb": 20, "gb": 30, "tb": 40]
        guard let shift = shifts[unit], number <= Int64.max >> shift else { return nil }
        return number << shift
    }
}
