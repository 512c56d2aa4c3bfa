// swift-tools-version:6.0
import PackageDescription

/// Release numerics need AVX2/FMA code generation (see docs/PLATFORM.md):
/// Swift targets baseline SSE2 on x86_64 otherwise.
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v3", "-enforce-exclusivity=unchecked"]),
]

/// The C kernels: optimised in every configuration (debug tests run them too) for one CPU level;
/// `-mprefer-vector-width=512` keeps clang from splitting x86-64-v4 loops into 256-bit halves.
func kernelSettings(_ march: String) -> [CSetting] {
    [.unsafeFlags(["-march=\(march)", "-O3", "-mprefer-vector-width=\(march == "x86-64-v4" ? 512 : 256)"])]
}

let package = Package(
    name: "PiSSA",
    products: [
        .library(name: "PiSSAKit", targets: ["LinearAlgebra", "Formats", "Tokenizer", "Model", "Adapters", "Distributed", "Training", "Experiments"]),
        .executable(name: "pissa", targets: ["pissa"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: - System libraries
        /// OpenBLAS 0.3.34 with LAPACKE, as PyPI's scipy-openblas32 builds it (DYNAMIC_ARCH: the right
        /// kernels on every x86-64 CPU); `scripts/setup.sh` installs it and its pkg-config file.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "scipy-openblas32"),

        // MARK: - Own C kernels, one source compiled for two CPU levels (chosen by cpuid at run time)
        /// The kernel tables' interface and the CPU check; the kernels' source is in `body/`.
        .target(name: "CKernels", exclude: ["body"], cSettings: kernelSettings("x86-64-v3")),
        /// The kernels for x86-64-v3 (AVX2 + FMA).
        .target(name: "CKernelsAVX2", dependencies: ["CKernels"], publicHeadersPath: ".", cSettings: kernelSettings("x86-64-v3")),
        /// The kernels for x86-64-v4 (AVX-512 F/BW/DQ/VL), only called where the CPU has them.
        .target(name: "CKernelsAVX512", dependencies: ["CKernels"], publicHeadersPath: ".", cSettings: kernelSettings("x86-64-v4")),
        /// OpenMPI's C interface (`mpi.h`, libmpi): the transport between the ranks of an `mpirun` job.
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]
        ),

        // MARK: - Library modules (dependencies point down only)
        /// Float32 matrices, the one gemm wrapper, SVD / QR / randomized SVD, RNG, half precision,
        /// the CPU-dispatched kernels.
        .target(name: "LinearAlgebra", dependencies: ["COpenBLAS", "CKernels", "CKernelsAVX2", "CKernelsAVX512"],
                swiftSettings: numericSettings),
        /// File formats: safetensors, Hugging Face config, PEFT adapters.
        .target(name: "Formats", dependencies: ["LinearAlgebra"], swiftSettings: numericSettings),
        /// Byte-level BPE tokenizer (GGUF metadata or tokenizer.json), chat templates.
        .target(name: "Tokenizer", dependencies: ["Formats"], swiftSettings: numericSettings),
        /// Llama-family transformer: weights, layers (forward and backward), KV cache, generation.
        .target(name: "Model", dependencies: ["LinearAlgebra", "Formats", "Tokenizer"], swiftSettings: numericSettings),
        /// PiSSA / LoRA adapter initialisation and model decomposition.
        .target(name: "Adapters", dependencies: ["LinearAlgebra", "Formats", "Tokenizer", "Model"], swiftSettings: numericSettings),
        /// The ranks of an `mpirun` job (or one process): fixed-order sums, gathers, broadcasts.
        .target(name: "Distributed", dependencies: ["CMPI"], swiftSettings: numericSettings),

        /// Fine-tuning: data sets and formats, loss masking, AdamW, schedules, checkpoints, metrics.
        .target(
            name: "Training",
            dependencies: ["LinearAlgebra", "Formats", "Tokenizer", "Model", "Adapters", "Distributed"],
            swiftSettings: numericSettings
        ),

        /// Experiments built on training: `pissa compare` and its reports, the synthetic math data,
        /// the singular-value spectra.
        .target(name: "Experiments", dependencies: ["LinearAlgebra", "Formats", "Tokenizer", "Model", "Adapters", "Training"],
                swiftSettings: numericSettings),
        /// The measurements `pissa bench` runs (BENCHMARKS.md): kernels, products, attention,
        /// decompositions, training steps, the ranks' sum.
        .target(name: "Bench", dependencies: ["COpenBLAS", "LinearAlgebra", "Formats", "Tokenizer", "Model", "Adapters", "Distributed", "Training"],
                swiftSettings: numericSettings),

        // MARK: - Command-line tool
        .executableTarget(
            name: "pissa",
            dependencies: [
                "LinearAlgebra", "Formats", "Tokenizer", "Model", "Adapters", "Training", "Distributed", "Experiments", "Bench",
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
            dependencies: ["Training", "Experiments", "Model", "Adapters", "Tokenizer", "Formats", "LinearAlgebra", "TestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Tokenizer", "Formats", "LinearAlgebra", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "AdaptersTests",
            dependencies: ["Adapters", "Formats", "LinearAlgebra", "Model", "TestSupport"],
            resources: [.copy("Fixtures")]
        ),
        /// Runs the built `pissa` binary: exit codes, messages, files.
        .testTarget(name: "CLITests", dependencies: ["pissa", "TestSupport", "Formats"], exclude: ["Malformed"]),
        /// Model-level checks on real weights (needs `scripts/assets/fetch.sh`); run in release.
        .testTarget(
            name: "RealModelTests",
            dependencies: ["Training", "Experiments", "Adapters", "Formats", "Model", "Tokenizer", "LinearAlgebra", "TestSupport"],
            resources: [.copy("Fixtures")]
        ),
    ]
)
