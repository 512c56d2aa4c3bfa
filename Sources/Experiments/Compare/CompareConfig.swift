import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// A fine-tuning method as `pissa compare` names it. Every method trains with the same
/// hyperparameters; only the start (and what is frozen, and how) differs.
public enum CompareMethod: String, Codable, Sendable, CaseIterable {
    /// LoRA: Kaiming-uniform A, B = 0 on the frozen float32 weights.
    case lora
    /// PiSSA: A, B from the weight's principal singular triplets, the residual frozen.
    case pissa
    /// Full fine-tuning: every weight trained.
    case full
    /// QLoRA: LoRA on NF4(W).
    case qlora
    /// QPiSSA: PiSSA with the residual in NF4.
    case qpissa
    /// MiLoRA: the bottom r singular triplets in the adapter, the rest frozen.
    case milora
    /// OLoRA: B = Q[:, :r], A = R[:r] of W = QR, the rest frozen.
    case olora
    /// DoRA: the LoRA start with a trainable magnitude per output feature (PEFT's use_dora).
    case dora
    /// CorDA (IPM): the top r triplets of W·C, C the covariance of the layer's inputs on the training data.
    case corda
    /// EVA: A = the top principal directions of the layer's inputs on the training data, B = 0, ranks redistributed.
    case eva
    /// LoRA-GA: A, B from the SVD of the full-weight gradient on training batches.
    case loraga

    /// Whether the frozen base is NF4.
    public var isQuantized: Bool { self == .qlora || self == .qpissa }

    public var label: String {
        switch self {
        case .lora: "LoRA"
        case .pissa: "PiSSA"
        case .full: "Full FT"
        case .qlora: "QLoRA"
        case .qpissa: "QPiSSA"
        case .milora: "MiLoRA"
        case .olora: "OLoRA"
        case .dora: "DoRA"
        case .corda: "CorDA"
        case .eva: "EVA"
        case .loraga: "LoRA-GA"
        }
    }
}

/// Everything that defines a comparison; saved as `REPORT/config.json` and printed in the report.
public struct CompareConfig: Codable, Sendable, Equatable {
    public var model: String
    public var data: String
    /// Held-out data: loss on its supervised tokens and, for prompt/completion math records,
    /// exact-match accuracy.
    public var test: String?
    public var output: String
    public var methods: [CompareMethod]
    public var seeds: [UInt64]
    public var rank: Int = 16
    /// lora_alpha; the paper's choice, alpha = r, when nil.
    public var alpha: Float?
    public var targets: [String] = ["all-linear"]
    /// The SVD the PiSSA-family methods use.
    public var pissaInit: InitMethod = .pissaNiter(4)
    /// QPiSSA's alternating iterations T (Algorithm 1; the paper uses 5).
    public var qpissaIterations: Int = 5
    public var steps: Int = 100
    /// Of 5e-5, 2e-4 and 1e-3, both LoRA and PiSSA did best at 1e-3 in 40-step SmolLM2 math runs
    /// (docs/RESULTS.md §3), so the default handicaps neither.
    public var learningRate: Double = 1e-3
    public var warmupRatio: Double = 0.03
    public var batchSize: Int = 4
    public var gradientAccumulation: Int = 1
    public var maxSeqLen: Int = 512
    /// Evaluate the held-out loss every N steps (and at the end); nil: at the end only.
    public var evalEvery: Int?
    /// Held-out math problems answered for exact-match accuracy when they are not `test`'s (so
    /// that the held-out loss, evaluated several times a run, can use fewer examples than the
    /// accuracy needs); nil: `test`.
    public var accuracyTest: String?
    /// Held-out records answered by greedy generation for exact-match accuracy (0: none).
    public var accuracyLimit: Int = 64
    public var maxNewTokens: Int = 96

    /// The file whose first `accuracyLimit` problems are answered.
    public var accuracyData: String? { accuracyTest ?? test }
    /// The initialisations timed for the Table-6-style table (empty: no table).
    public var initModes: [InitMethod] = [.pissa, .pissaNiter(1), .pissaNiter(4), .pissaNiter(16)]
    public var lanes: Int = 2
    /// LoRA+ for every adapter method (`TrainConfig.loraplusLRRatio`); nil: off.
    public var loraplusLRRatio: Double?
    /// Batches of the training data the data-driven starts (CorDA, EVA, LoRA-GA) learn from
    /// (nil, also in reports made before they existed: `CalibrationSettings.defaultBatches`).
    public var calibrationBatches: Int?
    /// The command line that started the comparison, for the report.
    public var commandLine: String = ""

    public init(model: String, data: String, test: String?, output: String, methods: [CompareMethod], seeds: [UInt64]) {
        self.model = model
        self.data = data
        self.test = test
        self.output = output
        self.methods = methods
        self.seeds = seeds
    }

    /// Every setting at its default (the paths empty): `pissa compare`'s options take theirs from here.
    public static let defaults = CompareConfig(model: "", data: "", test: nil, output: "", methods: [.lora, .pissa], seeds: [0, 1, 2])

    public var effectiveAlpha: Float { alpha ?? Float(rank) }

    /// The training run of one method and seed: the paper's settings (dropout 0, AdamW, cosine,
    /// warmup ratio 0.03, weight decay 0, loss on responses only), identical across methods.
    public func trainConfig(method: CompareMethod, seed: UInt64) -> TrainConfig {
        let initMethod: InitMethod = switch method {
        case .pissa, .qpissa: pissaInit
        case .lora, .qlora, .full, .dora: .lora
        case .milora: .milora
        case .olora: .olora
        case .corda: .corda
        case .eva: .eva
        case .loraga: .loraGA
        }
        var settings = AdapterSettings(rank: rank, alpha: effectiveAlpha, targets: targets, initMethod: initMethod, seed: seed)
        settings.useDoRA = method == .dora
        var c = TrainConfig(model: model, data: data, output: runDirectory(method: method, seed: seed).path, adapter: settings)
        c.valid = test
        c.method = method == .full ? .full : .adapter
        if method.isQuantized { c.quant = QuantSettings(iterations: method == .qpissa ? qpissaIterations : 1) }
        c.learningRate = learningRate
        c.schedule = .cosine
        c.warmupRatio = warmupRatio
        c.weightDecay = 0
        c.batchSize = batchSize
        c.gradientAccumulation = gradientAccumulation
        c.maxSeqLen = maxSeqLen
        c.steps = steps
        c.seed = seed
        c.evalEvery = test == nil ? nil : (evalEvery ?? steps)
        c.saveEvery = nil
        c.keepCheckpoints = 1
        c.lanes = lanes
        if method != .full { c.loraplusLRRatio = loraplusLRRatio }
        if initMethod.needsCalibration { c.calibration = CalibrationSettings(data: nil, batches: calibrationBatches ?? CalibrationSettings.defaultBatches) }
        return c
    }

    public func runDirectory(method: CompareMethod, seed: UInt64) -> URL {
        URL(fileURLWithPath: output).appendingPathComponent("runs/\(method.rawValue)-seed\(seed)")
    }
}
