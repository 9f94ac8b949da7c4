import ArgumentParser
import Foundation
import SupabackupKit

/// Retention options shared by `prune` and `backup --prune`.
struct RetentionOptions: ParsableArguments {
    @Option(
        name: .customLong("keep-days"), help: "Keep backups younger than N days (default when no rule is given: 30).")
    var keepDays: Int?
    @Option(name: .customLong("keep-last"), help: "Keep the N newest backups.")
    var keepLast: Int?
    @Option(name: .customLong("keep-daily"), help: "Keep the newest backup of each of the last N days (UTC).")
    var keepDaily: Int?
    @Option(name: .customLong("keep-weekly"), help: "Keep the newest backup of each of the last N ISO weeks.")
    var keepWeekly: Int?
    @Option(name: .customLong("keep-monthly"), help: "Keep the newest backup of each of the last N months.")
    var keepMonthly: Int?

    func validate() throws {
        for value in [keepDays, keepLast, keepDaily, keepWeekly, keepMonthly].compactMap({ $0 }) where value < 0 {
            throw ValidationError("keep values must not be negative")
        }
    }

    /// The rules given, none: empty.
    var given: RetentionPolicy {
        RetentionPolicy(
            keepDays: keepDays, keepLast: keepLast, keepDaily: keepDaily, keepWeekly: keepWeekly,
            keepMonthly: keepMonthly)
    }

    /// The rules given, or keep 30 days (what `backup --prune` keeps without rules).
    var policy: RetentionPolicy { given.isEmpty ? .default : given }
}

struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove backups the retention rules do not keep (restic forget semantics).",
        discussion: """
            A backup kept by any rule stays; the newest backup, and the newest that holds data, always stay. \
            Without a rule it removes nothing (like restic forget): give one, e.g. --keep-days 30; with \
            --dry-run and no rule it shows what --keep-days 30 would remove. \
            Leftovers of interrupted backups are removed once no process holds them and they are over an \
            hour old; nothing else in DIR is touched.
            """)

    @OptionGroup var location: LocationOptions

    @OptionGroup var storage: StorageOptions

    @OptionGroup var retention: RetentionOptions

    @Flag(name: .customLong("dry-run"), help: "Show what would be removed; remove nothing.")
    var dryRun = false

    @Flag(help: "One JSON object on stdout.")
    var json = false

    func run() throws {
        try storage.apply()
        try Terminal.run {
            let directory = try location.existing()
            // Deleting backups is never a default: restic's forget refuses without a policy too.
            guard !retention.given.isEmpty || dryRun else {
                throw UsageError(
                    "prune needs a rule, e.g. --keep-days 30 (what backup --prune keeps by default) or --keep-last N; nothing was removed (--dry-run shows what --keep-days 30 would remove)"
                )
            }
            let result = try Pruner.prune(in: directory, policy: retention.policy, dryRun: dryRun)
            if json {
                try JSONOutput.print(result)
            } else {
                Self.render(result)
            }
        }
    }

    static func render(_ result: PruneResult) {
        let verb = result.dryRun ? "would remove" : "removed"
        for entry in result.backups {
            if entry.keep {
                print("keep    \(entry.name)  (\(entry.reasons.joined(separator: ", ")))")
            } else {
                print("\(result.dryRun ? "would remove" : "remove ") \(entry.name)")
            }
        }
        for partial in result.stalePartials { print("\(verb) leftover of an interrupted backup: \(partial)") }
        for partial in result.activePartials { print("left alone (in progress or recent): \(partial)") }
        print("\(result.backups.filter(\.keep).count) kept, \(result.removed.count) \(verb)")
    }
}

enum JSONOutput {
    static func print<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        Swift.print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}
