import Adapters
import Foundation
import Formats
import LinearAlgebra
import Model
import Tokenizer

/// Fine-tunes LoRA-style adapters (PiSSA, LoRA, …) on a frozen model.
///
/// A run directory holds `config.json`, `pissa_init/` (or `lora_init/`: the initial adapter,
/// needed to convert a PiSSA adapter to a LoRA on the original model), `adapter/` (the trained
/// adapter, valid on the residual model), `metrics.jsonl`, `loss.svg` and
/// `checkpoints/step-N/` (adapter, optimiser state, trainer state). Every step is a pure function
/// of (weights, adapter, batch), so a resumed run reproduces an uninterrupted one bit for bit.
public final class Trainer {
    public enum Event: Sendable {
        case loaded(examples: Int, supervisedTokens: Int, truncated: Int, skipped: Int, totalSteps: Int, initSeconds: Double)
        case resumed(step: Int)
        case step(StepMetrics, totalSteps: Int)
        case evaluated(step: Int, loss: Double)
        case checkpoint(step: Int, path: String)
        case finished(step: Int, path: String)
    }

    public enum Control: Sendable { case proceed, stop }

    public let config: TrainConfig
    public let model: LlamaModel
    public let tokenizer: BPETokenizer
    public let trainable: TrainableAdapters
    let train: [Example]
    let valid: [Example]
    public let totalSteps: Int
    let schedule: LRSchedule
    let optimizer: AdamW
    var sampler: BatchSampler
    let run: RunDirectory
    let initialAdapterName: String

    /// Loads the model and data, initialises (or reads) the adapter and prepares the run
    /// directory. With `resume`, continues from the newest complete checkpoint in `config.output`.
    public init(config: TrainConfig, resume: Bool = false, progress: (Event) -> Void = { _ in }) throws {
        self.config = config
        let t0 = Date()
        run = RunDirectory(URL(fileURLWithPath: config.output))
        if resume { try run.checkResumable(config) }
        var (weights, tokenizer) = try LanguageModel.loadParts(path: config.model)
        self.tokenizer = tokenizer
        let (initial, adapterConfig) = try Self.initialAdapters(config: config, weights: &weights)
        model = LlamaModel(weights: weights, lanes: config.lanes)
        trainable = try TrainableAdapters(initial: initial, layerCount: weights.config.numHiddenLayers)
        initialAdapterName = config.adapterPath == nil ? ModelDecomposer.adapterDirectoryName(for: config.adapter.initMethod) : "initial_adapter"
        self.adapterConfig = adapterConfig

        let loader = DatasetLoader(tokenizer: tokenizer, maxSeqLen: config.maxSeqLen, skipBadLines: config.skipBadLines)
        let loaded = try loader.load(path: config.data)
        train = loaded.examples
        valid = try config.valid.map { try loader.load(path: $0).examples } ?? []
        guard !train.isEmpty else { throw TrainerError.noExamples(path: config.data) }
        totalSteps = config.totalSteps(examples: train.count)
        schedule = config.lrSchedule(totalSteps: totalSteps)
        optimizer = AdamW(weightDecay: config.weightDecay)
        sampler = BatchSampler(count: train.count, batchSize: config.batchSize, seed: config.seed)
        progress(.loaded(examples: train.count, supervisedTokens: loaded.report.supervisedTokens,
                         truncated: loaded.report.truncated, skipped: loaded.report.skippedLines,
                         totalSteps: totalSteps, initSeconds: Date().timeIntervalSince(t0)))

        if resume, let step = try run.restoreLatest(into: self) {
            progress(.resumed(step: step))
        } else {
            try run.create(config: config)
            try trainable.writePEFT(to: run.url.appendingPathComponent(initialAdapterName), config: adapterConfig)
        }
    }

    let adapterConfig: PEFTAdapterConfig

    /// Trains to `totalSteps`, checkpointing every `saveEvery` steps and at the end; `progress`
    /// may return `.stop` (e.g. on Ctrl-C), which saves a checkpoint and returns.
    @discardableResult
    public func fit(progress: (Event) -> Control = { _ in .proceed }) throws -> [StepMetrics] {
        let store = trainable.store
        let log = try MetricsLog(url: run.metricsURL, mode: .resume(afterStep: store.step))
        defer { log.close() }
        let scratch = TrainingScratch(model: model, capacityRows: config.batchSize * config.maxSeqLen, maxRank: trainable.maxRank)
        let padID = Int32(tokenizer.special.pad ?? tokenizer.special.eos ?? 0)
        let started = Date()
        var logged: [StepMetrics] = []
        let previous = (try? MetricsLog.read(from: run.metricsURL)) ?? []
        let elapsedBefore = previous.last(where: { $0.step <= store.step })?.elapsedSeconds ?? 0
        while store.step < totalSteps {
            let t0 = Date()
            store.zeroGradients()
            let batches = (0..<config.gradientAccumulation).map { _ in sampler.next(from: train, padID: padID) }
            let supervised = batches.reduce(0) { $0 + $1.supervisedCount }
            var lossSum = 0.0, tokens = 0
            for b in batches where b.supervisedCount > 0 {
                lossSum += model.lossAndGradients(tokens: b.tokens, targets: b.targets, batch: b.batch,
                                                  adapters: trainable.adapters, normalizer: Float(supervised), scratch: scratch)
                tokens += b.tokens.count
            }
            let loss = lossSum / Double(max(1, supervised))
            guard loss.isFinite else {
                throw TrainerError.nonFiniteLoss(step: store.step + 1, lastCheckpoint: run.latestCheckpointPath())
            }
            let gradNorm = store.clipGradients(maxNorm: config.maxGradNorm)
            guard gradNorm.isFinite else {
                throw TrainerError.nonFiniteLoss(step: store.step + 1, lastCheckpoint: run.latestCheckpointPath())
            }
            let lr = optimizer.step(store, schedule: schedule)
            let dt = Date().timeIntervalSince(t0)
            var metrics = StepMetrics(step: store.step, loss: loss, learningRate: lr, gradNorm: gradNorm,
                                      tokensPerSecond: Double(tokens) / dt,
                                      elapsedSeconds: elapsedBefore + Date().timeIntervalSince(started),
                                      supervisedTokens: supervised,
                                      epoch: Double(sampler.state.epoch) + Double(sampler.state.position) / Double(train.count))
            if let every = config.evalEvery, !valid.isEmpty, store.step % every == 0 || store.step == totalSteps {
                metrics.evalLoss = evaluate(valid)
                _ = progress(.evaluated(step: store.step, loss: metrics.evalLoss!))
            }
            try log.append(metrics)
            logged.append(metrics)
            let control = progress(.step(metrics, totalSteps: totalSteps))
            let due = config.saveEvery.map { store.step % $0 == 0 } ?? false
            if due || control == .stop || store.step == totalSteps {
                let path = try run.saveCheckpoint(self)
                _ = progress(.checkpoint(step: store.step, path: path))
            }
            if control == .stop { break }
        }
        try trainable.writePEFT(to: run.url.appendingPathComponent("adapter"), config: adapterConfig)
        try LossCurves.write(metrics: MetricsLog.read(from: run.metricsURL), to: run.url.appendingPathComponent(LossCurves.fileName))
        _ = progress(.finished(step: store.step, path: run.url.path))
        return logged
    }

    /// Mean NLL over the supervised tokens of `examples` (no gradients).
    public func evaluate(_ examples: [Example]) -> Double {
        Evaluation.loss(model: model, adapters: trainable.adapters, examples: examples, batchSize: config.batchSize,
                        padID: Int32(tokenizer.special.pad ?? tokenizer.special.eos ?? 0)).nll
    }

    /// The adapter's starting factors: an existing PEFT adapter, or an initialiser applied to the
    /// weights (PiSSA replaces each target weight by its residual, in `weights`). With NF4
    /// (`config.quantization`) every projection of every layer ends quantised (targets or not,
    /// as bitsandbytes' 4-bit loading does), each right after its initialisation, so that the
    /// float32 and NF4 copies of all weights are never alive together.
    static func initialAdapters(config: TrainConfig, weights: inout LlamaWeights)
        throws -> ([(layer: Int, projection: Projection, factors: LoRAFactors, scale: Float)], PEFTAdapterConfig) {
        if let problem = config.quantization.problem { throw TrainerError.invalidSettings(problem) }
        let quantization = config.quantization.frozen
        if let path = config.adapterPath {
            var (modules, cfg) = try AdapterLoading.peft(path: path, weights: weights)
            cfg.initLoraWeights = .bool(true)
            weights.quantizeProjections(quantization)   // the loaded weights are the residual
            return (modules, cfg)
        }
        let s = config.adapter
        let projections = Projection.matching(s.targets)
        guard !projections.isEmpty else {
            throw AdapterError.noTargetModules(targets: s.targets, model: config.model,
                                               sampleModules: Projection.allCases.map { $0.modulePath(layer: 0) })
        }
        var out: [(layer: Int, projection: Projection, factors: LoRAFactors, scale: Float)] = []
        var index: UInt64 = 0
        for layer in 0..<weights.layers.count {
            for p in projections {
                guard var w = weights.layers[layer][p] as? Matrix else {
                    throw TrainerError.invalidSettings("\(p.modulePath(layer: layer)) is already quantised; adapters start from float32 weights")
                }
                var rng = SeededGenerator(seed: s.seed, stream: index)
                index += 1
                weights.layers[layer][p] = Matrix(rows: 0, cols: 0)   // w holds the only reference: initialised in place
                let (frozen, f) = try initializeFrozen(&w, settings: s, quantization: quantization, using: &rng)
                weights.layers[layer][p] = frozen
                out.append((layer, p, f, s.scale))
            }
        }
        weights.quantizeProjections(quantization)   // the projections that carry no adapter
        let cfg = PEFTAdapterConfig(r: s.rank, loraAlpha: s.alpha, targetModules: TargetModules.suffixes(of: projections.map(\.moduleName)),
                                    useRslora: s.useRSLoRA, taskType: "CAUSAL_LM", baseModelNameOrPath: config.model)
        return (out, cfg)
    }

    /// One target weight's frozen base and adapter start: the one place where an initialiser
    /// meets the base's representation.
    ///
    /// - float32: the initialiser's residual (PiSSA: W − s·B·A; LoRA: W itself).
    /// - NF4 with PiSSA: QPiSSA with T = 1 (PISSA.md §3): the top-r factors of W, then
    ///   nf4(W − s·B·A). With LoRA: QLoRA, nf4(W) and the usual LoRA start.
    ///
    /// The T-iteration QPiSSA / LoftQ initialisers replace the NF4 branch here.
    static func initializeFrozen(_ w: inout Matrix, settings: AdapterSettings, quantization: FrozenQuantization,
                                 using rng: inout SeededGenerator) throws -> (frozen: any FrozenLinear, factors: LoRAFactors) {
        let factors = try AdapterInitializer.initialize(&w, settings: settings, using: &rng)
        return (quantization.apply(w), factors)
    }
}
public enum TrainerError: Error, CustomStringConvertible, Equatable {
    case noExamples(path: String)
    case nonFiniteLoss(step: Int, lastCheckpoint: String?)
    case notResumable(path: String, reason: String)
    case invalidSettings(String)

    public var description: String {
        switch self {
        case let .noExamples(path): "\(path): no training examples"
        case let .nonFiniteLoss(step, last):
            "the loss or gradient became NaN or infinite at step \(step); try a lower --lr. " + (last.map { "The last good checkpoint is \($0)." } ?? "No checkpoint was saved yet.")
        case let .notResumable(path, reason): "cannot resume \(path): \(reason)"
        case let .invalidSettings(problem): "invalid training settings: \(problem)"
        }
    }
}
