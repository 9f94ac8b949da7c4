import Foundation
import Testing

@testable import SupabackupKit

@Suite("Restore plan")
struct RestorePlanTests {
    /// A target table as the catalog query would describe it.
    static func target(
        _ name: String, columns: [(String, String, nullable: Bool, hasDefault: Bool)], primaryKey: [String]? = nil,
        unique: [[String]]? = nil, foreignKeys: [Manifest.ForeignKey] = []
    ) throws -> CatalogTable {
        let object: [String: Any] = [
            "oid": 1, "schema": "public", "name": name, "kind": "r", "estimated_rows": 0,
            "columns": columns.map { column in
                [
                    "name": column.0, "type": column.1, "type_oid": 23, "nullable": column.nullable, "generated": "",
                    "identity": "", "has_default": column.hasDefault,
                ] as [String: Any]
            },
            "primary_key": primaryKey as Any? ?? NSNull(), "unique_keys": unique as Any? ?? NSNull(),
            "foreign_keys": try foreignKeys.map { fk in
                try JSONSerialization.jsonObject(
                    with: { () -> Data in
                        let encoder = JSONEncoder()
                        encoder.keyEncodingStrategy = .convertToSnakeCase
                        return try encoder.encode(fk)
                    }())
            },
        ]
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(CatalogTable.self, from: JSONSerialization.data(withJSONObject: object))
    }

    static func backedUp(
        _ name: String, columns: [String], primaryKey: [String] = [], foreignKeys: [Manifest.ForeignKey] = []
    )
        -> Manifest.Table
    {
        Manifest.Table(
            schema: "public", name: name, kind: "table", file: "data/public.\(name).ndjson.zst",
            columns: columns.map {
                .init(name: $0, type: "integer", nullable: true, generated: nil, identity: nil, encoding: .json)
            },
            primaryKey: primaryKey, foreignKeys: foreignKeys, rows: 3, bytes: 1,
            sha256: String(repeating: "0", count: 64))
    }

    @Test("the upsert key is the primary key, else a non-null unique key, else none")
    func keys() throws {
        var manifest = ManifestTests.sample()
        manifest.tables = [
            Self.backedUp("p", columns: ["id", "v"]), Self.backedUp("u", columns: ["id", "v"]),
            Self.backedUp("n", columns: ["id", "v"]),
        ]
        let target = [
            try Self.target(
                "p", columns: [("id", "integer", false, false), ("v", "integer", true, false)], primaryKey: ["id"]),
            try Self.target(
                "u", columns: [("id", "integer", false, false), ("v", "integer", true, false)], unique: [["v"], ["id"]]),
            try Self.target(
                "n", columns: [("id", "integer", true, false), ("v", "integer", true, false)], unique: [["id"]]),
        ]
        let plan = try RestorePlan(manifest: manifest, tables: manifest.tables, target: target, disableTriggers: false)
        let keys = Dictionary(uniqueKeysWithValues: plan.steps.map { ($0.table.name, $0.conflictKey) })
        #expect(keys == ["p": ["id"], "u": ["id"], "n": []])
        #expect(plan.warnings.contains { $0.contains("public.n") && $0.contains("inserted, not upserted") })
    }

    @Test("missing tables, missing columns and unfillable NOT NULL columns are all reported together")
    func mismatches() throws {
        var manifest = ManifestTests.sample()
        manifest.tables = [
            Self.backedUp("a", columns: ["id", "gone"]), Self.backedUp("b", columns: ["id"]),
            Self.backedUp("c", columns: ["id"]),
        ]
        let target = [
            try Self.target("a", columns: [("id", "integer", false, false)]),
            try Self.target(
                "b",
                columns: [("id", "integer", false, false), ("must", "text", false, false), ("ok", "text", false, true)]),
        ]
        #expect {
            try RestorePlan(manifest: manifest, tables: manifest.tables, target: target, disableTriggers: false)
        } throws: { error in
            guard let problems = (error as? RestoreValidationError)?.problems, problems.count == 3 else { return false }
            return problems[0].contains("gone") && problems[1].contains("must") && !problems[1].contains("ok")
                && problems[2].contains("public.c")
        }
    }

    @Test("deferrable foreign keys do not constrain the order; others do, and their cycles are reported")
    func cycles() throws {
        func fk(_ name: String, to table: String, deferrable: Bool) -> Manifest.ForeignKey {
            .init(
                name: name, columns: ["ref"], referencedSchema: "public", referencedTable: table,
                referencedColumns: ["id"], deferrable: deferrable)
        }
        var manifest = ManifestTests.sample()
        manifest.tables = [
            Self.backedUp("a", columns: ["id", "ref"], foreignKeys: [fk("a_b", to: "b", deferrable: true)]),
            Self.backedUp("b", columns: ["id", "ref"], foreignKeys: [fk("b_a", to: "a", deferrable: false)]),
        ]
        let columns = [
            ("id", "integer", nullable: false, hasDefault: false),
            ("ref", "integer", nullable: true, hasDefault: false),
        ]
        let deferrableTarget = [
            try Self.target(
                "a", columns: columns, primaryKey: ["id"], foreignKeys: [fk("a_b", to: "b", deferrable: true)]),
            try Self.target(
                "b", columns: columns, primaryKey: ["id"], foreignKeys: [fk("b_a", to: "a", deferrable: false)]),
        ]
        let plan = try RestorePlan(
            manifest: manifest, tables: manifest.tables, target: deferrableTarget, disableTriggers: false)
        #expect(plan.steps.map(\.table.name) == ["a", "b"])
        #expect(plan.blockedCycles.isEmpty)

        let strictTarget = [
            try Self.target(
                "a", columns: columns, primaryKey: ["id"], foreignKeys: [fk("a_b", to: "b", deferrable: false)]),
            deferrableTarget[1],
        ]
        let strict = try RestorePlan(
            manifest: manifest, tables: manifest.tables, target: strictTarget, disableTriggers: false)
        #expect(strict.blockedCycles.map { $0.map(\.name) } == [["a", "b"]])
        #expect(strict.warnings.contains { $0.contains("DEFERRABLE") })
        let unchecked = try RestorePlan(
            manifest: manifest, tables: manifest.tables, target: strictTarget, disableTriggers: true)
        #expect(unchecked.blockedCycles.isEmpty)
    }
}
