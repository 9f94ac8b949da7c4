import Foundation
import SupabackupKit
import Testing

@Suite("REST URLs")
struct RESTSettingsTests {
    static let key = try! APIKey("test-key")

    @Test(
        "a project URL, whatever the host, puts PostgREST at /rest/v1 and Auth at /auth/v1",
        arguments: [
            ("https://abcdefgh.supabase.co", "https://abcdefgh.supabase.co"),
            ("https://abcdefgh.supabase.co/", "https://abcdefgh.supabase.co"),
            ("http://127.0.0.1:54321", "http://127.0.0.1:54321"),
            ("https://supabase.example.com/", "https://supabase.example.com"),
            ("https://example.com/supabase", "https://example.com/supabase"),
        ])
    func projectURL(_ url: String, _ project: String) throws {
        let settings = try RESTSettings(url: url, key: Self.key)
        #expect(settings.root.absoluteString == project + "/rest/v1")
        #expect(settings.authRoot?.absoluteString == project + "/auth/v1")
        // A bare PostgREST (no gateway) at the URL itself is tried when /rest/v1 is 404.
        #expect(settings.fallbackRoot?.absoluteString == project)
    }

    @Test(
        "a URL ending in /rest/v1 is the PostgREST root, used as given",
        arguments: [
            "http://127.0.0.1:54321/rest/v1", "http://127.0.0.1:54321/rest/v1/", "https://abcdefgh.supabase.co/rest/v1",
        ])
    func restRoot(_ url: String) throws {
        let settings = try RESTSettings(url: url, key: Self.key)
        #expect(settings.root.absoluteString.hasSuffix("/rest/v1"))
        #expect(!settings.root.absoluteString.hasSuffix("/"))
        #expect(settings.fallbackRoot == nil)
        #expect(settings.authRoot?.absoluteString.hasSuffix("/auth/v1") == true)
    }

    @Test(
        "URLs that cannot name a project are usage errors",
        arguments: [
            "ftp://host", "not a url", "https://user:pw@host", "https://host/?apikey=x", "",
        ])
    func invalid(_ url: String) {
        #expect(throws: UsageError.self) { try RESTSettings(url: url, key: Self.key) }
    }
}
