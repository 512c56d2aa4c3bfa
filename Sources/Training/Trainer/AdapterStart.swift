import Adapters
import Foundation
import Formats
import LinearAlgebra
import Model
import Tokenizer

/// An adapter run's frozen model and its adapters' starting factors, made while the model loads.
///
/// Each projection is read, initialised (PiSSA replaces a target weight by its residual) and,
/// with NF4 (`config.quant`), quantised as soon as it is read; its float32 matrix is dropped
/// before the next tensor is read (`ModelWeights.ProjectionPreparer`). So a 7B model whose
/// float32 weights alone would take 27 GB starts in its NF4 size plus one float32 matrix and
/// its temporaries. Every projection of every layer ends quantised with NF4 (targets or not, as
/// bitsandbytes' 4-bit loading does). The order and the random streams are those of initialising
/// the whole model after loading it, so the bits are the same (`AdapterStartTests`).
package struct AdapterStart {
    package typealias Module = (layer: Int, projection: Projection, factors: LoRAFactors, scale: Float)

    package var weights: ModelWeights
    package var tokenizer: BPETokenizer
    package var modules: [Module]
    package var peftConfig: PEFTAdapterConfig

    /// Loads `config.model` and starts its adapters: from `config.adapterPath` (a PEFT adapter on
    /// the residual model at `config.model`), else by `config.adapter`'s initialiser. The
    /// data-driven starts (CorDA, EVA, LoRA-GA) measure the model as loaded before any weight is
    /// rewritten, so they load it whole first (`calibrated`).
    package static func load(_ config: TrainConfig) throws -> AdapterStart {
        let quantization = try Trainer.frozenQuantization(config.quant)
        if let path = config.adapterPath {
            let (weights, tokenizer) = try LanguageModel.loadParts(path: config.model) { _, _, _, w in quantization.apply(w) }
            var (modules, cfg) = try AdapterLoading.peft(path: path, weights: weights)
            cfg.initLoraWeights = .bool(true)
            return AdapterStart(weights: weights, tokenizer: tokenizer, modules: modules, peftConfig: cfg)
        }
        let s = config.adapter
        if s.initMethod.needsCalibration { return try calibrated(config, quantization: quantization) }
        var modules: [Module] = []
        var index: UInt64 = 0
        let (weights, tokenizer) = try LanguageModel.loadParts(path: config.model) { layer, p, module, w in
            guard p.isAdapterTarget, TargetModules.matches(module: module, targets: s.targets) else { return quantization.apply(w) }
            var rng = SeededGenerator(seed: s.seed, stream: index)
            index += 1
            var w = w
            var (frozen, f) = try initializeFrozen(&w, settings: s, quant: config.quant, using: &rng)
            if s.useDoRA { f.magnitude = LoRAFactors.doraMagnitude(frozen: frozen.dequantized(), A: f.A, B: f.B, scale: s.scale) }
            modules.append((layer, p, f, s.scale))
            return frozen
        }
        let c = weights.config
        let targets = try TargetModules.projections(s.targets, config: c)
        guard !targets.isEmpty else {
            throw AdapterError.noTargetModules(targets: s.targets, model: config.model,
                                               sampleModules: c.projections.map { c.modulePath($0, layer: 0) })
        }
        if modules.count < targets.count,
           let stored = targets.first(where: { t in !modules.contains { $0.layer == t.layer && $0.projection == t.projection } }) {
            throw TrainerError.invalidSettings("\(c.modulePath(stored.projection, layer: stored.layer)) is already quantised; adapters start from float32 weights")
        }
        let cfg = PEFTAdapterConfig(r: s.rank, loraAlpha: s.alpha, targetModules: TargetModules.peftTargets(s.targets, matched: targets.map { c.modulePath($0.projection, layer: $0.layer) }),
                                    useRslora: s.useRSLoRA, taskType: "CAUSAL_LM", baseModelNameOrPath: config.model)
        return AdapterStart(weights: weights, tokenizer: tokenizer, modules: modules, peftConfig: cfg)
    }

    /// A data-driven start: the whole model in float32, its calibration statistics from
    /// `config.calibration`'s batches (the training data by default), then each target
    /// initialised in order with its own random stream (EVA may give a module rank 0: it then has
    /// no adapter, and its stream is skipped), then every projection quantised with NF4 when asked.
    private static func calibrated(_ config: TrainConfig, quantization: FrozenQuantization) throws -> AdapterStart {
        var (weights, tokenizer) = try LanguageModel.loadParts(path: config.model)
        let s = config.adapter, c = weights.config
        let targets = try TargetModules.projections(s.targets, config: c)
        guard !targets.isEmpty else {
            throw AdapterError.noTargetModules(targets: s.targets, model: config.model,
                                               sampleModules: c.projections.map { c.modulePath($0, layer: 0) })
        }
        let calibration = try CalibrationLoader.measure(
            weights: weights, tokenizer: tokenizer, settings: s, path: config.calibration?.data ?? config.data, batchSize: config.batchSize,
            maxSeqLen: config.maxSeqLen, count: config.calibration?.batches ?? CalibrationSettings.defaultBatches, lanes: config.lanes)
        var out: [Module] = []
        var index: UInt64 = 0
        for (layer, p) in targets {
            let path = c.modulePath(p, layer: layer)
            if calibration.dropped.contains(path) { index += 1; continue }   // EVA gave it rank 0
            guard var w = weights.layers[layer][p] as? Matrix else {
                throw TrainerError.invalidSettings("\(path) is already quantised; adapters start from float32 weights")
            }
            var rng = SeededGenerator(seed: s.seed, stream: index)
            index += 1
            weights.layers[layer][p] = Matrix(rows: 0, cols: 0)   // w holds the only reference: initialised in place
            var (frozen, f) = try initializeFrozen(&w, settings: s, quant: config.quant, calibration: calibration.modules[path], using: &rng)
            if s.useDoRA { f.magnitude = LoRAFactors.doraMagnitude(frozen: frozen.dequantized(), A: f.A, B: f.B, scale: s.scale) }
            weights.layers[layer][p] = frozen
            out.append((layer, p, f, calibration.scale(module: path, rank: f.rank, settings: s)))
        }
        weights.quantizeProjections(quantization)   // the projections that carry no adapter
        var cfg = PEFTAdapterConfig(r: s.rank, loraAlpha: s.alpha, targetModules: TargetModules.peftTargets(s.targets, matched: out.map { c.modulePath($0.projection, layer: $0.layer) }),
                                    useRslora: s.useRSLoRA, taskType: "CAUSAL_LM", baseModelNameOrPath: config.model)
        let ranks = Dictionary(uniqueKeysWithValues: out.map { (c.modulePath($0.projection, layer: $0.layer), $0.factors.rank) })
        (cfg.rankPattern, cfg.alphaPattern) = calibration.patterns(ranks: ranks, settings: s)   // EVA's redistributed ranks and alphas
        return AdapterStart(weights: weights, tokenizer: tokenizer, modules: out, peftConfig: cfg)
    }

    /// One target weight's frozen base and adapter start: the one place where an initialiser
    /// meets the base's representation.
    ///
    /// - float32: the initialiser's residual (PiSSA: W − s·B·A; LoRA: W itself).
    /// - NF4 (docs/METHOD.md §3): QPiSSA with T iterations for a PiSSA init (T = 1: nf4(W − s·B·A) of
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
}
