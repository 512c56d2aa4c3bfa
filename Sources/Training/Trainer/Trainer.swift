import Adapters
import Distributed
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
///
/// Under `mpirun -np N` (`group` of N ranks) the run is data-parallel (`Trainer+Distributed`):
/// every rank holds the whole model and the same adapters, takes its share of each global
/// batch, and the gradients are summed over the ranks in a fixed order before clipping and
/// AdamW; rank 0 alone reads and writes the run directory.
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
    package let adapters: ModelAdapters
    let train: [Example]
    let valid: [Example]
    public let totalSteps: Int
    let schedule: LRSchedule
    let optimizer: AdamW
    var sampler: BatchSampler
    /// The run directory; only rank 0 reads or writes it.
    let run: RunDirectory
    /// The run directory's lock, held while this trainer lives (rank 0; nil on the others).
    private let output: OutputDirectory?
    /// The ranks training together (one process without `mpirun`).
    public let group: any ProcessGroup

    /// Opens (and locks) the run directory, loads the model and data, initialises (or reads) the
    /// adapter and writes the run's start. With `resume`, continues from the newest complete
    /// checkpoint in `config.output`; otherwise the directory must be new or empty, or with
    /// `overwrite` the run in it is deleted (checkpoints first) once everything has loaded.
    /// When anything fails before the run is written, a directory this call created is removed.
    ///
    /// With several ranks, every rank loads the model and data and computes the start itself;
    /// rank 0 alone opens the run directory, writes the start or reads the checkpoint (then sent
    /// to the others). If anything fails on any rank, every rank throws (the others
    /// `DistributedError.peerFailed`), and the start is checked to be bit-identical on all ranks.
    public init(config: TrainConfig, resume: Bool = false, overwrite: Bool = false, group: any ProcessGroup = SingleProcess(),
                progress: (Event) -> Void = { _ in }) throws {
        self.config = config
        self.group = group
        let t0 = Date()
        var opened: OutputDirectory?
        do {
            if group.isRoot {
                let (run, output) = try RunDirectory.open(config, resume: resume, overwrite: overwrite)
                opened = output
                self.run = run
                if !output.removedTemporaries.isEmpty { progress(.removedTemporaries(output.removedTemporaries)) }
                if resume { try run.checkResumable(config) }
            } else {
                run = RunDirectory(URL(fileURLWithPath: config.output))
            }
            output = opened
            switch config.method {
            case .adapter:
                let start = try AdapterStart.load(config)
                tokenizer = start.tokenizer
                model = DecoderModel(weights: start.weights, lanes: config.lanes)
                let trainable = try TrainableAdapters(initial: start.modules, config: start.weights.config)
                if let ratio = config.loraplusLRRatio { trainable.setLoraPlusRatio(ratio) }
                trainable.refreshDoRANorms(model: model)
                self.trainable = trainable
                fullWeights = nil
                store = trainable.store
                adapters = trainable.adapters
                adapterConfig = start.peftConfig
            case .full:
                var (weights, tokenizer) = try LanguageModel.loadParts(path: config.model)
                self.tokenizer = tokenizer
                let full = try TrainableWeights(moving: &weights)
                model = DecoderModel(weights: weights, lanes: config.lanes, buffers: full.buffers)
                trainable = nil
                fullWeights = full
                store = full.store
                adapters = ModelAdapters(config: weights.config)
                adapterConfig = nil
            }
            try Self.checkFits(config, model: model, maxRank: trainable?.maxRank ?? 0)
            try Self.checkRanks(config, group: group)

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
        } catch {
            _ = group.failedRanks(ok: false)
            opened?.discard()
            throw error
        }
        do {
            try group.together("loading the model and data") {}
            let resumed = try group.together("opening the run") { try group.isRoot ? startRun(resume: resume) : nil }
            if let step = try synchronizeStart(resumedStep: resumed) {
                trainable?.refreshDoRANorms(model: model)   // DoRA's norms of the restored factors
                progress(.resumed(step: step))
            }
        } catch {
            opened?.discard()
            throw error
        }
    }

    /// Rank 0: continues the newest checkpoint (its step) or writes the run's start (nil).
    private func startRun(resume: Bool) throws -> Int? {
        if resume, let step = try run.restoreLatest(into: self) { return step }
        try run.create(config: config)
        if let trainable, let adapterConfig {
            try AtomicDirectory.write(run.initialAdapterURL(for: config)) {
                try trainable.writePEFT(to: $0, config: adapterConfig, role: .initial)
            }
        }
        return nil
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
        let log = try group.isRoot ? MetricsLog(url: run.metricsURL, mode: .resume(afterStep: store.step)) : nil
        defer { log?.close() }
        let scratch = TrainingScratch(model: model, capacityRows: config.batchSize * Self.sequenceLimit(config, model: model), maxRank: trainable?.maxRank ?? 0,
                                      checkpointing: config.gradientCheckpointing ?? false)
        let started = Date()
        var logged: [StepMetrics] = []
        let previous = group.isRoot ? (try? MetricsLog.read(from: run.metricsURL)) ?? [] : []
        let elapsedBefore = previous.last(where: { $0.step <= store.step })?.elapsedSeconds ?? 0
        while store.step < totalSteps {
            let t0 = Date()
            store.zeroGradients()
            let batches = (0..<config.gradientAccumulation).map { _ in sampler.next(from: train) }
            let supervised = batches.reduce(0) { $0 + $1.supervisedCount }
            var lossSum = 0.0, tokens = 0
            for b in batches where b.supervisedCount > 0 {
                let part = share(of: b)
                if !part.lengths.isEmpty {
                    lossSum += model.lossAndGradients(tokens: part.tokens, targets: part.targets, lengths: part.lengths,
                                                      adapters: adapters, normalizer: Float(supervised), scratch: scratch)
                }
                tokens += b.tokens.count
            }
            let reduceSeconds = sumOverRanks(&lossSum)
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
            if group.isDistributed {
                metrics.ranks = group.size
                metrics.allReduceSeconds = reduceSeconds
            }
            if let every = config.evalEvery, !valid.isEmpty, store.step % every == 0 || store.step == totalSteps {
                metrics.evalLoss = evaluate(valid)
                _ = progress(.evaluated(step: store.step, loss: metrics.evalLoss!))
            }
            try log?.append(metrics)
            logged.append(metrics)
            let control = agreedControl(progress(.step(metrics, totalSteps: totalSteps)))
            let due = config.saveEvery.map { store.step % $0 == 0 } ?? false
            if group.isRoot, due || control == .stop || store.step == totalSteps {
                let path = try run.saveCheckpoint(self)
                _ = progress(.checkpoint(step: store.step, path: path))
            }
            if control == .stop { break }
        }
        if group.isRoot {
            try writeOutput(to: outputURL)
            try LossCurves.write(metrics: MetricsLog.read(from: run.metricsURL), to: run.lossCurveURL)
        }
        _ = progress(.finished(step: store.step, path: run.url.path))
        return logged
    }

    /// Mean NLL over the supervised tokens of `examples` (no gradients); with several ranks each
    /// scores its share of the examples (`Evaluation.loss(…, group:)`).
    public func evaluate(_ examples: [Example]) -> Double {
        Evaluation.loss(model: model, adapters: adapters, examples: examples, batchSize: config.batchSize, group: group).nll
    }

    /// The longest sequence trained on: `maxSeqLen`, or the model's positions when it has fewer
    /// (as `pissa eval` caps its window), so that no sequence runs past the rotary table.
    static func sequenceLimit(_ config: TrainConfig, model: DecoderModel) -> Int {
        min(config.maxSeqLen, model.maxPositions)
    }

    /// Refuses activations beyond the physical memory, before anything large is allocated.
    package static func checkFits(_ config: TrainConfig, model: DecoderModel, maxRank: Int) throws {
        let (rows, overflow) = config.batchSize.multipliedReportingOverflow(by: sequenceLimit(config, model: model))
        let needed = overflow ? .infinity : TrainingScratch.estimatedBytes(config: model.config, capacityRows: rows, maxRank: maxRank,
                                                                           checkpointing: config.gradientCheckpointing ?? false, lanes: config.lanes,
                                                                           trainedHead: model.trainsHead)
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
