/// Checks relationships inside an archive, without a database: primary keys unique within each
/// table, and every foreign key between backed-up tables resolving to a row.
///
/// Keys are compared as the bytes the archive holds (one rendering per type), hashed to 128
/// bits, so memory grows by about 40 bytes per key rather than by the rows' size. Each table is
/// read at most twice: once for the keys others reference, once for its own foreign keys.
public enum DeepVerifier {
    public struct Finding: Sendable, Encodable {
        public var table: String
        /// `duplicate-key` or `orphan`.
        public var kind: String
        public var message: String
    }

    /// The first offenders per check (at most `limit` each).
    public static func check(_ archive: BackupArchive, limit: Int = 5) throws -> [Finding] {
        var findings: [Finding] = []
        var keySets: [TableName: [[String]: Set<Key>]] = [:]

        // Pass 1: every primary key, and every key some foreign key references.
        var wanted: [TableName: Set<[String]>] = [:]
        for table in archive.manifest.tables where !table.primaryKey.isEmpty {
            wanted[table.tableName, default: []].insert(table.primaryKey)
        }
        for table in archive.manifest.tables {
            for fk in table.foreignKeys where archive.manifest.table(fk.referenced) != nil {
                wanted[fk.referenced, default: []].insert(fk.referencedColumns)
            }
        }
        for table in archive.manifest.tables {
            guard let keys = wanted[table.tableName].map(Array.init) else { continue }
            var sets = Array(repeating: Set<Key>(), count: keys.count)
            var duplicates = 0
            try forEachKey(archive, table, keys) { index, key, text in
                guard !sets[index].insert(key).inserted, keys[index] == table.primaryKey else { return }
                duplicates += 1
                if duplicates <= limit {
                    findings.append(
                        Finding(
                            table: table.tableName.description, kind: "duplicate-key",
                            message:
                                "primary key (\(keys[index].joined(separator: ", ")))=(\(text())) occurs more than once"
                        ))
                }
            }
            keySets[table.tableName] = Dictionary(uniqueKeysWithValues: zip(keys, sets))
        }

        // Pass 2: every foreign key between backed-up tables resolves.
        for table in archive.manifest.tables {
            let checked = table.foreignKeys.filter { keySets[$0.referenced]?[$0.referencedColumns] != nil }
            guard !checked.isEmpty else { continue }
            var orphans = Array(repeating: 0, count: checked.count)
            try forEachKey(archive, table, checked.map(\.columns)) { index, key, text in
                let fk = checked[index]
                guard keySets[fk.referenced]?[fk.referencedColumns]?.contains(key) == false else { return }
                orphans[index] += 1
                if orphans[index] <= limit {
                    findings.append(
                        Finding(
                            table: table.tableName.description, kind: "orphan",
                            message:
                                "(\(fk.columns.joined(separator: ", ")))=(\(text())) has no row in \(fk.referenced) (foreign key \(fk.name))"
                        ))
                }
            }
        }
        return findings
    }

    struct Key: Hashable {
        var a: UInt64
        var b: UInt64
    }

    /// Reads the table once and calls `body` for each row and each key column list whose
    /// columns are all non-NULL, with the list's index, the key's hash, and (on demand) its text.
    private static func forEachKey(
        _ archive: BackupArchive, _ table: Manifest.Table, _ keys: [[String]],
        _ body: (Int, Key, () -> String) -> Void
    ) throws {
        let needed = Set(keys.joined())
        var scanner = LineScanner()
        try withoutActuallyEscaping(body) { body in
            _ = try ArchiveVerifier.checkDataFile(archive, table, validateLines: false) { chunk in
                scanner.feed(chunk) { line in
                    guard let members = JSONScanner.members(line, in: 0..<line.count) else { return }
                    // Each key name is decoded once per row, whatever the number of key lists.
                    var values: [String: UnsafeRawBufferPointer] = [:]
                    for member in members {
                        guard let name = JSONScanner.decodeString(UnsafeRawBufferPointer(rebasing: line[member.key])),
                            needed.contains(name)
                        else { continue }
                        let value = UnsafeRawBufferPointer(rebasing: line[member.value])
                        if !(value.count == 4 && value.first == UInt8(ascii: "n")) { values[name] = value }
                    }
                    for (index, columns) in keys.enumerated() {
                        let parts = columns.compactMap { values[$0] }
                        guard parts.count == columns.count else { continue }
                        body(index, hash(parts)) {
                            parts.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ", ")
                        }
                    }
                }
            }
        }
    }

    /// Two FNV-1a variants over the values, with a separator after each.
    private static func hash(_ values: [UnsafeRawBufferPointer]) -> Key {
        var key = Key(a: 0xcbf2_9ce4_8422_2325, b: 0x8422_2325_cbf2_9ce4)
        for value in values {
            for byte in value {
                key.a = (key.a ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
                key.b = (key.b ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 &+ 0x9E37_79B9
            }
            key.a = (key.a ^ 0x1F) &* 0x0000_0100_0000_01B3
            key.b = (key.b ^ 0x1F) &* 0x0000_0100_0000_01B3 &+ 0x9E37_79B9
        }
        return key
    }
}

extension BackupArchive {
    /// Streams a table's decompressed NDJSON, checking it against the manifest as it goes.
    public func readRows(of table: Manifest.Table, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try ArchiveVerifier.checkChecksums(self, tables: [table])
        try withoutActuallyEscaping(body) { body in
            _ = try ArchiveVerifier.checkDataFile(self, table, validateLines: false, consumer: body)
        }
    }
}
