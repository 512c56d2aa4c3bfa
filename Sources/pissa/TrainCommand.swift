import Adapters
import ArgumentParser
import Distributed
import Foundation
import Model
import Training

extension LRSchedule.Kind: ExpressibleByArgument {}
extension TrainConfig.Method: ExpressibleByArgument {}
extension StepParallelism: ExpressibleByArgument {}

struct TrainCommand: ParsableCommand, Diagnosable, RankAware {
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

        `mpirun -np N pissa train …` trains data-parallel on N processes (one or several machines): \
        --batch-size is the global batch, shared by the ranks, and the run is the same as one \
        process's up to float rounding; rank 0 writes RUN. A run may be resumed with another N.
        """)

    /// Not `ModelOptions`: a resumed run takes its model from its config.json, so the default
    /// model need not exist then.
    @Option(help: ModelOptions.help)
    var model: String?

    @Option(help: "Training data: .jsonl (chat, prompt/completion, Alpaca or text records) or .txt.")
    var data: String?

    @Option(help: "Held-out data for eval_loss (same formats).")
    var valid: String?

    @Option(help: "Run directory: a new or empty one (an existing run is continued with --resume, or replaced with --overwrite).")
    var out: String?

    @Option(help: "Continue the run in this directory from its newest checkpoint (its config.json supplies the settings).")
    var resume: String?

    @Flag(help: "Start a new run in --out even though it holds a run or other files: the old run's checkpoints, adapter, config and metrics are deleted first (other files are kept).")
    var overwrite = false

    @Option(help: "What to train: adapter (PiSSA / LoRA factors on the frozen model) or full (every weight).")
    var method: TrainConfig.Method = TrainConfig.defaults.method

    @Flag(help: "Gradient checkpointing: keep only each layer's input and recompute its forward in backward (less memory, same gradients).")
    var gradCheckpoint = false

    @OptionGroup var adapter: AdapterOptions

    @Option(help: "Start from this PEFT adapter directory instead of --init (e.g. OUT/pissa_init on the residual model OUT).")
    var adapterPath: String?

    @Option(parsing: .unconditional, help: "Peak learning rate.")
    var lr: Double = TrainConfig.defaults.learningRate

    @Option(parsing: .unconditional, help: "LoRA+ (PEFT's loraplus_lr_ratio): lora_B (and DoRA's magnitude) learn at this many times --lr, lora_A at --lr. The LoRA+ paper suggests 16.")
    var loraplusLrRatio: Double?

    @Option(help: "Learning-rate schedule: constant, linear or cosine.")
    var schedule: LRSchedule.Kind = TrainConfig.defaults.schedule

    @Option(parsing: .unconditional, help: "Warmup as a fraction of the steps.")
    var warmupRatio: Double = TrainConfig.defaults.warmupRatio

    @Option(parsing: .unconditional, help: "Warmup in steps (overrides --warmup-ratio).")
    var warmupSteps: Int?

    @Option(parsing: .unconditional, help: "AdamW decoupled weight decay.")
    var weightDecay: Double = TrainConfig.defaults.weightDecay

    @Option(parsing: .unconditional, help: "Clip the global gradient norm to this value.")
    var maxGradNorm: Double = TrainConfig.defaults.maxGradNorm

    @Option(parsing: .unconditional, help: "Sequences per micro-batch.")
    var batchSize: Int = TrainConfig.defaults.batchSize

    @Option(parsing: .unconditional, help: "Micro-batches per optimiser step.")
    var gradAccum: Int = TrainConfig.defaults.gradientAccumulation

    @Option(parsing: .unconditional, help: "Longest sequence in tokens (longer examples are truncated, .txt is chunked).")
    var maxSeqLen: Int = TrainConfig.defaults.maxSeqLen

    @Option(parsing: .unconditional, help: "Optimiser steps (default: --epochs over the data).")
    var steps: Int?

    @Option(parsing: .unconditional, help: "Passes over the data when --steps is not given.")
    var epochs: Double = TrainConfig.defaults.epochs

    @Option(parsing: .unconditional, help: "Save a checkpoint every N steps (and always at the end).")
    var saveEvery: Int?

    @Option(parsing: .unconditional, help: "Evaluate on --valid every N steps.")
    var evalEvery: Int?

    @Option(parsing: .unconditional, help: "Checkpoints to keep.")
    var keepCheckpoints: Int = TrainConfig.defaults.keepCheckpoints

    @Flag(help: "Skip malformed data lines (counted and reported) instead of stopping.")
    var skipBadLines = false

    @Option(parsing: .unconditional, help: "Parallel lanes (cores) to use.")
    var lanes: Int = TrainConfig.defaults.lanes

    @Flag(help: "At the end, also write RUN/lora_converted: the trained adapter as a LoRA on the original model (`pissa convert`).")
    var convert = false

    @OptionGroup var quantization: QuantOptions

    @OptionGroup var calibration: CalibrationOptions

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        if method == .full, adapterPath != nil {
            throw ValidationError("--adapter-path starts an adapter; it cannot be combined with --method full.")
        }
        if resume != nil, method != .adapter {
            throw ValidationError("--method comes from the run's config.json when resuming; drop it.")
        }
        if adapter.useDora, method == .full || adapterPath != nil {
            throw ValidationError("--use-dora starts a DoRA adapter; " + (method == .full ? "--method full trains no adapter." : "an --adapter-path adapter says itself whether it is DoRA (use_dora in its adapter_config.json)."))
        }
        if calibration.calibData != nil, !adapter.initMethod.needsCalibration || adapterPath != nil || method == .full {
            throw ValidationError("--calib-data is the data of --init corda, eva or lora_ga; drop it or choose one of them.")
        }
        if method == .full, loraplusLrRatio != nil {
            throw ValidationError("--loraplus-lr-ratio sets lora_B's learning rate; --method full trains no adapter.")
        }
        if let loraplusLrRatio { try ArgumentCheck.number(loraplusLrRatio, "--loraplus-lr-ratio", above: 0) }
        if method == .full, quantization.quant != nil {
            throw ValidationError("--quant applies to the frozen base of an adapter run; --method full trains every weight in float32.")
        }
        if let resume {
            guard !overwrite else {
                throw ValidationError("--overwrite starts a new run and --resume continues one; pass --resume \(resume) alone to continue it.")
            }
            // Under mpirun only rank 0 reads and writes the run: the others may not see it.
            if Launch.rank == 0 {
                try PathCheck.existing(resume, "--resume", kind: .directory, hint: "a run directory (the --out of `pissa train`)")
            }
        } else {
            guard let data else { throw ValidationError("--data is required (or --resume RUN).") }
            guard let out else { throw ValidationError("--out is required (or --resume RUN).") }
            try ModelOptions.validate(model: model)
            let model = model ?? LanguageModel.defaultModelPath
            try PathCheck.existing(data, "--data", kind: .file, hint: "a .jsonl or .txt file")
            if let valid { try PathCheck.existing(valid, "--valid", kind: .file, hint: "a .jsonl or .txt file") }
            if let adapterPath { try PathCheck.existing(adapterPath, "--adapter-path", kind: .directory, hint: "a PEFT adapter directory") }
            if Launch.rank == 0 { do {
                try RunDirectory.checkNew(out, inputs: RunDirectory.inputs(model: model, data: data, valid: valid, adapterPath: adapterPath)
                                          + (calibration.calibData.map { [.init("--calib-data", $0)] } ?? []),
                                          overwrite: overwrite)
            } catch { throw ValidationError(error.description + ".") } }
        }
        try ArgumentCheck.number(lr, "--lr", above: 0)
        try ArgumentCheck.number(warmupRatio, "--warmup-ratio", above: 0, inclusive: true, atMost: 0.999)
        if let warmupSteps { try ArgumentCheck.integer(warmupSteps, "--warmup-steps", in: 0...Int.max) }
        try ArgumentCheck.number(weightDecay, "--weight-decay", above: 0, inclusive: true)
        try ArgumentCheck.number(maxGradNorm, "--max-grad-norm", above: 0)
        try ArgumentCheck.integer(batchSize, "--batch-size", in: 1...65536)
        try ArgumentCheck.integer(gradAccum, "--grad-accum", in: 1...65536)
        try ArgumentCheck.integer(maxSeqLen, "--max-seq-len", in: 2...1 << 20)
        if let steps { try ArgumentCheck.integer(steps, "--steps", in: 1...1_000_000_000) }
        try ArgumentCheck.number(epochs, "--epochs", above: 0, atMost: 1e6)
        if let saveEvery { try ArgumentCheck.integer(saveEvery, "--save-every", in: 1...Int.max) }
        if let evalEvery { try ArgumentCheck.integer(evalEvery, "--eval-every", in: 1...Int.max) }
        try ArgumentCheck.integer(keepCheckpoints, "--keep-checkpoints", in: 1...Int.max)
        try ArgumentCheck.lanes(lanes)
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
        c.loraplusLRRatio = loraplusLrRatio
        if adapter.initMethod.needsCalibration && adapterPath == nil { c.calibration = calibration.settings }
        return c
    }

    func run() throws {
        let group = Job.current
        // Rank 0's settings (a resumed run's come from its config.json, which only rank 0 reads).
        let config: TrainConfig = try group.broadcast(group.together("reading the settings") { group.isRoot ? try makeConfig() : nil })
        let line = ProgressLine()
        let interrupt = InterruptFlag.install()
        let trainer = try withSkipHint { try Trainer(config: config, resume: resume != nil, overwrite: overwrite, group: group) { event in
            switch event {
            case let .removedTemporaries(paths):
                noteRemovedTemporaries(paths)
            case let .loaded(examples, supervised, truncated, skipped, total, seconds):
                line.update(String(format: "loaded %d examples (%d supervised tokens, %d truncated, %d bad lines skipped) in %.1f s; %d steps",
                                   examples, supervised, truncated, skipped, seconds, total), force: true)
            case .resumed(let step):
                line.update("resumed from the checkpoint of step \(step)", force: true)
            default: break
            }
        } }
        if group.isDistributed {
            line.update(String(format: "data-parallel on %d ranks × %d lanes: each step sums %.1f MB of gradients over the ranks",
                               group.size, config.lanes, Double(trainer.gradientBytesPerStep) / 1e6), force: true)
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
                guard group.isRoot else { break }
                print("trained \(step) steps; \(config.method == .full ? "model" : "adapter") in \(trainer.outputURL.path), metrics in \(path)/metrics.jsonl, curve in \(path)/loss.svg")
            default: break
            }
            if interrupt.isSet {
                line.update("interrupted: saving a checkpoint", force: true)
                return .stop
            }
            return .proceed
        }
        if convert, group.isRoot { try ConvertCommand.convertAfterTraining(run: config.output, steps: trainer.totalSteps) }
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

/// Loading data in a command that has `--skip-bad-lines`: a bad line's message says the flag
/// would skip it (commands without the flag never suggest it).
func withSkipHint<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as DataError where error.isSkippable {
        throw CommandFailure(description: "\(error) (--skip-bad-lines skips such lines)")
    }
}
