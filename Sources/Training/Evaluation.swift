import Adapters
import Formats
import Foundation
import Model
import Tokenizer

/// Held-out metrics: masked loss over supervised tokens, and exact-match accuracy on math problems.
public enum Evaluation {
    /// Σ NLL over the supervised tokens of `examples`, in batches of `batchSize` (no gradients).
    public static func loss(model: DecoderModel, adapters: ModelAdapters?, examples: [Example], batchSize: Int,
                            progress: (Int) -> Void = { _ in }) -> Perplexity.Result {
        var total = Perplexity.Result()
        var i = 0
        while i < examples.count {
            let b = Batch(examples: examples[i..<min(examples.count, i + batchSize)])
            total = total + Perplexity.maskedNLL(model: model, tokens: b.tokens, targets: b.targets, lengths: b.lengths, adapters: adapters)
            i += batchSize
            progress(min(i, examples.count))
        }
        return total
    }

    public struct MathResult: Codable, Sendable {
        public var correct: Int
        public var total: Int
        public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }
        /// The first few (prompt, generated, reference) triples, for a look at what the model does.
        public var samples: [Sample]
        public struct Sample: Codable, Sendable {
            public var prompt: String
            public var generated: String
            public var reference: String
        }
    }

    /// Greedy-generates an answer to each `{"prompt", "completion"}` record and compares the final
    /// number (`#### N`, else the last number) with the completion's.
    public static func mathAccuracy(model: DecoderModel, adapters: ModelAdapters?, tokenizer: BPETokenizer,
                                    records: [(prompt: String, completion: String)], maxTokens: Int = 128,
                                    progress: (_ done: Int, _ correct: Int) -> Void = { _, _ in }) throws -> MathResult {
        var correct = 0, samples: [MathResult.Sample] = []
        var stops = Set<Int>()
        if let eos = tokenizer.special.eos { stops.insert(eos) }
        for (i, r) in records.enumerated() {
            let prompt = tokenizer.encode(r.prompt, addSpecialTokens: true)
            let tokens: [Int]
            do {
                (tokens, _) = try Generation.run(model: model, prompt: prompt, maxTokens: maxTokens, sampling: .greedy,
                                                 stopTokens: stops, adapters: adapters)
            } catch {
                throw EvaluationError.record(index: i + 1, problem: error.description)
            }
            let text = tokenizer.decode(tokens, skipSpecialTokens: true)
            if MathAnswer.isCorrect(generated: text, reference: r.completion) { correct += 1 }
            if samples.count < 5 { samples.append(.init(prompt: r.prompt, generated: text, reference: r.completion)) }
            progress(i + 1, correct)
        }
        return MathResult(correct: correct, total: records.count, samples: samples)
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
            guard let (layer, p) = Projection.parse(modulePath: module), layer < weights.layers.count else {
                problems.append("\(module): not a projection of this model"); continue
            }
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
        let adapters = try TrainableAdapters(initial: modules, layerCount: model.config.numHiddenLayers)
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
        let adapters = try TrainableAdapters(initial: modules, layerCount: model.config.numHiddenLayers)
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
