import Foundation

/// What PostgREST shows of a schema, for the REST backup source and the REST restore target
/// alike: the OpenAPI document, profile headers, and the catalog view a restore plan needs.
enum PostgRESTCatalog {
    /// `Accept-Profile` (reads) or `Content-Profile` (writes) for a schema.
    static func schemaHeaders(_ schema: String, write: Bool = false) -> [(String, String)] {
        [(write ? "Content-Profile" : "Accept-Profile", schema)]
    }

    /// The OpenAPI document of one schema; an unexposed schema is an error that names it.
    static func discover(_ schema: String, client: PostgRESTClient) throws -> OpenAPISchema {
        do {
            let response = try client.get(
                "", headers: [("Accept", "application/openapi+json")] + schemaHeaders(schema))
            return try OpenAPISchema(document: response.body)
        } catch var error as RESTError where error.code == "PGRST106" {
            error.message = "schema \(SQL.displayIdentifier(schema)) is not exposed by the REST API (\(error.message))"
            throw error
        }
    }

    /// A table as a restore plan sees it. REST cannot see types' oids, generated or identity
    /// columns, unique keys or foreign keys: those stay empty and the REST target copes.
    static func catalogTable(_ table: OpenAPISchema.Table, schema: String) -> CatalogTable {
        CatalogTable(
            oid: 0, schema: schema, name: table.name, kind: .table, estimatedRows: 0,
            columns: table.columns.map { column in
                CatalogColumn(
                    name: column.name, type: column.type, typeOid: 0, nullable: !column.required, generated: .none,
                    identity: .none, hasDefault: column.hasDefault || column.primaryKey)
            },
            primaryKey: table.primaryKey, uniqueKeys: nil, foreignKeys: [])
    }
}
