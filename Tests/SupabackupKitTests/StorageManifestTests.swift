import Foundation
import Testing

@testable import SupabackupKit

@Suite("Storage in the manifest and on the wire")
struct StorageManifestTests {
    static func object(_ name: String, file: String = "storage/000001", bucket: String = "b") -> Manifest.StorageObject
    {
        Manifest.StorageObject(
            bucket: bucket, name: name, file: file, bytes: 3, sha256: String(repeating: "a", count: 64), size: 3,
            md5: String(repeating: "b", count: 32), contentType: "image/png", cacheControl: "max-age=60",
            userMetadata: #"{"camelCase":1,"snake_key":{"innerKey":true}}"#, etag: "\"x\"", lastModified: "now",
            reusedFrom: nil)
    }

    static func manifest(_ objects: [Manifest.StorageObject]) -> Manifest {
        var manifest = ManifestTests.sample()
        manifest.storage = Manifest.StorageSection(
            project: "https://ref.supabase.co/storage/v1", snapshot: false, listing: "list-v2",
            buckets: [
                StorageBucket(id: "b", name: "b", public: false, fileSizeLimit: 1000, allowedMimeTypes: ["image/*"])
            ],
            objects: objects, missing: [])
        return manifest
    }

    @Test("the storage section survives encoding; user metadata keys are not case-converted")
    func roundTrip() throws {
        let manifest = Self.manifest([Self.object("Foo/a b.png"), Self.object("foo/a b.png", file: "storage/000002")])
        let data = try manifest.encoded()
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#""file_size_limit" : 1000"#) && text.contains(#""reused_from""#) == false)
        let decoded = try Manifest.decode(data)
        #expect(decoded == manifest)
        #expect(decoded.storage?.objects[0].userMetadata == #"{"camelCase":1,"snake_key":{"innerKey":true}}"#)
        try decoded.validate()
    }

    @Test("files outside storage/, listed twice, unknown buckets and bad checksums are damage")
    func validation() {
        let bad: [[Manifest.StorageObject]] = [
            [Self.object("a", file: "storage/../x")], [Self.object("a", file: "data/x")],
            [Self.object("a", file: "storage/.hidden")], [Self.object("a", file: "storage/a/b")],
            [Self.object("a"), Self.object("b")],  // one file twice
            [Self.object("a"), Self.object("a", file: "storage/000002")],  // one key twice
            [Self.object("a", bucket: "other")],
        ]
        for objects in bad {
            #expect(throws: ArchiveError.self) { try Self.manifest(objects).validate() }
        }
        var badHash = Self.object("a")
        badHash.sha256 = "xyz"
        #expect(throws: ArchiveError.self) { try Self.manifest([badHash]).validate() }
    }

    @Test("object keys are percent-encoded per segment, UTF-8, slashes kept")
    func objectPaths() {
        #expect(
            StorageAPIClient.objectPath("my bucket", "a b/c?d#e%f+g;h") == "my%20bucket/a%20b/c%3Fd%23e%25f%2Bg%3Bh")
        #expect(StorageAPIClient.objectPath("b", "café/☕") == "b/caf%C3%A9/%E2%98%95")
        #expect(StorageAPIClient.objectPath("b", "x//y/") == "b/x//y/")
    }

    @Test("names no Storage write path accepts are known before the upload")
    func writableNames() {
        for name in ["a b/c.txt", "q?x=1;y=(2)&z=$@!,:'*.txt", "Foo/a", ".emptyFolderPlaceholder"] {
            #expect(StorageRestore.unwritableReason(name) == nil, "\(name)")
        }
        for name in ["café", "50%", "a#b", "x\"y", "a\\b", "tab\there", "a~b", "[x]"] {
            #expect(StorageRestore.unwritableReason(name) != nil, "\(name)")
        }
    }

    @Test("HTTP 400 is classified by the body's statusCode: 503/423/429/544 retry, 404/409/413 do not")
    func errorClassification() {
        func response(_ status: Int, _ body: String) -> RESTResponse {
            RESTResponse(status: status, headers: [:], body: Array(body.utf8))
        }
        let locked = StorageAPIClient.error(
            for: response(400, #"{"statusCode":"503","error":"LockTimeout","message":"m","code":"LockTimeout"}"#),
            path: "x", attempts: 1)
        #expect(StorageAPIClient.retryable(400, locked))
        let missing = StorageAPIClient.error(
            for: response(
                400, #"{"statusCode":"404","error":"not_found","message":"Object not found","code":"NoSuchKey"}"#),
            path: "x", attempts: 1)
        #expect(!StorageAPIClient.retryable(400, missing) && missing.isNotFound)
        let tooLarge = StorageAPIClient.error(
            for: response(400, #"{"statusCode":"413","error":"Payload too large","message":"m"}"#), path: "x",
            attempts: 1)
        #expect(!StorageAPIClient.retryable(400, tooLarge) && tooLarge.statusCode == "413")
        #expect(StorageAPIClient.retryable(544, StorageAPIError(message: "timeout")))
        let route = StorageAPIClient.error(
            for: response(
                404, #"{"message":"Route POST:/object/list-v2/x not found","error":"Not Found","statusCode":404}"#),
            path: "x", attempts: 1)
        #expect(route.statusCode == "404" && route.code == nil)
    }
}
