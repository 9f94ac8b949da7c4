/// The manifest of a backup: what was backed up, from where, and how to check and restore it.
///
/// Stored as `manifest.json` in the backup folder with snake_case keys; written last, so a
/// folder without one is not a backup. docs/FORMAT.md is the reference for every field.
public struct Manifest: Codable, Sendable, Equatable {
    public static let formatName = "supabackup"
    /// The version unencrypted archives are written with (readers older than encryption read them).
    public static let plainFormatVersion = 1
    /// Encrypted archives: `manifest.json` is a `SealedManifest`, this manifest is `manifest.age`.
    public static let encryptedFormatVersion = 2
    /// The highest version this supabackup reads.
    public static let currentFormatVersion = 2

    public var format: String
    public var formatVersion: Int
    public var toolVersion: String
    /// The backup's folder name, its UTC start time (`2025-11-30T12-00-00-000Z`).
    public var name: String
    /// ISO 8601 UTC timestamps with milliseconds.
    public var startedAt: String
    public var finishedAt: String
    /// `direct` (libpq) or `rest` (PostgREST).
    public var mode: BackupMode
    public var source: Source
    public var serverVersion: String
    /// True when every table was read in one snapshot.
    public var consistentSnapshot: Bool
    public var schemas: [String]
    public var tables: [Table]
    /// Tables parents-first, as the backup computed it; restore recomputes it from `tables`.
    public var restoreOrder: [TableName]
    public var sequences: [Sequence]
    public var warnings: [String]
    /// False when the source could not see every foreign key (REST: only single-column keys
    /// within a schema). Absent means complete.
    public var foreignKeysComplete: Bool?
    /// False when the auth users came from the Auth admin API, which never returns password
    /// hashes: restored users must reset their passwords. Absent otherwise.
    public var authPasswordHashes: Bool?
    /// `schema.sql`, the DDL of what was backed up (direct mode only); `schema.sql.age` when encrypted.
    public var schemaFile: FileEntry?
    /// `age-encryption.org/v1` when every file is an age file; absent for unencrypted archives.
    public var encryption: String? = nil
    /// Storage buckets and objects (`--with-storage`); absent otherwise.
    public var storage: StorageSection? = nil

    public var isEncrypted: Bool { encryption != nil }

    public struct FileEntry: Codable, Sendable, Equatable {
        /// Path relative to the backup folder.
        public var file: String
        /// Size and SHA-256 of the stored bytes (for encrypted archives: of the age file).
        public var bytes: Int64
        public var sha256: String

        public init(file: String, bytes: Int64, sha256: String) {
            self.file = file
            self.bytes = bytes
            self.sha256 = sha256
        }
    }

    public struct Source: Codable, Sendable, Equatable {
        public var host: String
        public var port: String
        public var database: String
        public var user: String
    }

    public struct Table: Codable, Sendable, Equatable {
        public var schema: String
        public var name: String
        /// `table` or `partitioned`.
        public var kind: String
        /// Path of the data file relative to the backup folder (`data/<safe name>.ndjson.zst`).
        public var file: String
        public var columns: [Column]
        public var primaryKey: [String]
        public var foreignKeys: [ForeignKey]
        public var rows: Int64
        /// Size of the stored file in bytes (compressed, and encrypted when the archive is).
        public var bytes: Int64
        /// SHA-256 of the stored file, lowercase hex.
        public var sha256: String
        /// When the table was read in block ranges by several connections: the file is these
        /// zstd frames back to back, in order. Absent when the file is one frame.
        public var parts: [Part]? = nil

        public var tableName: TableName { TableName(schema: schema, name: name) }
    }

    /// One zstd frame of a data file: `rows` lines in `bytes` compressed bytes.
    public struct Part: Codable, Sendable, Equatable {
        public var rows: Int64
        public var bytes: Int64
    }

    public struct Column: Codable, Sendable, Equatable {
        public var name: String
        /// The type as `format_type` renders it, schema-qualified where not in pg_catalog.
        public var type: String
        public var nullable: Bool
        /// `stored` for generated columns.
        public var generated: String?
        /// `always` or `by_default` for identity columns.
        public var identity: String?
        /// How the value is written in each NDJSON line.
        public var encoding: ValueEncoding
    }

    public struct ForeignKey: Codable, Sendable, Equatable {
        public var name: String
        public var columns: [String]
        public var referencedSchema: String
        public var referencedTable: String
        public var referencedColumns: [String]
        public var deferrable: Bool

        public var referenced: TableName { TableName(schema: referencedSchema, name: referencedTable) }
    }

    public struct Sequence: Codable, Sendable, Equatable {
        public var schema: String
        public var name: String
        public var lastValue: Int64
        public var isCalled: Bool
        public var increment: Int64
        /// The columns whose default draws from this sequence (serial, identity, `nextval`).
        public var feeds: [ColumnRef]
    }

    public struct ColumnRef: Codable, Sendable, Equatable, Hashable {
        public var schema: String
        public var table: String
        public var column: String

        public var tableName: TableName { TableName(schema: schema, name: table) }
    }

    public func table(_ name: TableName) -> Table? {
        tables.first { $0.schema == name.schema && $0.name == name.name }
    }

    public var totalRows: Int64 { tables.reduce(0) { $0 + $1.rows } }
    public var totalBytes: Int64 { tables.reduce(0) { $0 + $1.bytes } }
}

/// How a column's value is written in an NDJSON line. See docs/FORMAT.md.
public enum ValueEncoding: String, Codable, Sendable, Equatable {
    /// PostgreSQL's `to_json` of the value; SQL NULL is `null`.
    case json
    /// jsonb: the value itself; SQL NULL leaves the key out, so a JSON `null` stays distinct.
    case jsonOmitNull = "json_omit_null"
    /// A JSON string holding PostgreSQL's text output of the value (json, and arrays of json/jsonb,
    /// whose `to_json` rendering is not line-safe or not lossless); SQL NULL is `null`.
    case text
}

/// A schema-qualified table name.
public struct TableName: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var schema: String
    public var name: String

    public init(schema: String, name: String) {
        self.schema = schema
        self.name = name
    }

    /// `schema.name`, each part double-quoted only when it needs to be.
    public var description: String { SQL.displayIdentifier(schema) + "." + SQL.displayIdentifier(name) }
    /// `"schema"."name"` for SQL.
    public var quoted: String { SQL.quoteIdentifier(schema) + "." + SQL.quoteIdentifier(name) }

    public static func < (lhs: TableName, rhs: TableName) -> Bool {
        (lhs.schema, lhs.name) < (rhs.schema, rhs.name)
    }
}

/// How a backup read its rows; both give the same data files.
public enum BackupMode: String, Codable, Sendable {
    /// libpq, one snapshot.
    case direct
    /// PostgREST pages.
    case rest
}
