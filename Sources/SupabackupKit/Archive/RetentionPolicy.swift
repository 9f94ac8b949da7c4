import Foundation

/// Which backups to keep, with restic's `forget` semantics: a backup kept by any rule stays.
///
/// `keepDays` keeps everything younger than N days (measured from now; exactly N days old is
/// kept). `keepLast` keeps the N newest. `keepDaily`/`keepWeekly`/`keepMonthly` keep the newest
/// backup of each of the last N UTC days/ISO weeks/months that have backups. The newest backup
/// is always kept, and so is the newest backup that holds data: empty backups (no table, no
/// Storage object) never push the last real one out. Pure: no I/O.
public struct RetentionPolicy: Sendable, Equatable {
    public var keepDays: Int?
    public var keepLast: Int?
    public var keepDaily: Int?
    public var keepWeekly: Int?
    public var keepMonthly: Int?

    public init(
        keepDays: Int? = nil, keepLast: Int? = nil, keepDaily: Int? = nil, keepWeekly: Int? = nil,
        keepMonthly: Int? = nil
    ) {
        self.keepDays = keepDays
        self.keepLast = keepLast
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.keepMonthly = keepMonthly
    }

    /// What a bare `prune` does: keep 30 days.
    public static let `default` = RetentionPolicy(keepDays: 30)

    public var isEmpty: Bool { [keepDays, keepLast, keepDaily, keepWeekly, keepMonthly].allSatisfy { $0 == nil } }

    public struct Decision: Sendable, Equatable {
        public var name: String
        public var time: Date
        /// Why it is kept; empty means it is removed.
        public var reasons: [String]
        public var keep: Bool { !reasons.isEmpty }
    }

    /// Decides for every backup, newest first.
    /// - Parameter empty: the names of backups that hold no table and no Storage object.
    public func apply(to backups: [(name: String, time: Date)], now: Date, empty: Set<String> = []) -> [Decision] {
        let sorted = backups.sorted { ($0.time, $0.name) > ($1.time, $1.name) }
        var decisions = sorted.map { Decision(name: $0.name, time: $0.time, reasons: []) }
        guard !decisions.isEmpty else { return [] }
        decisions[0].reasons.append("newest")
        if empty.contains(decisions[0].name),
            let newestWithData = decisions.firstIndex(where: { !empty.contains($0.name) })
        {
            decisions[newestWithData].reasons.append("newest holding data")
        }
        if let keepDays {
            for i in decisions.indices where now.timeIntervalSince(decisions[i].time) <= Double(keepDays) * 86_400 {
                decisions[i].reasons.append("within \(keepDays) days")
            }
        }
        if let keepLast {
            for i in decisions.indices.prefix(keepLast) { decisions[i].reasons.append("last \(keepLast)") }
        }
        func bucketRule(_ count: Int?, _ label: String, _ bucket: (Date) -> String) {
            guard let count, count > 0 else { return }
            var seen: [String] = []
            for i in decisions.indices {
                let key = bucket(decisions[i].time)
                if seen.contains(key) { continue }
                seen.append(key)
                if seen.count > count { break }
                decisions[i].reasons.append("\(label) \(key)")
            }
        }
        bucketRule(keepDaily, "daily", Self.day)
        bucketRule(keepWeekly, "weekly", Self.week)
        bucketRule(keepMonthly, "monthly", Self.month)
        return decisions
    }

    static var utc: Calendar {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }

    static func day(_ date: Date) -> String {
        let c = utc.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
    }

    static func week(_ date: Date) -> String {
        let c = utc.dateComponents([.yearForWeekOfYear, .weekOfYear], from: date)
        return String(format: "%04d-W%02d", c.yearForWeekOfYear!, c.weekOfYear!)
    }

    static func month(_ date: Date) -> String {
        let c = utc.dateComponents([.year, .month], from: date)
        return String(format: "%04d-%02d", c.year!, c.month!)
    }
}
