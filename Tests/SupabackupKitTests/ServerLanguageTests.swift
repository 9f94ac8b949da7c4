import Testing

@testable import SupabackupKit

/// Decisions taken from server errors must not depend on lc_messages: the texts below are the
/// server's own English and German (postgres-15.mo) renderings of the same errors.
@Suite("Server errors in any language")
struct ServerLanguageTests {
    @Test(
        "the key columns of a foreign-key violation",
        arguments: [
            "Key (owner_id)=(8d7c2025-14da-4f63-b74e-48519e31865f) is not present in table \"users\".",
            "Schlüssel (owner_id)=(8d7c2025-14da-4f63-b74e-48519e31865f) ist nicht in Tabelle »users« vorhanden.",
        ])
    func keyColumns(_ detail: String) {
        #expect(RESTRestoreDestination.keyColumns(in: detail) == ["owner_id"])
    }

    @Test("composite and quoted key columns")
    func compositeKey() {
        #expect(
            RESTRestoreDestination.keyColumns(in: "Schlüssel (a, \"B c\")=(1, 2) ist nicht in Tabelle »t« vorhanden.")
                == ["a", "B c"])
        #expect(RESTRestoreDestination.keyColumns(in: "Der Schlüssel ist nicht in Tabelle »t« vorhanden.").isEmpty)
    }

    @Test(
        "the column a generated-column error is about",
        arguments: [
            ("cannot insert a non-DEFAULT value into column \"total\"", "Column \"total\" is a generated column."),
            ("kann keinen Wert außer DEFAULT in Spalte »total« einfügen", "Spalte »total« ist eine generierte Spalte."),
        ])
    func generatedColumn(_ message: String, _ details: String) {
        let error = RESTError(status: 400, code: "428C9", message: message, details: details, advice: nil, table: nil)
        // "to" and "DEFAULT" appear in the texts too, but not between quote marks.
        #expect(
            RESTRestoreDestination.generatedColumn(in: error, among: ["id", "to", "DEFAULT", "total", "tot"]) == "total"
        )
        #expect(RESTRestoreDestination.generatedColumn(in: error, among: ["id", "price"]) == nil)
    }
}
