import Foundation
import Formats
import LinearAlgebra
import Model

/// PiSSA → LoRA conversion (paper Appendix C; PEFT `subtract_mutated_init` and
/// `save_pretrained(path_initial_model_for_weight_conversion=…)`).
///
/// A PiSSA run starts from `W = W_res + s·B₀A₀` and trains `B′, A′` on the frozen `W_res`, so the
/// fine-tuned layer is `W_res + s·B′A′ = W + ΔW` with `ΔW = s·(B′A′ − B₀A₀)`. That is a LoRA of
/// rank 2r on the **original** W:
///
///     A_new = [A′; A₀]        (2r × in, A′ on top)
///     B_new = [B′, −B₀]       (out × 2r)
///     s·B_new·A_new = s·(B′A′ − B₀A₀)
///
/// with `r` and `lora_alpha` doubled so the scale is unchanged (`2α / 2r = α / r`; with rsLoRA
/// `α·√2 / √(2r) = α / √r`), `rank_pattern` / `alpha_pattern` entries doubled the same way, and
/// `init_lora_weights: true` (loading must not run the SVD again). PEFT refuses rsLoRA together
/// with rank/alpha patterns (its pattern doubling is only right without rsLoRA); so does this.
/// A start with B₀ = 0 everywhere (plain LoRA) has ΔW = s·B′A′: the trained adapter is returned
/// unchanged. A DoRA adapter keeps its trained magnitude: its norm ‖W + s·B_new·A_new‖ is
/// ‖W_res + s·B′A′‖, so the converted DoRA layer on W computes what the trained one did.
public enum PiSSAConversion {
    /// The converted adapter.
    public struct Result: Sendable {
        public var config: PEFTAdapterConfig
        public var modules: [(path: String, factors: LoRAFactors)]
        /// True when the initial adapter was a zero-B (LoRA) start and the trained adapter was kept as is.
        public var unchanged: Bool
    }

    /// Converts `trained` (an adapter trained on the residual) with its start `initial` into a
    /// LoRA on the original model. Throws `ConversionError` listing every mismatch.
    public static func convert(initial: PEFTAdapter.Loaded, trained: PEFTAdapter.Loaded,
                               initialPath: String = "initial", trainedPath: String = "adapter") throws(ConversionError) -> Result {
        let c = trained.config
        if c.useRslora && (!c.rankPattern.isEmpty || !c.alphaPattern.isEmpty) {
            throw .rsLoRAWithPatterns(path: trainedPath)
        }
        let start = Dictionary(initial.modules.map { ($0.path, $0.factors) }, uniquingKeysWith: { a, _ in a })
        let end = Set(trained.modules.map(\.path))
        var problems: [String] = []
        for path in start.keys.sorted() where !end.contains(path) { problems.append("\(path): in the initial adapter only") }
        for (path, _) in trained.modules where start[path] == nil { problems.append("\(path): in the trained adapter only") }
        if initial.config.useDora != c.useDora {
            problems.append("use_dora is \(initial.config.useDora) in the initial adapter and \(c.useDora) in the trained one")
        }
        if initial.config.useRslora != c.useRslora {
            problems.append("use_rslora is \(initial.config.useRslora) in the initial adapter and \(c.useRslora) in the trained one")
        }
        for (path, f) in trained.modules {
            guard let f0 = start[path] else { continue }
            if f0.A.shape != f.A.shape || f0.B.shape != f.B.shape {
                problems.append("\(path): initial lora_A \(f0.A.shape) / lora_B \(f0.B.shape), trained \(f.A.shape) / \(f.B.shape)")
                continue
            }
            let s0 = initial.scale(rank: f0.rank, module: path), s = trained.scale(rank: f.rank, module: path)
            if abs(s0 - s) > 1e-6 * max(abs(s), 1) {
                problems.append("\(path): scale \(s0) in the initial adapter, \(s) in the trained one (lora_alpha / r differ)")
            }
        }
        guard problems.isEmpty else { throw .mismatched(initial: initialPath, trained: trainedPath, problems: problems) }

        if initial.modules.allSatisfy({ $0.factors.B.storage.allSatisfy { $0 == 0 } }) {
            var config = c
            config.initLoraWeights = .bool(true)
            return Result(config: config, modules: trained.modules, unchanged: true)
        }
        let modules = trained.modules.map { (path, f) in (path, stack(trained: f, initial: start[path]!)) }
        return Result(config: doubledConfig(c), modules: modules, unchanged: false)
    }

    /// `[A′; A₀]` and `[B′, −B₀]`.
    static func stack(trained f: LoRAFactors, initial f0: LoRAFactors) -> LoRAFactors {
        let r = f.rank, (out, inF) = (f.B.rows, f.A.cols)
        let a = Matrix(rows: 2 * r, cols: inF, storage: f.A.storage + f0.A.storage)   // (2r, in)
        var b = Matrix(rows: out, cols: 2 * r)                                         // (out, 2r)
        for i in 0..<out {
            for j in 0..<r {
                b.storage[i * 2 * r + j] = f.B.storage[i * r + j]
                b.storage[i * 2 * r + r + j] = -f0.B.storage[i * r + j]
            }
        }
        // DoRA: m / ‖W + s·B_new·A_new‖ = m / ‖W_res + s·B′A′‖, so the trained magnitude carries over exactly.
        return LoRAFactors(A: a, B: b, magnitude: f.magnitude)
    }

    /// r ×2, lora_alpha ×2 (×√2 with rsLoRA), pattern entries ×2, `init_lora_weights: true`.
    static func doubledConfig(_ c: PEFTAdapterConfig) -> PEFTAdapterConfig {
        var n = c
        n.r = 2 * c.r
        n.loraAlpha = c.useRslora ? c.loraAlpha * Float(2).squareRoot() : 2 * c.loraAlpha
        n.rankPattern = c.rankPattern.mapValues { 2 * $0 }
        n.alphaPattern = c.alphaPattern.mapValues { 2 * $0 }
        n.initLoraWeights = .bool(true)
        n.inferenceMode = true
        return n
    }
}

/// Why an adapter cannot be converted (exactly).
public enum ConversionError: Error, CustomStringConvertible, Equatable {
    case mismatched(initial: String, trained: String, problems: [String])
    case rsLoRAWithPatterns(path: String)
    case quantizedResidual(evidence: String, gap: String)
    /// `--initial` is a trained adapter and `--adapter` a start.
    case swapped(initial: String, trained: String)
    /// Both directories hold the same factors (the same adapter given twice).
    case identical(initial: String, trained: String)
    /// `--adapter` is a start, not a trained adapter.
    case notTrained(path: String)
    /// `--initial` is a trained adapter, not a start.
    case notInitial(path: String)
    case alreadyConverted(option: String, path: String)

    public var description: String {
        switch self {
        case let .mismatched(initial, trained, problems):
            "the initial adapter \(initial) and the trained adapter \(trained) do not belong together:\n  "
                + problems.joined(separator: "\n  ")
        case let .rsLoRAWithPatterns(path):
            "\(path): use_rslora together with rank_pattern / alpha_pattern cannot be converted (PEFT refuses it too: "
                + "one lora_alpha cannot keep every module's alpha/√r when the ranks double)"
        case let .quantizedResidual(evidence, gap):
            "the residual was quantised (\(evidence)): the adapter was trained on nf4(W_res), so on the original W the "
                + "converted LoRA is off by W_res − nf4(W_res) in every module. \(gap)\n"
                + "Use the residual with the trained adapter as is, or pass --force to convert anyway."
        case let .swapped(initial, trained):
            "the adapters are swapped: --initial \(initial) is a trained adapter and --adapter \(trained) is an initial one "
                + "(converted this way, the result would undo the training); run it as --initial \(trained) --adapter \(initial)"
        case let .identical(initial, trained):
            "--initial \(initial) and --adapter \(trained) are the same adapter; --initial takes the start training began from "
                + "(RUN/pissa_init) and --adapter the trained one (RUN/adapter)"
        case let .notTrained(path):
            "--adapter \(path) is an initial adapter (a start written by `pissa init` or `pissa train`), not a trained one; "
                + "pass the trained adapter as --adapter (RUN/adapter, or a checkpoint's adapter)"
        case let .notInitial(path):
            "--initial \(path) is a trained adapter, not the start training began from; pass the run's initial adapter "
                + "as --initial (RUN/pissa_init, or OUT/pissa_init of `pissa init`)"
        case let .alreadyConverted(option, path):
            "\(option) \(path) was written by `pissa convert`: it is already a LoRA on the original model and needs no conversion"
        }
    }
}

extension PiSSAConversion {
    /// What `convertDirectories` did.
    public struct Report: Codable, Sendable {
        public var output: String
        public var modules: Int
        public var rank: Int
        public var loraAlpha: Float
        /// The initial adapter was a zero-B (LoRA) start: the trained adapter was written unchanged.
        public var unchanged: Bool
        /// Why the residual is believed to be quantised (the conversion was forced), if it is.
        public var quantization: String?
        /// Measured per-module gap `‖W_res − nf4(W_res)‖_F / ‖W‖_F` when the original weights were given.
        public var quantizationGap: [QuantizationGap]?
        /// What is likely not meant, though possible (e.g. an adapter that training did not move).
        public var warnings: [String]
    }

    /// Reads `initial` (e.g. RUN/pissa_init) and `adapter` (RUN/adapter), converts, and writes the
    /// PEFT adapter `output`. A quantised residual (see `quantizationEvidence`) is refused with
    /// `ConversionError.quantizedResidual` unless `force`; `original` (the model before
    /// decomposition) lets the error message and the report carry the measured gap. Nothing is
    /// written when an error is thrown.
    public static func convertDirectories(initial: URL, adapter: URL, output: URL, force: Bool = false,
                                          original: WeightSource? = nil) throws -> Report {
        if PathResolution.resolved(initial.path) == PathResolution.resolved(adapter.path) {
            throw ConversionError.identical(initial: initial.path, trained: adapter.path)
        }
        let start = try PEFTAdapter.read(directory: initial), end = try PEFTAdapter.read(directory: adapter)
        try refuseConverted(initial: start, trained: end, initialPath: initial.path, trainedPath: adapter.path)
        let result = try convert(initial: start, trained: end, initialPath: initial.path, trainedPath: adapter.path)
        let warnings = try checkRoles(initial: start, trained: end, initialPath: initial.path, trainedPath: adapter.path)
        let evidence = quantizationEvidence(initialDirectory: initial, adapterDirectory: adapter)
        var gaps: [QuantizationGap]?
        if evidence != nil, let original { gaps = try quantizationGap(original: original, initial: start) }
        if let evidence, !force {
            throw ConversionError.quantizedResidual(evidence: evidence, gap: gapSummary(gaps))
        }
        try PEFTAdapter.write(to: output, modules: result.modules, config: result.config, role: .converted)
        return Report(output: output.path, modules: result.modules.count, rank: result.config.r, loraAlpha: result.config.loraAlpha,
                      unchanged: result.unchanged, quantization: evidence, quantizationGap: gaps, warnings: warnings)
    }

    /// One line on the quantisation gap: measured (mean and worst module) or the typical size.
    public static func gapSummary(_ gaps: [QuantizationGap]?) -> String {
        guard let gaps, let worst = gaps.max(by: { $0.relativeError < $1.relativeError }) else { return unmeasuredGapNote }
        let mean = gaps.map(\.relativeError).reduce(0, +) / Double(gaps.count)
        return String(format: "Measured ‖W_res − nf4(W_res)‖/‖W‖: mean %.4f over %d modules, worst %.4f (%@).",
                      mean, gaps.count, worst.relativeError, worst.module)
    }
}
