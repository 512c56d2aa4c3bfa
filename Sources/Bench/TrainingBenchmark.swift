import Adapters
import Distributed
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// Training-step speed on a real model, measured the way scripts/bench/peft_train_bench.py
/// measures PyTorch + PEFT: each step is forward + backward + AdamW on one batch.
public enum TrainingBenchmark {
    public enum Data: Sendable {
        /// `batch` sequences of `length` tokens, ids (i·7919 + 13) mod (V − 3) + 3 (V the vocabulary;
        /// mod 49149 for SmolLM2, as scripts/bench/peft_train_bench.py), loss on every token.
        case text(length: Int)
        /// Records of a math JSONL, prompt masked, `batch` consecutive records per step (packed).
        case jsonl(path: String)
    }

    public struct Result: Codable, Sendable {
        /// `adapter` or `full` (every weight trained; `initMethod` is then irrelevant).
        public var method: String
        public var gradientCheckpointing: Bool
        public var initMethod: String
        /// The frozen base: none (float32) or nf4.
        public var quant: String
        /// How the lanes shared each step (`StepParallelism`).
        public var parallelism: String
        public var data: String
        public var batch: Int
        public var steps: Int
        public var medianStepSeconds: Double
        public var tokensPerSecond: Double
        public var peakRSSMegabytes: Double
        public var initSeconds: Double
        /// Bytes of the seven projections of all layers as trained (float32 or NF4 codes + absmax).
        public var projectionMegabytes: Double
        /// Useful GFLOP/s of the timed steps (`StepFLOPs`: real tokens, supervised head rows).
        public var gflopPerSecond: Double
        /// `GemmRate.measure` on the same lanes just before and just after the steps (the better
        /// of the two): the machine's sgemm rate in this run, against which `gflopPerSecond` is read.
        public var sgemmGFLOPPerSecond: Double
    }

    /// With `method: .full` every weight is trained (moved into a `TrainableWeights` store);
    /// `checkpointing` recomputes each layer's forward in backward.
    public static func run(model path: String, settings: AdapterSettings, data: Data, batch: Int, steps: Int,
                           lanes: Int = 2, method: TrainConfig.Method = .adapter, checkpointing: Bool = false,
                           quant: QuantSettings? = nil, parallelism: StepParallelism = .automatic) throws -> Result {
        var config = TrainConfig(model: path, data: "", output: "", adapter: settings)
        config.lanes = lanes
        config.quant = quant
        let t0 = Date()
        let model: DecoderModel, store: ParameterStore, adapters: ModelAdapters, maxRank: Int
        let keepAlive: AnyObject, tokenizer: BPETokenizer
        switch method {
        case .adapter:
            let start = try AdapterStart.load(config)
            tokenizer = start.tokenizer
            model = DecoderModel(weights: start.weights, lanes: lanes)
            let trainable = try TrainableAdapters(initial: start.modules, config: start.weights.config)
            (store, adapters, maxRank, keepAlive) = (trainable.store, trainable.adapters, trainable.maxRank, trainable)
        case .full:
            let parts = try LanguageModel.loadParts(path: path)
            var weights = parts.weights
            tokenizer = parts.tokenizer
            let full = try TrainableWeights(moving: &weights)
            model = DecoderModel(weights: weights, lanes: lanes, buffers: full.buffers)
            (store, adapters, maxRank, keepAlive) = (full.store, ModelAdapters(config: weights.config), 0, full)
        }
        let initSeconds = Date().timeIntervalSince(t0)
        var batches: [Batch] = []
        switch data {
        case .text(let length):
            let ids = max(1, model.config.vocabSize - 3)
            let examples = (0..<batch).map { b in
                Example(tokens: (0..<length).map { Int32(((b * length + $0) * 7919 + 13) % ids + 3) },
                        supervised: (0..<length).map { $0 > 0 })
            }
            batches = Array(repeating: Batch(examples: examples), count: steps + 1)
        case .jsonl(let file):
            let examples = try DatasetLoader(tokenizer: tokenizer, maxSeqLen: 512).load(path: file).examples
            for i in 0...steps {
                let slice = examples[(i * batch) % examples.count ..< min(examples.count, (i * batch) % examples.count + batch)]
                batches.append(Batch(examples: slice))
            }
        }
        let capacity = batches.map(\.tokens.count).max() ?? 1
        config.maxSeqLen = max(2, batches.flatMap(\.lengths).max() ?? 2)
        config.batchSize = (capacity + config.maxSeqLen - 1) / config.maxSeqLen
        try Trainer.checkFits(config, model: model, maxRank: maxRank)
        let scratch = TrainingScratch(model: model, capacityRows: capacity, maxRank: maxRank, checkpointing: checkpointing)
        let sgemmBefore = GemmRate.measure(lanes: lanes)
        let optimizer = AdamW()
        var times: [Double] = [], tokens = 0, flops = 0.0
        for (i, b) in batches.enumerated() {
            let start = Date()
            store.zeroGradients()
            _ = model.lossAndGradients(tokens: b.tokens, targets: b.targets, lengths: b.lengths, adapters: adapters,
                                       normalizer: Float(max(1, b.supervisedCount)), scratch: scratch, parallelism: parallelism)
            optimizer.step(store, learningRate: 2e-5)
            if i > 0 {
                times.append(Date().timeIntervalSince(start))
                tokens += b.lengths.reduce(0, +)
                flops += StepFLOPs.count(weights: model.weights, adapters: adapters, lengths: b.lengths,
                                         supervised: b.supervisedCount, trainsWeights: method == .full)
            }
        }
        // The machine's rate drifts (other tenants): the better of a measurement before and after.
        let sgemm = max(sgemmBefore, GemmRate.measure(lanes: lanes))
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let description: String
        switch data {
        case .text(let length): description = "text \(batch)×\(length)"
        case .jsonl(let file): description = file
        }
        withExtendedLifetime(keepAlive) {}
        return Result(method: method.rawValue, gradientCheckpointing: checkpointing, initMethod: settings.initMethod.peftName,
                      quant: quant == nil ? "none" : "nf4", parallelism: parallelism.rawValue, data: description, batch: batch, steps: times.count,
                      medianStepSeconds: times.upperMedian, tokensPerSecond: Double(tokens) / times.reduce(0, +),
                      peakRSSMegabytes: Double(usage.ru_maxrss) / 1024, initSeconds: initSeconds,
                      projectionMegabytes: Double(model.weights.projectionBytes) / 1_048_576,
                      gflopPerSecond: flops / times.reduce(0, +) / 1e9, sgemmGFLOPPerSecond: sgemm)
    }
}
