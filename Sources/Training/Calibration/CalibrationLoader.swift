import Adapters
import Foundation
import Model
import Tokenizer

/// Where the data-driven starts (CorDA, EVA, LoRA-GA) take their calibration batches: a data file
/// as `pissa train` reads it, and how many batches.
public struct CalibrationSettings: Codable, Sendable, Equatable {
    /// `--calib-data`; nil: the training data.
    public var data: String?
    /// `--calib-batches`: batches of the run's batch size (EVA cycles through them until it
    /// converges; CorDA and LoRA-GA take each once).
    public var batches: Int

    public static let defaultBatches = 8

    public init(data: String? = nil, batches: Int = CalibrationSettings.defaultBatches) {
        self.data = data
        self.batches = batches
    }
}

/// Calibration batches from a data file: its examples in the seeded order training draws them
/// (`BatchSampler` with the run's seed), the first `count` batches of `batchSize`.
public enum CalibrationLoader {
    public static func batches(path: String, tokenizer: BPETokenizer, batchSize: Int, maxSeqLen: Int, count: Int,
                               seed: UInt64) throws -> [CalibrationBatch] {
        let examples = try DatasetLoader(tokenizer: tokenizer, maxSeqLen: maxSeqLen).load(path: path).examples
        guard !examples.isEmpty else { throw AdapterError.calibration("\(path) holds no example") }
        var sampler = BatchSampler(count: examples.count, batchSize: batchSize, seed: seed)
        return (0..<count).map { _ in calibrationBatch(sampler.next().map { examples[$0] }) }
    }

    /// A training batch with, per row, whether its own token is supervised (Hugging Face's
    /// `labels != -100`: `supervised[t]`, and for the first token that of the second, which
    /// is what text examples have and prompted ones do not).
    static func calibrationBatch(_ examples: [Example]) -> CalibrationBatch {
        let batch = Batch(examples: examples)
        let supervised = examples.flatMap { e in
            e.supervised.indices.map { t in t == 0 ? e.count > 1 && e.supervised[1] : e.supervised[t] }
        }
        return CalibrationBatch(tokens: batch.tokens, targets: batch.targets, lengths: batch.lengths, supervised: supervised)
    }

    /// The calibration statistics of `settings.initMethod` on `weights` (their target projections)
    /// over `count` batches of `path`.
    public static func measure(weights: ModelWeights, tokenizer: BPETokenizer, settings: AdapterSettings, path: String,
                               batchSize: Int, maxSeqLen: Int, count: Int, lanes: Int) throws -> CalibrationResult {
        let targets = CalibrationTargets(try TargetModules.projections(settings.targets, config: weights.config), config: weights.config)
        let batches = try batches(path: path, tokenizer: tokenizer, batchSize: batchSize,
                                  maxSeqLen: min(maxSeqLen, weights.config.maxPositionEmbeddings), count: count, seed: settings.seed)
        return try CalibrationResult.measure(weights: weights, targets: targets, batches: batches, settings: settings, lanes: lanes)
    }
}
