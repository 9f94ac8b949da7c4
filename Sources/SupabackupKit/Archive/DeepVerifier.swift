/// Checks relationships inside an archive, without a database: primary keys unique within each
/// table, and every foreign key between backed-up tables resolving to a row.
///
/// Keys are compared as the bytes the archive holds (one rendering per type), hashed to 128
/// bits, so memory grows by about 40 bytes per key rather than by the rows' size.
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
    var keySets: [String: Set<Key>] = [:]
    func setKey(_ table: TableName, _ columns: [String]) -> String {
      "\(table)\u{0}\(columns.joined(separator: "\u{0}"))"
    }

    // Every key some foreign key references, and every primary key.
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
      guard let keys = wanted[table.tableName] else { continue }
      for columns in keys {
        var set = Set<Key>()
        var duplicates = 0
        try forEachKey(archive, table, columns) { key, text in
          guard let key else { return }
          if !set.insert(key).inserted && columns == table.primaryKey {
            duplicates += 1
            if duplicates <= limit {
              findings.append(
                Finding(
                  table: table.tableName.description, kind: "duplicate-key",
                  message:
                    "primary key (\(columns.joined(separator: ", ")))=(\(text)) occurs more than once"
                ))
            }
          }
        }
        keySets[setKey(table.tableName, columns)] = set
      }
    }
    for table in archive.manifest.tables {
      for fk in table.foreignKeys {
        guard let parents = keySets[setKey(fk.referenced, fk.referencedColumns)] else { continue }
        var orphans = 0
        try forEachKey(archive, table, fk.columns) { key, text in
          guard let key, !parents.contains(key) else { return }
          orphans += 1
          if orphans <= limit {
            findings.append(
              Finding(
                table: table.tableName.description, kind: "orphan",
                message:
                  "(\(fk.columns.joined(separator: ", ")))=(\(text)) has no row in \(fk.referenced) (foreign key \(fk.name))"
              ))
          }
        }
      }
    }
    return findings
  }

  struct Key: Hashable {
    var a: UInt64
    var b: UInt64
  }

  /// Calls `body` with each row's key hash (nil when a key column is NULL) and its text.
  private static func forEachKey(
    _ archive: BackupArchive, _ table: Manifest.Table, _ columns: [String],
    _ body: (Key?, String) -> Void
  ) throws {
    var scanner = LineScanner()
    try withoutActuallyEscaping(body) { body in
      _ = try ArchiveVerifier.checkDataFile(archive, table, validateLines: false) { chunk in
        scanner.feed(chunk) { line in
          guard let members = JSONScanner.members(line, in: 0..<line.count) else {
            return body(nil, "")
          }
          var values: [UnsafeRawBufferPointer] = []
          for column in columns {
            guard
              let member = members.first(where: {
                JSONScanner.decodeString(UnsafeRawBufferPointer(rebasing: line[$0.key])) == column
              })
            else { return body(nil, "") }
            let value = UnsafeRawBufferPointer(rebasing: line[member.value])
            if value.count == 4 && value.first == UInt8(ascii: "n") { return body(nil, "") }
            values.append(value)
          }
          var key = Key(a: 0xcbf2_9ce4_8422_2325, b: 0x8422_2325_cbf2_9ce4)
          for value in values {
            for byte in value {
              key.a = (key.a ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
              key.b = (key.b ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 &+ 0x9E37_79B9
            }
            key.a = (key.a ^ 0x1F) &* 0x0000_0100_0000_01B3
            key.b = (key.b ^ 0x1F) &* 0x0000_0100_0000_01B3 &+ 0x9E37_79B9
          }
          let text = values.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ", ")
          body(key, text)
        }
      }
    }
  }
}

extension BackupArchive {
  /// Streams a table's decompressed NDJSON, checking it against the manifest as it goes.
  public func readRows(of table: Manifest.Table, _ body: (UnsafeRawBufferPointer) throws -> Void)
    throws
  {
    try ArchiveVerifier.checkChecksums(self, tables: [table])
    try withoutActuallyEscaping(body) { body in
      _ = try ArchiveVerifier.checkDataFile(self, table, validateLines: false, consumer: body)
    }
  }
}
