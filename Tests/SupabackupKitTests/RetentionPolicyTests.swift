import Foundation
import SupabackupKit
import Testing

@Suite("Retention policy")
struct RetentionPolicyTests {
    /// 2025-11-30T12:00:00Z.
    let now = Date(timeIntervalSince1970: 1_764_504_000)

    func backups(_ ages: [Double]) -> [(name: String, time: Date)] {
        ages.map { hours in
            let time = now.addingTimeInterval(-hours * 3600)
            return (BackupName.make(time), time)
        }
    }

    func kept(_ policy: RetentionPolicy, _ list: [(name: String, time: Date)]) -> Set<String> {
        Set(policy.apply(to: list, now: now).filter(\.keep).map(\.name))
    }

    @Test("keep-days keeps exactly 30 days old, removes a millisecond older, and never the newest")
    func keepDays() {
        let exactly = now.addingTimeInterval(-30 * 86_400)
        let older = exactly.addingTimeInterval(-0.001)
        let list = [(BackupName.make(exactly), exactly), (BackupName.make(older), older)]
        #expect(kept(.default, list) == [BackupName.make(exactly)])
        // Backups stopped 90 days ago: the newest still stays.
        let stale = backups([90 * 24, 91 * 24])
        #expect(kept(.default, stale) == [stale[0].name])
        #expect(RetentionPolicy.default.apply(to: stale, now: now)[0].reasons == ["newest"])
    }

    @Test("empty backups never push out the newest backup that holds data; they still age out")
    func emptyBackups() {
        // Daily empty backups for 40 days after the last real one, 60 days ago.
        let list = backups([0, 24, 48] + [60 * 24, 61 * 24])
        let empty = Set(list.prefix(3).map(\.name))
        let decisions = RetentionPolicy.default.apply(to: list, now: now, empty: empty)
        #expect(Set(decisions.filter(\.keep).map(\.name)) == Set(list.prefix(4).map(\.name)))
        #expect(decisions[3].reasons == ["newest holding data"])
        // With data in the newest, nothing extra is kept.
        #expect(kept(.default, list) == Set(list.prefix(3).map(\.name)))
    }

    @Test("keep-daily takes the newest backup of each UTC day, across gaps, counting days that have backups")
    func daily() {
        // Hours before 2025-11-30T12:00Z: 1 and 11 are the same day; 13 is 23:00 the day before;
        // 36 is 2025-11-29T00:00 exactly; 100 and 101 are days with a gap before them.
        let list = backups([1, 11, 13, 36, 100, 101])
        let policy = RetentionPolicy(keepDaily: 3)
        #expect(kept(policy, list) == [list[0].name, list[2].name, list[4].name])
        let decisions = policy.apply(to: list, now: now)
        #expect(decisions.first { $0.name == list[2].name }?.reasons == ["daily 2025-11-29"])
    }

    @Test("keep-weekly uses ISO weeks and keep-monthly calendar months, in UTC")
    func weeklyMonthly() {
        let times = [
            "2025-11-30T23-00-00-000Z", "2025-11-24T00-00-00-000Z", "2025-11-23T23-59-59-999Z",
            "2025-10-31T23-59-59-999Z",
            "2025-10-01T00-00-00-000Z", "2025-09-15T00-00-00-000Z",
        ]
        let list = times.map { ($0, BackupName.date(of: $0)!) }
        // 2025-11-24 is a Monday: the 23rd belongs to the week before.
        #expect(kept(RetentionPolicy(keepWeekly: 2), list) == ["2025-11-30T23-00-00-000Z", "2025-11-23T23-59-59-999Z"])
        #expect(
            kept(RetentionPolicy(keepMonthly: 3), list) == [
                "2025-11-30T23-00-00-000Z", "2025-10-31T23-59-59-999Z", "2025-09-15T00-00-00-000Z",
            ])
    }

    @Test("a backup kept by any rule stays; keep-last counts the newest")
    func union() {
        let list = backups([1, 50, 24 * 40, 24 * 400])
        let policy = RetentionPolicy(keepDays: 7, keepLast: 3)
        #expect(kept(policy, list) == [list[0].name, list[1].name, list[2].name])
        let reasons = policy.apply(to: list, now: now).first { $0.name == list[0].name }?.reasons
        #expect(reasons == ["newest", "within 7 days", "last 3"])
    }

    @Test("no backups, no decisions")
    func empty() {
        #expect(RetentionPolicy.default.apply(to: [], now: now).isEmpty)
    }
}
