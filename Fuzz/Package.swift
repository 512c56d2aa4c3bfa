// swift-tools-version:6.0
import PackageDescription

/// libFuzzer targets for every parser of the root package, kept out of its build.
///
/// Build (the flags instrument the root package's modules too):
///   swift build -c release --package-path Fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
/// Run: `scripts/fuzz.sh TARGET SECONDS` (targets: safetensors, gguf, config, tokenizer, jsonl).
let package = Package(
    name: "PiSSAFuzz",
    dependencies: [
        .package(name: "PiSSA", path: ".."),
    ],
    targets: [
        /// Writing an input to a scratch file, the fixture tokenizer.
        .target(name: "FuzzSupport", dependencies: [.product(name: "PiSSAKit", package: "PiSSA")]),
        .executableTarget(name: "FuzzSafeTensors", dependencies: ["FuzzSupport", .product(name: "PiSSAKit", package: "PiSSA")]),
        .executableTarget(name: "FuzzGGUF", dependencies: ["FuzzSupport", .product(name: "PiSSAKit", package: "PiSSA")]),
        .executableTarget(name: "FuzzConfig", dependencies: ["FuzzSupport", .product(name: "PiSSAKit", package: "PiSSA")]),
        .executableTarget(name: "FuzzTokenizer", dependencies: ["FuzzSupport", .product(name: "PiSSAKit", package: "PiSSA")]),
        .executableTarget(name: "FuzzJSONL", dependencies: ["FuzzSupport", .product(name: "PiSSAKit", package: "PiSSA")]),
    ]
)
