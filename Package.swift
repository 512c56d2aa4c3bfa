// swift-tools-version:6.0
import PackageDescription

/// Release numerics need AVX2/FMA code generation (see ../shared/PLATFORM.md):
/// Swift targets baseline SSE2 on x86_64 otherwise.
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v3", "-enforce-exclusivity=unchecked"]),
]

let package = Package(
    name: "PiSSA",
    products: [
        .library(name: "PiSSAKit", targets: ["LinearAlgebra", "Formats", "Tokenizer", "Model", "Adapters", "Training"]),
        .executable(name: "pissa", targets: ["pissa"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: - System libraries
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),

        // MARK: - Library modules (dependencies point down only)
        /// Float32 matrices, the one gemm wrapper, SVD / QR / randomized SVD, RNG, half precision.
        .target(name: "LinearAlgebra", dependencies: ["COpenBLAS"], swiftSettings: numericSettings),
        /// File formats: safetensors, Hugging Face config, PEFT adapters.
        .target(name: "Formats", dependencies: ["LinearAlgebra"], swiftSettings: numericSettings),
        /// Byte-level BPE tokenizer (GGUF metadata or tokenizer.json), chat templates.
        .target(name: "Tokenizer", dependencies: ["Formats"], swiftSettings: numericSettings),
        /// Llama-family transformer: weights, layers (forward and backward), KV cache, generation.
        .target(name: "Model", dependencies: ["LinearAlgebra", "Formats", "Tokenizer"], swiftSettings: numericSettings),
        /// PiSSA / LoRA adapter initialisation and model decomposition.
        .target(name: "Adapters", dependencies: ["LinearAlgebra", "Formats", "Tokenizer", "Model"], swiftSettings: numericSettings),

        /// Fine-tuning: data sets and formats, loss masking, AdamW, schedules, checkpoints, metrics.
        .target(
            name: "Training",
            dependencies: ["LinearAlgebra", "Formats", "Tokenizer", "Model", "Adapters"],
            swiftSettings: numericSettings
        ),

        // MARK: - Command-line tool
        .executableTarget(
            name: "pissa",
            dependencies: [
                "LinearAlgebra", "Formats", "Tokenizer", "Model", "Adapters", "Training",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: numericSettings
        ),

        // MARK: - Tests
        .target(name: "TestSupport", dependencies: ["LinearAlgebra", "Formats"], path: "Tests/TestSupport"),
        .testTarget(name: "LinearAlgebraTests", dependencies: ["LinearAlgebra", "TestSupport"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "LinearAlgebra", "TestSupport"], resources: [.copy("Malformed")]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "TrainingTests",
            dependencies: ["Training", "Model", "Adapters", "Tokenizer", "Formats", "LinearAlgebra", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Tokenizer", "Formats", "LinearAlgebra", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "AdaptersTests",
            dependencies: ["Adapters", "Formats", "LinearAlgebra", "Model", "TestSupport"],
            resources: [.copy("Fixtures")]
        ),
        /// Runs the built `pissa` binary: exit codes, messages, files.
        .testTarget(name: "CLITests", dependencies: ["pissa", "TestSupport"], exclude: ["Malformed"]),
        /// Model-level checks on real weights (needs `scripts/assets/fetch.sh`); run in release.
        .testTarget(
            name: "RealModelTests",
            dependencies: ["Training", "Adapters", "Formats", "Model", "Tokenizer", "LinearAlgebra", "TestSupport"],
            resources: [.copy("Fixtures")]
        ),
    ]
)
