import Foundation

public struct PruneResult: Sendable, Encodable {
    public struct Entry: Sendable, Encodable {
        public var name: String
        public var keep: Bool
        public var reasons: [String]
    }

    public var dryRun: Bool
    /// Every complete backup, newest first, with the rules that keep it (none: removed).
    public var backups: [Entry]
    /// Leftovers of interrupted backups that were (or would be) removed.
    public var stalePartials: [String]
    /// Partial folders left alone: a running backup holds them, or they are too recent to judge.
    public var activePartials: [String]

    public var removed: [String] { backups.filter { !$0.keep }.map(\.name) }
}

/// Applies a retention policy to a backups folder. It only ever removes complete backups the
/// policy does not keep (never the newest) and partial folders no process holds that are older
/// than `staleAfter`; anything else in the folder is left alone.
public enum Pruner {
    public static func prune(
        in directory: String, policy: RetentionPolicy, dryRun: Bool, now: Date = Date(), staleAfter: TimeInterval = 3600
    ) throws -> PruneResult {
        guard FileSystem.isRealDirectory(directory) else {
            throw ArchiveError(.notFound, "\(directory) is not a backups folder")
        }
        // Two prunes never run at once on one folder (the lock is on the folder itself: no file left behind).
        let lock = dryRun ? nil : try BackupLock(path: directory)
        defer { lock?.release() }
        let backups = try BackupListing.list(in: directory)
        let decisions = policy.apply(to: backups.map { ($0.name, $0.time) }, now: now)
        var result = PruneResult(
            dryRun: dryRun, backups: decisions.map { .init(name: $0.name, keep: $0.keep, reasons: $0.reasons) },
            stalePartials: [], activePartials: [])
        for decision in decisions where !decision.keep && !dryRun {
            try remove(decision.name, in: directory)
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for entry in entries.sorted() {
            guard let name = partialName(entry), BackupName.date(of: name) != nil else { continue }
            let path = (directory as NSString).appendingPathComponent(entry)
            guard FileSystem.isRealDirectory(path) else { continue }
            let held = BackupLock.isHeld((path as NSString).appendingPathComponent(PartialBackupFolder.lockFile))
            let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? now
            if held || now.timeIntervalSince(modified) < staleAfter {
                result.activePartials.append(entry)
                continue
            }
            result.stalePartials.append(entry)
            if !dryRun { FileSystem.removeTree(path) }
        }
        return result
    }

    /// `NAME` for `.NAME.partial` and `.NAME.removing`, else nil.
    static func partialName(_ entry: String) -> String? {
        guard entry.hasPrefix(".") else { return nil }
        for suffix in [".partial", ".removing"] where entry.hasSuffix(suffix) {
            return String(entry.dropFirst().dropLast(suffix.count))
        }
        return nil
    }

    /// Renames the backup out of sight first, so a crash mid-delete never leaves a half-deleted
    /// folder that looks like a backup.
    private static func remove(_ name: String, in directory: String) throws {
        let path = (directory as NSString).appendingPathComponent(name)
        let hidden = (directory as NSString).appendingPathComponent(".\(name).removing")
        guard rename(path, hidden) == 0 else {
            throw ArchiveError(.io, "cannot remove \(path): \(errnoText())")
        }
        FileSystem.removeTree(hidden)
    }
}
