import Adapters
import Foundation
import Formats
import LinearAlgebra
import Model
import Tokenizer

/// Fine-tunes LoRA-style adapters (PiSSA, LoRA, …) on a frozen model, or with `method: .full`
/// every weight of the model (then `model/`, a Hugging Face directory, replaces `adapter/` and
/// the initial adapter, and each checkpoint holds the whole weights with their AdamW moments).
///
/// A run directory holds `config.json`, `pissa_init/` (or `lora_init/`: the initial adapter,
/// needed to convert a PiSSA adapter to a LoRA on the original model), `adapter/` (the trained
/// adapter, valid on the residual model), `metrics.jsonl`, `loss.svg` and
/// `checkpoints/step-N/` (adapter, optimiser state, trainer state). Every step is a pure function
/// of (weights, adapter, batch), so a resumed run reproduces an uninterrupted one bit for bit.
public final class Trainer {
    public enum Event: Sendable {
        /// Temporaries a killed run left in the run directory were removed.
        case removedTemporaries([String])
        case loaded(examples: Int, supervisedTokens: Int, truncated: Int, skipped: Int, totalSteps: Int, initSeconds: Double)
        case resumed(step: Int)
        case step(StepMetrics, totalSteps: Int)
        case evaluated(step: Int, loss: Double)
        case checkpoint(step: Int, path: String)
        case finished(step: Int, path: String)
    }

    public enum Control: Sendable { case proceed, stop }

    public let config: TrainConfig
    public let model: DecoderModel
    public let tokenizer: BPETokenizer
    /// The adapters being trained (method `.adapter`), else nil.
    public let trainable: TrainableAdapters?
    /// Every weight being trained (method `.full`), else nil.
    public let fullWeights: TrainableWeights?
    /// The store the optimiser updates: the adapters' or the full weights'.
    public let store: ParameterStore
    /// What the model adds to its projections: the trained adapters, or none.
    let adapters: ModelAdapters
    let train: [Example]
    let valid: [Example]
    public let totalSteps: Int
    let schedule: LRSchedule
    let optimizer: AdamW
    var sampler: BatchSampler
    let run: RunDirectory
    /// The run directory's lock, held while this trainer lives.
    private let output: OutputDirectory

    /// Opens (and locks) the run directory, loads the model and data, initialises (or reads) the
    /// adapter and writes the run's start. With `resume`, continues from the newest complete
    /// checkpoint in `config.output`; otherwise the directory must be new or empty, or with
    /// `overwrite` the run in it is deleted (checkpoints first) once everything has loaded.
    /// When anything fails before the run is written, a directory this call created is removed.
    public init(config: TrainConfig, resume: Bool = false, overwrite: Bool = false, progress: (Event) -> Void = { _ in }) throws {
        self.config = config
        let t0 = Date()
        let (run, output) = try RunDirectory.open(config, resume: resume, overwrite: overwrite)
        self.run = run
        self.output = output
        if !output.removedTemporaries.isEmpty { progress(.removedTemporaries(output.removedTemporaries)) }
        do {
            if resume { try run.checkResumable(config) }
            var (weights, tokenizer) = try LanguageModel.loadParts(path: config.model)
            self.tokenizer = tokenizer
            switch config.method {
            case .adapter:
                let (initial, adapterConfig) = try Self.initialAdapters(config: config, weights: &weights, tokenizer: tokenizer)
                model = DecoderModel(weights: weights, lanes: config.lanes)
                let trainable = try TrainableAdapters(initial: initial, layerCount: weights.config.numHiddenLayers)
                if let ratio = config.loraplusLRRatio { trainable.setLoraPlusRatio(ratio) }
                trainable.refreshDoRANorms(model: model)
                self.trainable = trainable
                fullWeights = nil
                store = trainable.store
                adapters = trainable.adapters
                self.adapterConfig = adapterConfig
            case .full:
                let full = try TrainableWeights(moving: &weights)
                model = DecoderModel(weights: weights, lanes: config.lanes, buffers: full.buffers)
                trainable = nil
                fullWeights = full
                store = full.store
                adapters = ModelAdapters(layerCount: weights.config.numHiddenLayers)
                adapterConfig = nil
            }
            try Self.checkFits(config, model: model, maxRank: trainable?.maxRank ?? 0)

            let loader = DatasetLoader(tokenizer: tokenizer, maxSeqLen: Self.sequenceLimit(config, model: model), skipBadLines: config.skipBadLines)
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
                trainable?.refreshDoRANorms(model: model)
                progress(.resumed(step: step))
            } else {
                try run.create(config: config)
                if let trainable, let adapterConfig {
                    try AtomicDirectory.write(run.initialAdapterURL(for: config)) {
                        try trainable.writePEFT(to: $0, config: adapterConfig, role: .initial)
                    }
                }
            }
        } catch {
            output.discard()
            throw error
        }
    }

    /// The adapters' PEFT configuration (nil in full fine-tuning).
    let adapterConfig: PEFTAdapterConfig?

    /// Where the trained result goes: `adapter/` (PEFT) or, in full fine-tuning, `model/`.
    public var outputURL: URL { config.method == .full ? run.modelURL : run.adapterURL }

    /// Writes the current adapter (PEFT) or, in full fine-tuning, the whole model (Hugging Face),
    /// as a whole directory.
    func writeOutput(to url: URL) throws {
        try AtomicDirectory.write(url) { directory in
            if let trainable, let adapterConfig { try trainable.writePEFT(to: directory, config: adapterConfig, role: .trained) }
            if let fullWeights { _ = try fullWeights.writeModel(to: directory, tokenizer: tokenizer) }
        }
    }

    /// Trains to `totalSteps`, checkpointing every `saveEvery` steps and at the end; `progress`
    /// may return `.stop` (e.g. on Ctrl-C), which saves a checkpoint and returns.
    @discardableResult
    public func fit(progress: (Event) -> Control = { _ in .proceed }) throws -> [StepMetrics] {
        let store = self.store
        let log = try MetricsLog(url: run.metricsURL, mode: .resume(afterStep: store.step))
        defer { log.close() }
        let scratch = TrainingScratch(model: model, capacityRows: config.batchSize * Self.sequenceLimit(config, model: model), maxRank: trainable?.maxRank ?? 0,
                                      checkpointing: config.gradientCheckpointing ?? false)
        let started = Date()
        var logged: [StepMetrics] = []
        let previous = (try? MetricsLog.read(from: run.metricsURL)) ?? []
        let elapsedBefore = previous.last(where: { $0.step <= store.step })?.elapsedSeconds ?? 0
        while store.step < totalSteps {
            let t0 = Date()
            store.zeroGradients()
            let batches = (0..<config.gradientAccumulation).map { _ in sampler.next(from: train) }
            let supervised = batches.reduce(0) { $0 + $1.supervisedCount }
            var lossSum = 0.0, tokens = 0
            for b in batches where b.supervisedCount > 0 {
                lossSum += model.lossAndGradients(tokens: b.tokens, targets: b.targets, lengths: b.lengths,
                                                  adapters: adapters, normalizer: Float(supervised), scratch: scratch)
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
            trainable?.refreshDoRANorms(model: model)
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
        try writeOutput(to: outputURL)
        try LossCurves.write(metrics: MetricsLog.read(from: run.metricsURL), to: run.lossCurveURL)
        _ = progress(.finished(step: store.step, path: run.url.path))
        return logged
    }

    /// Mean NLL over the supervised tokens of `examples` (no gradients).
    public func evaluate(_ examples: [Example]) -> Double {
        Evaluation.loss(model: model, adapters: adapters, examples: examples, batchSize: config.batchSize).nll
    }

    /// The adapter's starting factors: an existing PEFT adapter, or an initialiser applied to the
    /// weights (PiSSA replaces each target weight by its residual, in `weights`). With NF4
    /// (`config.quant`) every projection of every layer ends quantised (targets or not,
    /// as bitsandbytes' 4-bit loading does), each right after its initialisation, so that the
    /// float32 and NF4 copies of all weights are never alive together.
    static func initialAdapters(config: TrainConfig, weights: inout ModelWeights, tokenizer: BPETokenizer)
        throws -> ([(layer: Int, projection: Projection, factors: LoRAFactors, scale: Float)], PEFTAdapterConfig) {
        let quantization = try frozenQuantization(config.quant)
        if let path = config.adapterPath {
            var (modules, cfg) = try AdapterLoading.peft(path: path, weights: weights)
            cfg.initLoraWeights = .bool(true)
            weights.quantizeProjections(quantization)   // the loaded weights are the residual
            return (modules, cfg)
        }
        let s = config.adapter
        let targets = TargetModules.projections(s.targets, layers: weights.layers.count)
        guard !targets.isEmpty else {
            throw AdapterError.noTargetModules(targets: s.targets, model: config.model,
                                               sampleModules: Projection.allCases.map { $0.modulePath(layer: 0) })
        }
        // Data-driven starts: their statistics from the weights as loaded, before any is rewritten.
        let calibration = s.initMethod.needsCalibration ? try CalibrationLoader.measure(
            weights: weights, tokenizer: tokenizer, settings: s, path: config.calibration?.data ?? config.data, batchSize: config.batchSize,
            maxSeqLen: config.maxSeqLen, count: config.calibration?.batches ?? CalibrationSettings.defaultBatches, lanes: config.lanes) : nil
        var out: [(layer: Int, projection: Projection, factors: LoRAFactors, scale: Float)] = []
        var index: UInt64 = 0
        for (layer, p) in targets {
            let path = p.modulePath(layer: layer)
            if calibration?.dropped.contains(path) == true { index += 1; continue }   // EVA gave it rank 0
            guard var w = weights.layers[layer][p] as? Matrix else {
                throw TrainerError.invalidSettings("\(p.modulePath(layer: layer)) is already quantised; adapters start from float32 weights")
            }
            var rng = SeededGenerator(seed: s.seed, stream: index)
            index += 1
            weights.layers[layer][p] = Matrix(rows: 0, cols: 0)   // w holds the only reference: initialised in place
            var (frozen, f) = try initializeFrozen(&w, settings: s, quant: config.quant, calibration: calibration?.modules[path], using: &rng)
            if s.useDoRA { f.magnitude = LoRAFactors.doraMagnitude(frozen: frozen.dequantized(), A: f.A, B: f.B, scale: s.scale) }
            weights.layers[layer][p] = frozen
            out.append((layer, p, f, calibration?.scale(module: path, rank: f.rank, settings: s) ?? s.scale))
        }
        weights.quantizeProjections(quantization)   // the projections that carry no adapter
        var cfg = PEFTAdapterConfig(r: s.rank, loraAlpha: s.alpha, targetModules: TargetModules.peftTargets(s.targets, matched: out.map { $0.projection.modulePath(layer: $0.layer) }),
                                    useRslora: s.useRSLoRA, taskType: "CAUSAL_LM", baseModelNameOrPath: config.model)
        if let calibration {   // EVA's redistributed ranks and alphas
            let ranks = Dictionary(uniqueKeysWithValues: out.map { ($0.projection.modulePath(layer: $0.layer), $0.factors.rank) })
            (cfg.rankPattern, cfg.alphaPattern) = calibration.patterns(ranks: ranks, settings: s)
        }
        return (out, cfg)
    }

    /// One target weight's frozen base and adapter start: the one place where an initialiser
    /// meets the base's representation.
    ///
    /// - float32: the initialiser's residual (PiSSA: W − s·B·A; LoRA: W itself).
    /// - NF4 (PISSA.md §3): QPiSSA with T iterations for a PiSSA init (T = 1: nf4(W − s·B·A) of
    ///   the top-r factors of W), QLoRA (nf4(W), the usual LoRA start) for LoRA, LoftQ for `loftq`.
    static func initializeFrozen(_ w: inout Matrix, settings: AdapterSettings, quant: QuantSettings?, calibration: ModuleCalibration? = nil,
                                 using rng: inout SeededGenerator) throws -> (frozen: any LinearWeight, factors: LoRAFactors) {
        guard let quant else {
            if settings.initMethod == .loftq {
                throw TrainerError.invalidSettings("--init loftq needs an NF4 base (--quant nf4)")
            }
            let factors = try AdapterInitializer.initialize(&w, settings: settings, calibration: calibration, using: &rng)
            return (w, factors)
        }
        let (factors, residual) = try QuantizedInitializer.initialize(w, settings: settings, quant: quant, using: &rng)
        return (residual, factors)
    }

    /// The longest sequence trained on: `maxSeqLen`, or the model's positions when it has fewer
    /// (as `pissa eval` caps its window), so that no sequence runs past the rotary table.
    static func sequenceLimit(_ config: TrainConfig, model: DecoderModel) -> Int {
        min(config.maxSeqLen, model.maxPositions)
    }

    /// Refuses activations beyond the physical memory, before anything large is allocated.
    static func checkFits(_ config: TrainConfig, model: DecoderModel, maxRank: Int) throws {
        let (rows, overflow) = config.batchSize.multipliedReportingOverflow(by: sequenceLimit(config, model: model))
        let needed = overflow ? .infinity : TrainingScratch.estimatedBytes(config: model.config, capacityRows: rows, maxRank: maxRank,
                                                                           checkpointing: config.gradientCheckpointing ?? false, lanes: config.lanes)
        let available = Double(ProcessInfo.processInfo.physicalMemory)
        guard needed <= available else {
            throw TrainerError.tooLarge(neededBytes: needed, availableBytes: available, batchSize: config.batchSize,
                                        maxSeqLen: sequenceLimit(config, model: model), lanes: config.lanes)
        }
    }

    /// The model-side representation of `quant` (nil: float32), or why it cannot be used.
    static func frozenQuantization(_ quant: QuantSettings?) throws -> FrozenQuantization {
        guard let q = quant else { return .none }
        guard q.blockSize >= 2, q.blockSize % 2 == 0 else {
            throw TrainerError.invalidSettings("the NF4 block size must be even and at least 2 (found \(q.blockSize))")
        }
        guard q.iterations >= 1 else { throw TrainerError.invalidSettings("QPiSSA needs at least 1 iteration (found \(q.iterations))") }
        return .nf4(blockSize: q.blockSize, doubleQuant: q.doubleQuant)
    }
}

public enum TrainerError: Error, CustomStringConvertible, Equatable {
    case noExamples(path: String)
    case nonFiniteLoss(step: Int, lastCheckpoint: String?)
    case notResumable(path: String, reason: String)
    case invalidSettings(String)
    /// The activations would not fit in memory.
    case tooLarge(neededBytes: Double, availableBytes: Double, batchSize: Int, maxSeqLen: Int, lanes: Int)

    public var description: String {
        switch self {
        case let .noExamples(path): "\(path): no training examples"
        case let .nonFiniteLoss(step, last):
            "the loss or gradient became NaN or infinite at step \(step); try a lower --lr. " + (last.map { "The last good checkpoint is \($0)." } ?? "No checkpoint was saved yet.")
        case let .notResumable(path, reason): "cannot resume \(path): \(reason)"
        case let .invalidSettings(problem): "invalid training settings: \(problem)"
        case let .tooLarge(needed, available, batchSize, maxSeqLen, lanes):
            String(format: "training would need %.1f GB for its activations (--batch-size %d × --max-seq-len %d on %d lanes), "
                   + "more than this machine's %.1f GB; lower --batch-size, --max-seq-len or --lanes, or add --grad-checkpoint",
                   needed / 1e9, batchSize, maxSeqLen, lanes, available / 1e9)
        }
    }
}
