import Adapters
import Distributed
import Formats
import Foundation
import Model
import Tokenizer

/// Held-out metrics: masked loss over supervised tokens (here), and exact-match accuracy on math
/// problems (MathEvaluation.swift).
public enum Evaluation {
    /// Σ NLL over the supervised tokens of `examples`, in batches of `batchSize` (no gradients).
    /// With several ranks in `group`, rank k scores the k-th of `size` contiguous parts of the
    /// examples and the sums are added in rank order (the same result on every rank; `progress`
    /// counts this rank's examples).
    public static func loss(model: DecoderModel, adapters: ModelAdapters?, examples: [Example], batchSize: Int,
                            group: any ProcessGroup = SingleProcess(), progress: (Int) -> Void = { _ in }) -> Perplexity.Result {
        guard group.isDistributed else { return loss(model: model, adapters: adapters, examples: examples[...], batchSize: batchSize, progress: progress) }
        let part = loss(model: model, adapters: adapters, examples: examples[group.part(of: examples.count)], batchSize: batchSize, progress: progress)
        let sums = group.sumInRankOrder([part.totalNLL, Double(part.tokens)])
        return Perplexity.Result(totalNLL: sums[0], tokens: Int(sums[1]))
    }

    static func loss(model: DecoderModel, adapters: ModelAdapters?, examples: ArraySlice<Example>, batchSize: Int,
                     progress: (Int) -> Void) -> Perplexity.Result {
        var total = Perplexity.Result()
        var i = examples.startIndex
        while i < examples.endIndex {
            let b = Batch(examples: examples[i..<min(examples.endIndex, i + batchSize)])
            total = total + Perplexity.maskedNLL(model: model, tokens: b.tokens, targets: b.targets, lengths: b.lengths, adapters: adapters)
            i += batchSize
            progress(min(i, examples.endIndex) - examples.startIndex)
        }
        return total
    }

    /// Each example's Σ NLL over its supervised tokens (and their count), in batches of
    /// `batchSize`: the per-problem values a paired test of two models' held-out loss needs.
    /// Their sum is `loss`'s result, up to rounding.
    public static func lossPerExample(model: DecoderModel, adapters: ModelAdapters?, examples: [Example],
                                      batchSize: Int) -> [Perplexity.Result] {
        var out: [Perplexity.Result] = []
        for start in stride(from: 0, to: examples.count, by: max(1, batchSize)) {
            let b = Batch(examples: examples[start..<min(examples.count, start + batchSize)])
            let hidden = model.hiddenStates(tokens: b.tokens, lengths: b.lengths, adapters: adapters)
            let tokens = b.tokens.map(Int.init)
            var row = 0
            for n in b.lengths {
                // Runs of consecutive supervised rows (row r predicts token r + 1).
                var result = Perplexity.Result(), r = row
                while r < row + n {
                    guard b.targets[r] != Batch.ignored else { r += 1; continue }
                    var end = r
                    while end < row + n, b.targets[end] != Batch.ignored { end += 1 }
                    result = result + Perplexity.negativeLogLikelihood(model: model, hidden: hidden, targets: tokens, rows: r..<end)
                    r = end
                }
                out.append(result)
                row += n
            }
        }
        return out
    }
}

/// Why an evaluation cannot be made.
public enum EvaluationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Record `index` (1-based) cannot be evaluated.
    case record(index: Int, problem: String)

    public var description: String {
        switch self {
        case let .record(index, problem): "record \(index): \(problem)"
        }
    }
}

/// Adapters loaded for inference from a PEFT directory, owning their buffers.
public enum AdapterLoading {
    /// Each module of a PEFT adapter, checked against the model's weights.
    public static func peft(path: String, weights: ModelWeights) throws
        -> (modules: [(layer: Int, projection: Projection, factors: LoRAFactors, scale: Float)], config: PEFTAdapterConfig) {
        try placed(PEFTAdapter.read(directory: URL(fileURLWithPath: path)), path: path, weights: weights)
    }

    /// Each module of `loaded` (read from `path`) on its projection of `weights`, checked.
    static func placed(_ loaded: PEFTAdapter.Loaded, path: String, weights: ModelWeights) throws
        -> (modules: [(layer: Int, projection: Projection, factors: LoRAFactors, scale: Float)], config: PEFTAdapterConfig) {
        var out: [(layer: Int, projection: Projection, factors: LoRAFactors, scale: Float)] = [], problems: [String] = []
        for (module, f) in loaded.modules {
            guard let (layer, p) = weights.config.projection(modulePath: module), layer < weights.layers.count else {
                problems.append("\(module): not a projection of this model"); continue
            }
            guard p.isAdapterTarget else { problems.append("\(module): a mixture's router stays frozen; it takes no adapter"); continue }
            let w = weights.layers[layer][p]
            guard f.A.cols == w.cols, f.B.rows == w.rows else {
                problems.append("\(module): adapter \(f.B.rows)×\(f.A.cols) does not fit the weight \(w.rows)×\(w.cols)"); continue
            }
            guard f.rank <= min(w.rows, w.cols) else {
                problems.append("\(module): rank \(f.rank) exceeds min(\(w.rows), \(w.cols)) of its \(w.rows)×\(w.cols) weight"); continue
            }
            out.append((layer, p, f, loaded.scale(rank: f.rank, module: module)))
        }
        guard problems.isEmpty else { throw AdapterFileError.inconsistent(path: path, problems: problems) }
        return (out, loaded.config)
    }

    /// The adapters of a PEFT directory, ready to pass to the model.
    public static func inference(path: String, model: DecoderModel) throws -> TrainableAdapters {
        let (modules, _) = try peft(path: path, weights: model.weights)
        let adapters = try TrainableAdapters(initial: modules, config: model.config)
        adapters.refreshDoRANorms(model: model)
        return adapters
    }

    /// The adapter at `path` for inference on the model at `modelPath`. A run's trained adapter
    /// (`RUN/adapter`) from a PiSSA-family start that `pissa train` decomposed in memory is valid
    /// only on a residual that was never written; on that run's own model it is applied as its
    /// conversion to LoRA (adapter − `RUN/pissa_init`, rank 2r), which is exact for a float32
    /// residual. `note` says when that happened (and when the residual was NF4, so the result
    /// is only close).
    public static func inference(path: String, model: DecoderModel, modelPath: String) throws
        -> (adapters: TrainableAdapters, note: String?) {
        guard let run = RunAdapter(adapterPath: path), run.config.isModel(modelPath) else {
            return (try inference(path: path, model: model), nil)
        }
        let initial = try PEFTAdapter.read(directory: run.initial)
        let trained = try PEFTAdapter.read(directory: URL(fileURLWithPath: path))
        let converted = try PiSSAConversion.convert(initial: initial, trained: trained,
                                                    initialPath: run.initial.path, trainedPath: path)
        // A zero-B (LoRA) start converts to the trained adapter itself.
        let (modules, _) = try placed(PEFTAdapter.Loaded(config: converted.config, modules: converted.modules),
                                      path: path, weights: model.weights)
        let adapters = try TrainableAdapters(initial: modules, config: model.config)
        adapters.refreshDoRANorms(model: model)
        guard !converted.unchanged else { return (adapters, nil) }
        var note = "\(path) was trained on the PiSSA residual of \(modelPath), which the run computed in memory: "
            + "applied as adapter − \(run.initial.lastPathComponent) (a rank-\(converted.config.r) LoRA on \(modelPath), as `pissa convert` writes)"
        if run.quantizedResidual {
            note += "; the run's residual was NF4, so this is close to, not equal to, what the run evaluated"
        }
        return (adapters, note + ".")
    }
}

/// A trained adapter inside a `pissa train` run directory whose start was decomposed in memory.
struct RunAdapter {
    var initial: URL
    var config: TrainConfig

    /// `adapterPath` is `RUN/adapter` (or `RUN/checkpoints/step-N/adapter`) of an adapter run
    /// with an initial adapter (pissa_init, loftq_init or lora_init) and no `--adapter-path` start;
    /// nil otherwise.
    init?(adapterPath: String) {
        guard let (run, config) = RunDirectory.enclosing(adapter: adapterPath), config.method == .adapter, config.adapterPath == nil,
              let initial = run.existingInitialAdapter else { return nil }
        self.initial = initial
        self.config = config
    }

    var quantizedResidual: Bool { config.quant != nil }
}
