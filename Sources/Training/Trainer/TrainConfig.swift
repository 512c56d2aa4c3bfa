import Adapters
import Foundation
import LinearAlgebra
import Model

/// Everything that defines a training run; saved as `RUN/config.json` and compared on resume.
public struct TrainConfig: Codable, Sendable, Equatable {
    public enum Method: String, Codable, Sendable, CaseIterable {
        /// Train LoRA factors on frozen weights (PiSSA, LoRA, … by `initMethod` or `adapterPath`).
        case adapter
        /// Train every weight (the embedding, tied to the head, every projection and norm): the
        /// paper's full fine-tuning baseline. The run's output is a Hugging Face model directory.
        case full
    }

    public var model: String
    public var data: String
    public var valid: String?
    public var output: String
    public var method: Method = .adapter
    /// How the adapter starts (ignored when `adapterPath` is set).
    public var adapter: AdapterSettings
    /// Start from an existing PEFT adapter instead (e.g. `OUT/pissa_init` on the residual `OUT`).
    public var adapterPath: String?
    public var learningRate: Double = 2e-5
    public var schedule: LRSchedule.Kind = .cosine
    public var warmupRatio: Double = 0.03
    public var warmupSteps: Int?
    public var weightDecay: Double = 0
    public var maxGradNorm: Double = 1
    public var batchSize: Int = 4
    public var gradientAccumulation: Int = 1
    public var maxSeqLen: Int = 512
    /// Optimiser steps; when nil, `epochs` decides.
    public var steps: Int?
    public var epochs: Double = 1
    public var seed: UInt64 = 0
    public var saveEvery: Int?
    public var evalEvery: Int?
    public var keepCheckpoints: Int = 2
    public var skipBadLines: Bool = false
    public var lanes: Int = 2
    /// Recompute each layer's forward during backward, keeping only its input (less memory,
    /// identical gradients). Optional so that configs written before it existed still load.
    public var gradientCheckpointing: Bool?
    /// NF4 frozen base (QPiSSA with a PiSSA init, QLoRA with LoRA, LoftQ); nil (also every config
    /// written before this setting existed) is the float32 base.
    public var quant: QuantSettings?
    /// LoRA+ (arXiv 2402.12354, PEFT's `loraplus_lr_ratio`): every lora_B (and DoRA magnitude
    /// vector, as PEFT groups 1-D parameters with B) learns at this many times the learning rate
    /// of lora_A. nil (also configs written before it existed): one learning rate.
    public var loraplusLRRatio: Double?
    /// The calibration batches of a data-driven start (CorDA, EVA, LoRA-GA); nil: the training
    /// data, `CalibrationSettings.defaultBatches` batches.
    public var calibration: CalibrationSettings?

    public init(model: String, data: String, output: String, adapter: AdapterSettings) {
        self.model = model
        self.data = data
        self.output = output
        self.adapter = adapter
    }

    /// Every setting at its default (the paths empty): `pissa train`'s options take theirs from here.
    public static let defaults = TrainConfig(model: "", data: "", output: "", adapter: AdapterSettings())

    /// Total optimiser steps for a data set of `examples` examples.
    public func totalSteps(examples: Int) -> Int {
        if let steps { return steps }
        let perEpoch = Double((examples + batchSize - 1) / batchSize) / Double(gradientAccumulation)
        return max(1, Int((perEpoch * epochs).rounded(.up)))
    }

    public func lrSchedule(totalSteps: Int) -> LRSchedule {
        LRSchedule(kind: schedule, baseLearningRate: learningRate, totalSteps: totalSteps,
                   warmup: warmupSteps.map { .steps($0) } ?? .ratio(warmupRatio))
    }

    /// Whether `path` names this run's model (relative paths against the working directory,
    /// symbolic links followed).
    public func isModel(_ path: String) -> Bool {
        func canonical(_ p: String) -> URL { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath() }
        return canonical(path) == canonical(model)
    }

    /// Settings that must not change between a run and its resumption.
    public func isResumable(as other: TrainConfig) -> Bool {
        var a = self, b = other
        a.steps = nil; b.steps = nil
        a.saveEvery = nil; b.saveEvery = nil
        a.evalEvery = nil; b.evalEvery = nil
        a.lanes = 0; b.lanes = 0
        a.gradientCheckpointing = nil; b.gradientCheckpointing = nil
        a.output = ""; b.output = ""   // a run directory may be moved between runs
        return a == b
    }
}
