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
/// policy does not keep (never the newest) and unfinished backups no process holds that are older
/// than `staleAfter`; anything else in the folder is left alone.
public enum Pruner {
    public static func prune(
        in directory: String, policy: RetentionPolicy, dryRun: Bool, now: Date = Date(), staleAfter: TimeInterval = 3600
    ) throws -> PruneResult {
        try prune(
            in: try StorageLocation.open(directory), policy: policy, dryRun: dryRun, now: now, staleAfter: staleAfter)
    }

    public static func prune(
        in storage: any BackupStorage, policy: RetentionPolicy, dryRun: Bool, now: Date = Date(),
        staleAfter: TimeInterval = 3600
    ) throws -> PruneResult {
        guard let root = try storage.entry(""), root.isFolder else {
            throw ArchiveError(.notFound, "\(storage.location) is not a backups folder")
        }
        // Two prunes never run at once where the storage can lock.
        let lock = dryRun ? nil : try storage.maintenanceLock()
        defer { lock?.release() }
        let backups = try BackupListing.list(in: storage)
        // A backup whose manifest cannot be read counts as holding data.
        let empty = Set(backups.filter { $0.tables == 0 && ($0.objects ?? 0) == 0 }.map(\.name))
        let decisions = policy.apply(to: backups.map { ($0.name, $0.time) }, now: now, empty: empty)
        var result = PruneResult(
            dryRun: dryRun, backups: decisions.map { .init(name: $0.name, keep: $0.keep, reasons: $0.reasons) },
            stalePartials: [], activePartials: [])
        for decision in decisions where !decision.keep && !dryRun {
            try remove(decision.name, from: storage)
        }
        for unfinished in try storage.unfinishedBackups().sorted(by: { $0.label < $1.label }) {
            if unfinished.held || now.timeIntervalSince(unfinished.modified ?? now) < staleAfter {
                result.activePartials.append(unfinished.label)
                continue
            }
            result.stalePartials.append(unfinished.label)
            if !dryRun { try storage.removeUnfinished(unfinished) }
        }
        return result
    }

    /// The manifest goes first: an interrupted removal never leaves a half-deleted backup that
    /// looks complete.
    private static func remove(_ name: String, from storage: any BackupStorage) throws {
        try storage.delete(name + "/" + BackupArchive.manifestFile)
        try storage.deleteAll(under: name + "/")
    }
}
