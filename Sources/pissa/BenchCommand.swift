import Adapters
import ArgumentParser
import Bench
import Foundation
import LinearAlgebra
import Model
import Training

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the numbers recorded in BENCHMARKS.md.",
        subcommands: [BenchInit.self, BenchForward.self, BenchTrain.self, BenchFrozen.self, BenchAttention.self, BenchNarrow.self,
                      BenchKernels.self, BenchAllReduce.self]
    )
}

/// Times the decomposition alone on weights already in memory, as PEFT's `get_peft_model` is timed.
struct BenchInit: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Time PiSSA initialisation (decomposition only; loading reported separately).")

    @Option(help: "Hugging Face model directory with *.safetensors.")
    var model: String

    @Option(help: "Comma-separated init methods to time, e.g. pissa,pissa_niter_4.")
    var modes: String = "pissa,pissa_niter_4"

    @Option(help: "Comma-separated oversampling values to time for the randomized modes.")
    var oversample: String = "\(AdapterSettings.defaultOversample)"

    @Option(help: "Comma-separated lane counts to time (each lane runs single-threaded BLAS; 1 lane = 2-thread BLAS).")
    var lanes: String = "2"

    @Option(help: "Passes per configuration; the median is reported.")
    var repeats: Int = 3

    @Option(help: "Adapter rank r.")
    var rank: Int = 16

    @Option(help: "Comma-separated module-name suffixes, or all-linear.")
    var targets: String = "all-linear"

    @Flag(help: "Print the results as JSON on standard output.")
    var json = false

    struct Output: Codable {
        var model: String
        var rank: Int
        var modules: Int
        var loadSeconds: Double
        var results: [DecompositionBenchmark.ModeResult]
    }

    @OptionGroup var kernelOptions: KernelOptions
    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        try ArgumentCheck.integer(repeats, "--repeats", in: 1...1_000_000)
        try ArgumentCheck.integer(rank, "--rank", in: 1...Int.max)
        let counts = lanes.split(separator: ",").map { Int($0) }
        guard !counts.isEmpty, counts.allSatisfy({ $0 != nil }) else { throw ValidationError("--lanes: expected comma-separated integers (got \(lanes)).") }
        for count in counts { try ArgumentCheck.lanes(count!) }
        for value in oversample.split(separator: ",") {
            guard let p = Int(value) else { throw ValidationError("--oversample: expected comma-separated integers (got \(oversample)).") }
            try ArgumentCheck.integer(p, "--oversample", in: 0...Int(UInt16.max))
        }
        try PathCheck.existing(model, "--model", kind: .directory, hint: "a Hugging Face model directory")
    }

    func run() throws {
        kernelOptions.apply()
        let methods = try modes.split(separator: ",").map { name -> InitMethod in
            guard let m = InitMethod(peftName: String(name)) else { throw ValidationError("unknown mode '\(name)'") }
            return m
        }
        let oversamples = oversample.split(separator: ",").compactMap { Int($0) }
        let laneCounts = lanes.split(separator: ",").compactMap { Int($0) }
        let targetList = targets.split(separator: ",").map(String.init)
        let base = AdapterSettings(rank: rank, alpha: Float(rank), targets: targetList)
        let weights = try DecompositionBenchmark.load(model: URL(fileURLWithPath: model), settings: base)
        printError(String(format: "loaded %d matrices in %.2f s; computing exact references…", weights.matrices.count, weights.loadSeconds))
        let reference = try DecompositionBenchmark.exactProducts(weights, rank: rank, lanes: laneCounts.max() ?? 2)
        var results: [DecompositionBenchmark.ModeResult] = []
        for method in methods {
            for p in (method.isPiSSA && method != .pissa ? oversamples : [0]) {
                for l in laneCounts {
                    var settings = base
                    settings.initMethod = method
                    settings.oversample = p
                    let r = try DecompositionBenchmark.run(weights, settings: settings, lanes: l, repeats: repeats, reference: reference)
                    printError(String(format: "%-16@ p=%-3d lanes=%d  median %.3f s  rank-r product error median %.2e max %.2e  residual excess median %.2e max %.2e",
                                      r.mode as NSString, p, l, r.medianSeconds,
                                      r.medianRankProductError ?? .nan, r.maxRankProductError ?? .nan,
                                      r.medianResidualExcess ?? .nan, r.maxResidualExcess ?? .nan))
                    results.append(r)
                }
            }
        }
        let output = Output(model: model, rank: rank, modules: weights.matrices.count, loadSeconds: weights.loadSeconds, results: results)
        if json { try printBenchJSON(output) }
    }
}

/// Prefill and greedy-decoding speed on the default model, as transformers is timed by
/// scripts/bench/transformers_forward_bench.py.
struct BenchForward: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "forward", abstract: "Time model loading, prefill (all logits) and greedy decoding.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Prefill length (batch 1).")
    var tokens: Int = 512

    @Option(help: "Tokens to decode after a 5-token prompt.")
    var new: Int = 128

    @Option(help: "Repetitions; medians are reported.")
    var repeats: Int = 3

    @Option(help: "Frozen weights: float32 (dequantised when loaded) or blocks (a GGUF's quantised blocks, as generate uses).")
    var weights: BenchWeights = .float32

    @Option(help: "Parallel lanes (threads) to use.")
    var lanes: Int = 2

    @Flag(help: ArgumentHelp("Return the prefill's logits as a fresh array each time.",
                             discussion: "By default one logits buffer is kept across repeats, as evaluation keeps one across blocks; a fresh (tokens × vocabulary) array pays the kernel's page faults on every prefill."))
    var freshLogits = false

    @Flag(help: "Print JSON.")
    var json = false

    struct Output: Codable {
        var weights: String
        var lanes: Int
        var freshLogits: Bool
        var loadSeconds: Double
        var prefillTokens: Int
        var prefillSeconds: Double
        var prefillTokensPerSecond: Double
        var decodeTokens: Int
        var decodeSeconds: Double
        var decodeTokensPerSecond: Double
    }

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        try ArgumentCheck.integer(tokens, "--tokens", in: 1...1 << 20)
        try ArgumentCheck.integer(new, "--new", in: 1...1 << 20)
        try ArgumentCheck.integer(repeats, "--repeats", in: 1...1_000_000)
    }

    @OptionGroup var kernelOptions: KernelOptions

    func run() throws {
        kernelOptions.apply()
        guard lanes >= 1 else { throw ValidationError("--lanes must be at least 1.") }
        let lm = try modelOptions.load(lanes: lanes, keepBlocks: weights == .blocks)
        guard tokens <= lm.model.maxPositions else {
            throw CommandFailure(description: "--tokens \(tokens) is more than the \(lm.model.maxPositions) positions the model handles; use at most that")
        }
        // (i·7919 + 13) mod (V − 3) + 3: mod 49149 for SmolLM2, as scripts/bench/transformers_forward_bench.py.
        let vocab = max(1, lm.model.config.vocabSize - 3)
        let ids = (0..<tokens).map { Int32(($0 * 7919 + 13) % vocab + 3) }
        var prefill: [Double] = [], decode: [Double] = []
        var logits = [Float](repeating: 0, count: freshLogits ? 0 : tokens * lm.model.config.vocabSize)
        _ = lm.model.hiddenStates(tokens: Array(ids.prefix(16)))
        for _ in 0..<repeats {
            let t0 = Date()
            let hidden = lm.model.hiddenStates(tokens: ids)
            hidden.withUnsafeBufferPointer { h in
                if freshLogits {
                    _ = lm.model.logits(hidden: h.baseAddress!, rows: ids.count)
                } else {
                    logits.withUnsafeMutableBufferPointer { lm.model.logits(hidden: h.baseAddress!, rows: ids.count, into: $0.baseAddress!) }
                }
            }
            prefill.append(Date().timeIntervalSince(t0))
            let (_, stats) = try Generation.run(model: lm.model, prompt: ids.prefix(5).map(Int.init), maxTokens: new,
                                            sampling: .greedy, stopTokens: [])
            decode.append(stats.decodeSeconds / Double(max(1, stats.generatedTokens - 1)) * Double(new))
        }
        let out = Output(weights: weights.rawValue, lanes: lanes, freshLogits: freshLogits, loadSeconds: lm.loadSeconds, prefillTokens: tokens, prefillSeconds: prefill.upperMedian,
                         prefillTokensPerSecond: Double(tokens) / prefill.upperMedian, decodeTokens: new,
                         decodeSeconds: decode.upperMedian, decodeTokensPerSecond: Double(new) / decode.upperMedian)
        if json { try printBenchJSON(out) } else {
            print(String(format: "load %.2f s · prefill %d tokens %.3f s (%.1f tok/s) · decode %d tokens %.3f s (%.1f tok/s)",
                         out.loadSeconds, tokens, out.prefillSeconds, out.prefillTokensPerSecond, new, out.decodeSeconds,
                         out.decodeTokensPerSecond))
        }
    }
}

/// `--kernels`: run a benchmark with another kernel level than the CPU's best (to compare them).
struct KernelOptions: ParsableArguments {
    @Option(help: "pissa's own kernels: avx2 or avx512 (default: the best this CPU runs).")
    var kernels: KernelLevel?

    func validate() throws {
        if let kernels, !CPUKernels.supported.contains(kernels) {
            throw ValidationError("--kernels \(kernels): this CPU runs \(CPUKernels.supported.map(\.description).joined(separator: ", ")).")
        }
    }

    /// Selects the level for the rest of the process.
    func apply() { if let kernels { CPUKernels.level = kernels } }
}

extension KernelLevel: ExpressibleByArgument {
    public init?(argument: String) {
        guard let level = Self.allCases.first(where: { $0.description == argument }) else { return nil }
        self = level
    }

    public static var allValueStrings: [String] { allCases.map(\.description) }
}

enum BenchWeights: String, ExpressibleByArgument, CaseIterable {
    case float32, blocks
}

/// Training-step speed, as scripts/bench/peft_train_bench.py measures PyTorch + PEFT.
struct BenchTrain: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Time training steps (forward + backward + AdamW) and peak memory.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .customLong("init"), help: "lora or pissa_niter_K (rank 16, alpha 16, all seven projections).")
    var initMethod: InitMethod = .lora

    @Option(help: "text (loss on every token) or a math JSONL file (prompt masked).")
    var data: String = "text"

    @Option(help: "Sequences per batch.")
    var batch: Int = 4

    @Option(help: "Sequence length for text.")
    var seq: Int = 256

    @Option(help: "Timed steps (after one warm-up step).")
    var steps: Int = 5

    @Option(help: "What to train: adapter (--init) or full (every weight).")
    var method: TrainConfig.Method = .adapter

    @Flag(help: "Gradient checkpointing: recompute each layer's forward in backward.")
    var gradCheckpoint = false

    @Option(help: "Frozen base: nf4 (QPiSSA with --init pissa…, QLoRA with --init lora); omit for float32.")
    var quant: QuantKind?

    @Option(help: "Parallel lanes (cores) to use.")
    var lanes: Int = 2

    @Option(help: "How the lanes share a step: automatic, sequences (whole sequences per lane) or products (each product split).")
    var parallel: StepParallelism = .automatic

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        try ArgumentCheck.integer(batch, "--batch", in: 1...65536)
        try ArgumentCheck.integer(seq, "--seq", in: 2...1 << 20)
        try ArgumentCheck.integer(steps, "--steps", in: 1...1_000_000)
        try ArgumentCheck.lanes(lanes)
    }

    @OptionGroup var kernelOptions: KernelOptions

    func run() throws {
        kernelOptions.apply()
        let settings = AdapterSettings(rank: 16, alpha: 16, targets: ["all-linear"], initMethod: initMethod, oversample: 0)
        let r = try TrainingBenchmark.run(model: modelOptions.path, settings: settings,
                                          data: data == "text" ? .text(length: seq) : .jsonl(path: data),
                                          batch: batch, steps: steps, lanes: lanes, method: method, checkpointing: gradCheckpoint,
                                          quant: quant.map { _ in QuantSettings() }, parallelism: parallel)
        if json { try printBenchJSON(r) } else {
            let what = (r.method == "full" ? "full fine-tuning" : r.initMethod) + (r.gradientCheckpointing ? " (grad checkpoint)" : "")
            print(String(format: "%@ (%@ base) on %@: median step %.2f s · %.1f tokens/s · %.0f GFLOP/s (%.0f %% of sgemm's %.0f in this run) · peak RSS %.0f MB",
                         what as NSString, r.quant as NSString, r.data as NSString, r.medianStepSeconds, r.tokensPerSecond,
                         r.gflopPerSecond, 100 * r.gflopPerSecond / r.sgemmGFLOPPerSecond, r.sgemmGFLOPPerSecond, r.peakRSSMegabytes))
        }
    }
}

/// The frozen products alone, dense float32 against NF4, on SmolLM2's projection shapes.
struct BenchFrozen: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "frozen", abstract: "Time the frozen-weight products (forward x·Wᵀ, backward dy·W): float32 against NF4.")

    @Option(help: "Rows n of x (batch × sequence).")
    var rows: Int = 1024

    @Option(help: "Weight shapes OUTxIN, comma-separated (default: SmolLM2-135M's q, k, gate, down).")
    var shapes: String = "576x576,192x576,1536x576,576x1536"

    @Option(help: "Repetitions; medians are reported.")
    var repeats: Int = 5

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        try ArgumentCheck.integer(rows, "--rows", in: 1...1 << 20)
        try ArgumentCheck.integer(repeats, "--repeats", in: 1...1_000_000)
        guard let shapes = parsedShapes else { throw ValidationError("--shapes: expected OUTxIN[,OUTxIN…], e.g. 576x576.") }
        for (o, i) in shapes { try ArgumentCheck.fitsInMemory(4 * (Double(rows) * Double(max(o, i)) + 4 * Double(o) * Double(i)), "--shapes and --rows") }
    }

    var parsedShapes: [(Int, Int)]? { parseShapes(shapes, minimum: 1) }

    @OptionGroup var kernelOptions: KernelOptions

    func run() throws {
        kernelOptions.apply()
        let results = parsedShapes!.map { FrozenLinearBenchmark.run(out: $0.0, in: $0.1, rows: rows, repeats: repeats) }
        if json { try printBenchJSON(results); return }
        for r in results {
            print(String(format: "%4d×%-4d n %d · forward %.2f ms dense, %.2f ms NF4 (%.2f×) · backward %.2f ms dense, %.2f ms NF4 (%.2f×) · dequantise %.2f ms",
                         r.shape[0], r.shape[1], r.rows, r.denseForwardMs, r.nf4ForwardMs, r.denseForwardMs / r.nf4ForwardMs,
                         r.denseBackwardMs, r.nf4BackwardMs, r.denseBackwardMs / r.nf4BackwardMs, r.dequantizeMs))
        }
    }
}

/// Causal attention alone, forward and backward, on SmolLM2's head layout.
struct BenchAttention: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "attention", abstract: "Time causal attention's forward and backward on packed sequences (SmolLM2's heads by default).")

    @Option(help: "Sequences packed in one batch.")
    var sequences: Int = 4

    @Option(help: "Tokens per sequence.")
    var length: Int = 256

    @Option(help: "Query heads.")
    var heads: Int = 9

    @Option(help: "Key/value heads (must divide --heads).")
    var kvHeads: Int = 3

    @Option(help: "Head dimension.")
    var headDim: Int = 64

    @Option(help: "Parallel lanes (cores) to use.")
    var lanes: Int = 2

    @Option(help: "Repetitions; medians are reported.")
    var repeats: Int = 20

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        for (value, option) in [(sequences, "--sequences"), (length, "--length"), (heads, "--heads"), (kvHeads, "--kv-heads"),
                                (headDim, "--head-dim"), (repeats, "--repeats")] {
            try ArgumentCheck.integer(value, option, in: 1...1 << 20)
        }
        try ArgumentCheck.lanes(lanes)
        guard heads % kvHeads == 0 else { throw ValidationError("--kv-heads (\(kvHeads)) must divide --heads (\(heads)).") }
        let rows = Double(sequences) * Double(length)
        try ArgumentCheck.fitsInMemory(4 * rows * Double(headDim) * Double(4 * heads + 4 * kvHeads)
                                       + 4 * Double(lanes) * Double(length) * Double(length), "--sequences, --length, --heads and --head-dim")
    }

    @OptionGroup var kernelOptions: KernelOptions

    func run() throws {
        kernelOptions.apply()
        let r = AttentionBenchmark.run(sequences: sequences, length: length, heads: heads, kvHeads: kvHeads, headDim: headDim,
                                       lanes: lanes, repeats: repeats)
        if json { try printBenchJSON(r); return }
        print(String(format: "%d × %d tokens, %d heads on %d KV heads of %d, %d lanes · forward %.2f ms (%.0f GFLOP/s) · backward %.2f ms (%.0f GFLOP/s) · sgemm %.0f GFLOP/s in this run",
                     r.sequences, r.length, r.heads, r.kvHeads, r.headDim, r.lanes, r.forwardMs, r.forwardGFLOPs,
                     r.backwardMs, r.backwardGFLOPs, r.sgemmGFLOPs))
    }
}

/// The narrow (16-column) products of the randomized SVD: our kernel against OpenBLAS, one thread.
struct BenchNarrow: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "narrow", abstract: "Time W·X and Wᵀ·X with a 16-column X on one thread: SkinnyGemm against OpenBLAS.")

    @Option(help: "Weight shapes ROWSxCOLS, comma-separated (default: SmolLM2-135M's q, k, gate, down).")
    var shapes: String = "576x576,192x576,1536x576,576x1536"

    @Option(help: "Repetitions; medians are reported.")
    var repeats: Int = 50

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        try ArgumentCheck.integer(repeats, "--repeats", in: 1...1_000_000)
        guard let shapes = parsedShapes else { throw ValidationError("--shapes: expected ROWSxCOLS[,ROWSxCOLS…], e.g. 576x576.") }
        for (r, c) in shapes { try ArgumentCheck.fitsInMemory(4 * 8 * Double(r) * Double(c), "--shapes") }
    }

    var parsedShapes: [(Int, Int)]? { parseShapes(shapes, minimum: 16) }

    @OptionGroup var kernelOptions: KernelOptions

    func run() throws {
        kernelOptions.apply()
        let results = parsedShapes!.map { NarrowProductBenchmark.run(rows: $0.0, cols: $0.1, repeats: repeats) }
        if json { try printBenchJSON(results); return }
        for r in results {
            print(String(format: "%4d×%-4d · W·X: OpenBLAS %.1f, ours %.1f GFLOP/s · Wᵀ·X: OpenBLAS %.1f, ours %.1f GFLOP/s",
                         r.rows, r.cols, r.openBLASGflops, r.skinnyGflops, r.openBLASTransposedGflops, r.skinnyTransposedGflops))
        }
    }
}

/// The dispatched C kernels at each kernel level this CPU runs (AVX2, AVX-512), one thread.
struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels", abstract: "Time pissa's own C kernels at each kernel level the CPU runs (one thread, levels alternating).")

    @Option(help: "Calls per kernel and level; medians are reported.")
    var repeats: Int = 31

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1.") }
    }

    func run() throws {
        let results = KernelBenchmark.run(repeats: repeats)
        if json { try printBenchJSON(results); return }
        for r in results {
            let times = r.microseconds.sorted { $0.key < $1.key }.map { String(format: "%@ %.1f µs", $0.key, $0.value) }
            print("\(r.kernel) (\(r.shape)): " + times.joined(separator: ", ")
                  + (r.avx512Speedup.map { String(format: " · AVX-512 %.2f× AVX2", $0) } ?? ""))
        }
    }
}

/// "AxB,CxD" as [(A, B), (C, D)], nil unless every side is at least `minimum`.
private func parseShapes(_ text: String, minimum: Int) -> [(Int, Int)]? {
    let parts = text.split(separator: ",").map { $0.split(separator: "x").compactMap { Int($0) } }
    guard parts.allSatisfy({ $0.count == 2 && $0[0] >= minimum && $0[1] >= minimum }) else { return nil }
    return parts.map { ($0[0], $0[1]) }
}

/// Prints a benchmark's JSON with the machine it ran on (`MachineInfo`: CPU, BLAS build and
/// kernels, pissa's kernel level) beside every result: an object gets a "machine" key, each
/// object in an array likewise.
func printBenchJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    let machine = try JSONSerialization.jsonObject(with: encoder.encode(MachineInfo.current))
    func tagged(_ object: Any) -> Any {
        guard var dictionary = object as? [String: Any] else { return object }
        dictionary["machine"] = machine
        return dictionary
    }
    var object = try JSONSerialization.jsonObject(with: encoder.encode(value), options: [.fragmentsAllowed])
    object = (object as? [Any]).map { $0.map(tagged) } ?? tagged(object)
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}
