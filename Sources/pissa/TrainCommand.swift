import Adapters
import ArgumentParser
import Foundation
import Model
import Training

extension LRSchedule.Kind: ExpressibleByArgument {}
extension TrainConfig.Method: ExpressibleByArgument {}
extension StepParallelism: ExpressibleByArgument {}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune a PiSSA (or LoRA) adapter on JSONL or text data.",
        discussion: """
        RUN (--out) receives config.json, the initial adapter (pissa_init/ or lora_init/), the trained \
        adapter (adapter/, PEFT format, valid on the residual model), metrics.jsonl, loss.svg and \
        checkpoints/step-N/. Ctrl-C saves a checkpoint and stops; `pissa train --resume RUN` continues \
        from the newest checkpoint and reproduces an uninterrupted run exactly. With --method full every \
        weight is trained instead (the full fine-tuning baseline): RUN/model/ is a Hugging Face model \
        directory and each checkpoint holds the whole weights with their AdamW moments.
        """)

    /// Not `ModelOptions`: a resumed run takes its model from its config.json, so the default
    /// model need not exist then.
    @Option(help: ModelOptions.help)
    var model: String?

    @Option(help: "Training data: .jsonl (chat, prompt/completion, Alpaca or text records) or .txt.")
    var data: String?

    @Option(help: "Held-out data for eval_loss (same formats).")
    var valid: String?

    @Option(help: "Run directory.")
    var out: String?

    @Option(help: "Continue the run in this directory from its newest checkpoint (its config.json supplies the settings).")
    var resume: String?

    @Option(help: "What to train: adapter (PiSSA / LoRA factors on the frozen model) or full (every weight).")
    var method: TrainConfig.Method = TrainConfig.defaults.method

    @Flag(help: "Gradient checkpointing: keep only each layer's input and recompute its forward in backward (less memory, same gradients).")
    var gradCheckpoint = false

    @OptionGroup var adapter: AdapterOptions

    @Option(help: "Start from this PEFT adapter directory instead of --init (e.g. OUT/pissa_init on the residual model OUT).")
    var adapterPath: String?

    @Option(help: "Peak learning rate.")
    var lr: Double = TrainConfig.defaults.learningRate

    @Option(help: "Learning-rate schedule: constant, linear or cosine.")
    var schedule: LRSchedule.Kind = TrainConfig.defaults.schedule

    @Option(help: "Warmup as a fraction of the steps.")
    var warmupRatio: Double = TrainConfig.defaults.warmupRatio

    @Option(help: "Warmup in steps (overrides --warmup-ratio).")
    var warmupSteps: Int?

    @Option(help: "AdamW decoupled weight decay.")
    var weightDecay: Double = TrainConfig.defaults.weightDecay

    @Option(help: "Clip the global gradient norm to this value.")
    var maxGradNorm: Double = TrainConfig.defaults.maxGradNorm

    @Option(help: "Sequences per micro-batch.")
    var batchSize: Int = TrainConfig.defaults.batchSize

    @Option(help: "Micro-batches per optimiser step.")
    var gradAccum: Int = TrainConfig.defaults.gradientAccumulation

    @Option(help: "Longest sequence in tokens (longer examples are truncated, .txt is chunked).")
    var maxSeqLen: Int = TrainConfig.defaults.maxSeqLen

    @Option(help: "Optimiser steps (default: --epochs over the data).")
    var steps: Int?

    @Option(help: "Passes over the data when --steps is not given.")
    var epochs: Double = TrainConfig.defaults.epochs

    @Option(help: "Save a checkpoint every N steps (and always at the end).")
    var saveEvery: Int?

    @Option(help: "Evaluate on --valid every N steps.")
    var evalEvery: Int?

    @Option(help: "Checkpoints to keep.")
    var keepCheckpoints: Int = TrainConfig.defaults.keepCheckpoints

    @Flag(help: "Skip malformed data lines (counted and reported) instead of stopping.")
    var skipBadLines = false

    @Option(help: "Parallel lanes (cores) to use.")
    var lanes: Int = TrainConfig.defaults.lanes

    @Flag(help: "At the end, also write RUN/lora_converted: the trained adapter as a LoRA on the original model (`pissa convert`).")
    var convert = false

    @OptionGroup var quantization: QuantOptions

    func validate() throws {
        if resume == nil {
            guard data != nil else { throw ValidationError("--data is required (or --resume RUN).") }
            guard out != nil else { throw ValidationError("--out is required (or --resume RUN).") }
            try ModelOptions.validate(model: model)
        }
        guard lr > 0 else { throw ValidationError("--lr must be positive.") }
        guard batchSize >= 1, gradAccum >= 1 else { throw ValidationError("--batch-size and --grad-accum must be at least 1.") }
        guard maxSeqLen >= 2 else { throw ValidationError("--max-seq-len must be at least 2.") }
        if let steps { guard steps >= 1 else { throw ValidationError("--steps must be at least 1.") } }
        guard warmupRatio >= 0 && warmupRatio < 1 else { throw ValidationError("--warmup-ratio must be in [0, 1).") }
        guard maxGradNorm > 0 else { throw ValidationError("--max-grad-norm must be positive.") }
        if method == .full, adapterPath != nil {
            throw ValidationError("--adapter-path starts an adapter; it cannot be combined with --method full.")
        }
        if resume != nil, method != .adapter {
            throw ValidationError("--method comes from the run's config.json when resuming; drop it.")
        }
        if method == .full, quantization.quant != nil {
            throw ValidationError("--quant applies to the frozen base of an adapter run; --method full trains every weight in float32.")
        }
    }

    func makeConfig() throws -> TrainConfig {
        if let resume {
            let url = URL(fileURLWithPath: resume).appendingPathComponent("config.json")
            guard let data = try? Data(contentsOf: url), var config = try? JSONDecoder().decode(TrainConfig.self, from: data) else {
                throw ValidationError("--resume \(resume): no readable config.json; is it a run directory?")
            }
            config.output = resume   // the run is resumed where it lies, even if it was moved
            if let model, !config.isModel(model) {
                throw ValidationError("--model \(model) is not the run's model \(config.model) (from its config.json); drop --model to resume.")
            }
            if let steps { config.steps = steps }
            if let saveEvery { config.saveEvery = saveEvery }
            if let evalEvery { config.evalEvery = evalEvery }
            config.lanes = lanes
            if gradCheckpoint { config.gradientCheckpointing = true }
            return config
        }
        var c = TrainConfig(model: model ?? LanguageModel.defaultModelPath, data: data!, output: out!, adapter: adapter.settings)
        c.valid = valid
        c.adapterPath = adapterPath
        c.learningRate = lr
        c.schedule = schedule
        c.warmupRatio = warmupRatio
        c.warmupSteps = warmupSteps
        c.weightDecay = weightDecay
        c.maxGradNorm = maxGradNorm
        c.batchSize = batchSize
        c.gradientAccumulation = gradAccum
        c.maxSeqLen = maxSeqLen
        c.steps = steps
        c.epochs = epochs
        c.seed = adapter.seed
        c.saveEvery = saveEvery
        c.evalEvery = evalEvery
        c.keepCheckpoints = keepCheckpoints
        c.skipBadLines = skipBadLines
        c.lanes = lanes
        c.method = method
        c.gradientCheckpointing = gradCheckpoint ? true : nil
        c.quant = quantization.settings
        return c
    }

    func run() throws {
        let config = try makeConfig()
        let line = ProgressLine()
        let interrupt = InterruptFlag.install()
        let trainer = try Trainer(config: config, resume: resume != nil) { event in
            switch event {
            case let .loaded(examples, supervised, truncated, skipped, total, seconds):
                line.update(String(format: "loaded %d examples (%d supervised tokens, %d truncated, %d bad lines skipped) in %.1f s; %d steps",
                                   examples, supervised, truncated, skipped, seconds, total), force: true)
            case .resumed(let step):
                line.update("resumed from the checkpoint of step \(step)", force: true)
            default: break
            }
        }
        let started = Date()
        var firstStep: Int?
        try trainer.fit { event in
            switch event {
            case let .step(m, total):
                if firstStep == nil { firstStep = m.step - 1 }
                let done = m.step - (firstStep ?? 0)
                let eta = Date().timeIntervalSince(started) / Double(max(1, done)) * Double(total - m.step)
                var text = String(format: "step %d/%d  loss %.4f  lr %.2e  grad %.3f  %.0f tok/s  ETA %@",
                                  m.step, total, m.loss ?? .nan, m.learningRate ?? 0, m.gradNorm ?? 0, m.tokensPerSecond ?? 0,
                                  formatDuration(eta) as NSString)
                if let e = m.evalLoss { text += String(format: "  eval %.4f", e) }
                line.update(text, force: m.step == total || m.evalLoss != nil)
            case let .checkpoint(step, path):
                line.update("checkpoint step \(step): \(path)", force: true)
            case let .finished(step, path):
                line.finish()
                print("trained \(step) steps; \(config.method == .full ? "model" : "adapter") in \(trainer.outputURL.path), metrics in \(path)/metrics.jsonl, curve in \(path)/loss.svg")
            default: break
            }
            if interrupt.isSet {
                line.update("interrupted: saving a checkpoint", force: true)
                return .stop
            }
            return .proceed
        }
        if convert { try ConvertCommand.convertAfterTraining(run: config.output, steps: trainer.totalSteps) }
    }
}

/// Set by SIGINT (Ctrl-C) so that training stops at the next step boundary, with a checkpoint.
final class InterruptFlag: @unchecked Sendable {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0
    var isSet: Bool { Self.flag != 0 }

    static func install() -> InterruptFlag {
        signal(SIGINT) { _ in
            if InterruptFlag.flag != 0 { _exit(130) }   // a second Ctrl-C stops at once
            InterruptFlag.flag = 1
        }
        return InterruptFlag()
    }
}
