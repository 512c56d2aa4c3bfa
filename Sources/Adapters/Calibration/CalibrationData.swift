import Foundation
import LinearAlgebra
import Model

/// Tokenised calibration data for the data-driven starts: batches of sequences packed back to
/// back, as training steps take them (`Training.CalibrationLoader` makes them from a data file).
public struct CalibrationBatch: Sendable, Equatable {
    /// (N) token ids of the batch's sequences, one after another.
    public var tokens: [Int32]
    /// (N) the token each row predicts, −1 where no loss is taken (LoRA-GA's loss).
    public var targets: [Int32]
    /// Each sequence's length.
    public var lengths: [Int]
    /// (N) whether the row's own token is supervised: Hugging Face's `labels != -100`, the rows
    /// EVA's `use_label_mask` keeps.
    public var supervised: [Bool]

    public init(tokens: [Int32], targets: [Int32], lengths: [Int], supervised: [Bool]) {
        precondition(tokens.count == targets.count && tokens.count == supervised.count && lengths.reduce(0, +) == tokens.count,
                     "CalibrationBatch: \(tokens.count) tokens, \(targets.count) targets, \(supervised.count) mask entries, lengths \(lengths)")
        self.tokens = tokens
        self.targets = targets
        self.lengths = lengths
        self.supervised = supervised
    }

    /// Supervised targets: LoRA-GA's loss is their mean.
    public var supervisedTargets: Int { targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }
}

/// The target projections of a model, by PEFT module path, with the (layer, projection) each is.
public struct CalibrationTargets: Sendable {
    public var modules: [(path: String, layer: Int, projection: Projection)]

    /// The projections of a model of `config`, in the order given (`TargetModules.projections`:
    /// layer by layer in the layout's order, as PEFT visits modules).
    public init(_ projections: [(layer: Int, projection: Projection)], config: ModelConfig) {
        modules = projections.map { (config.modulePath($0.projection, layer: $0.layer), $0.layer, $0.projection) }
    }
}

extension DecoderModel {
    /// Runs the model over every batch (no gradients) through the last layer the observer needs,
    /// showing each projection group's input to `observer`.
    func observe(_ batches: [CalibrationBatch], observer: ProjectionInputObserver) {
        for batch in batches {
            observeInputs(tokens: batch.tokens, lengths: batch.lengths, layers: observer.layersNeeded ?? config.numHiddenLayers,
                          observer: observer)
        }
    }
}

/// What the calibration data gave a data-driven start: per target module its statistic, and for
/// EVA the modules' adjusted lora_alpha and those left without an adapter.
public struct CalibrationResult: Sendable {
    public var modules: [String: ModuleCalibration]
    /// EVA: lora_alpha × rank / r of every module whose rank changed (`adjust_scaling_factors`).
    public var alphas: [String: Float] = [:]
    /// EVA: modules given rank 0 (no adapter).
    public var dropped: Set<String> = []
    /// Forward (and, for LoRA-GA, backward) passes over calibration batches.
    public var batchesRun: Int
    /// Wall time of the statistics and, for EVA, the components.
    public var seconds: Double

    /// `settings.initMethod`'s statistics of `weights` (float32) over `batches`: CorDA's input
    /// covariances, LoRA-GA's averaged gradients, EVA's components and ranks.
    public static func measure(weights: ModelWeights, targets: CalibrationTargets, batches: [CalibrationBatch],
                               settings: AdapterSettings, lanes: Int) throws -> CalibrationResult {
        let started = Date()
        guard !batches.isEmpty else { throw AdapterError.calibration("no calibration batches (is the calibration data empty?)") }
        if let expert = targets.modules.first(where: { !$0.projection.isDense }) {
            throw AdapterError.calibration("\(expert.path): a mixture's experts see only their routed tokens, so --init \(settings.initMethod.peftName) "
                + "cannot measure their inputs; target the attention projections (--targets q_proj,k_proj,v_proj,o_proj)")
        }
        switch settings.initMethod {
        case .corda:
            let model = DecoderModel(weights: weights, lanes: lanes)
            let collector = CorDACovariance(targets: targets, lanes: lanes)
            for batch in batches {
                collector.lengths = batch.lengths
                model.observe([batch], observer: collector)
            }
            return CalibrationResult(modules: try collector.covariances().mapValues { .covariance($0) }, batchesRun: batches.count,
                                     seconds: Date().timeIntervalSince(started))
        case .loraGA:
            let gradients = try LoRAGAGradient.estimate(weights: weights, targets: targets, batches: batches, lanes: lanes)
            return CalibrationResult(modules: gradients.mapValues { .gradient($0) }, batchesRun: batches.count, seconds: Date().timeIntervalSince(started))
        case .eva:
            let result = try EVA.run(model: DecoderModel(weights: weights, lanes: lanes), targets: targets, batches: batches, settings: settings)
            var out = CalibrationResult(modules: [:], batchesRun: result.batchesRun, seconds: 0)
            for m in result.modules {
                out.modules[m.path] = .components(m.a)
                if m.alpha != settings.alpha { out.alphas[m.path] = m.alpha }
            }
            out.dropped = Set(result.dropped)
            out.seconds = Date().timeIntervalSince(started)
            return out
        case .pissa, .pissaNiter, .lora, .gaussian, .loftq, .olora, .milora:
            return CalibrationResult(modules: [:], batchesRun: 0, seconds: 0)
        }
    }

    /// The scale of a module whose rank is `rank` (EVA's may differ from r).
    public func scale(module path: String, rank: Int, settings: AdapterSettings) -> Float {
        let alpha = alphas[path] ?? settings.alpha
        return settings.useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank)
    }

    /// `rank_pattern` / `alpha_pattern` entries for the modules whose rank or alpha is not r / lora_alpha.
    public func patterns(ranks: [String: Int], settings: AdapterSettings) -> (ranks: [String: Int], alphas: [String: Float]) {
        (ranks.filter { $0.value != settings.rank }, alphas.filter { $0.value != settings.alpha })
    }
}
