// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "supabackup",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "supabackup", targets: ["supabackup"]),
        .library(name: "SupabackupKit", targets: ["SupabackupKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibpq",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]
        ),
        .target(
            name: "SupabackupKit",
            dependencies: [
                "CLibpq",
                "CZstd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "supabackup",
            dependencies: [
                "SupabackupKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TestSupport",
            dependencies: ["SupabackupKit", .product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "SupabackupKitTests",
            dependencies: ["SupabackupKit", "TestSupport"]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["SupabackupKit", "TestSupport"]
        ),
    ]
)
