import Adapters
import ArgumentParser
import Experiments
import Formats
import Foundation
import Training

extension CompareMethod: ExpressibleByArgument {}

struct CompareCommand: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Train several methods with identical hyperparameters and write a report with figures.",
        discussion: """
        Every method × seed is a full `pissa train` run (REPORT/runs/METHOD-seedS/). The settings are \
        the paper's: alpha = r, dropout 0, AdamW, cosine schedule, warmup ratio 0.03, weight decay 0, \
        loss on response tokens only; only the start differs. REPORT receives report.md, loss.svg, \
        loss_first20.svg, grad_norm.svg (and heldout_loss.svg when evaluated more than once), \
        results.json (every measurement, from which the report is made) and config.json.
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Training data (.jsonl or .txt, as `pissa train` reads it).")
    var data: String

    @Option(help: "Held-out data: loss on its supervised tokens; exact-match accuracy for prompt/completion math records.")
    var test: String?

    @Option(help: "Comma-separated methods: \(CompareMethod.allCases.map(\.rawValue).joined(separator: ", ")).")
    var methods: String = CompareConfig.defaults.methods.map(\.rawValue).joined(separator: ",")

    @Option(help: "Comma-separated seeds; each method runs once per seed.")
    var seeds: String = CompareConfig.defaults.seeds.map(String.init).joined(separator: ",")

    @Option(parsing: .unconditional, help: "Adapter rank r (alpha = r unless --alpha).")
    var rank: Int = CompareConfig.defaults.rank

    @Option(parsing: .unconditional, help: "lora_alpha (default: the rank, as in the paper).")
    var alpha: Float?

    @Option(name: .customLong("pissa-init"), help: "SVD for the PiSSA-family methods: pissa or pissa_niter_K.")
    var pissaInit: InitMethod = CompareConfig.defaults.pissaInit

    @Option(parsing: .unconditional, help: "QPiSSA's alternating iterations T (the paper uses 5).")
    var qpissaIters: Int = CompareConfig.defaults.qpissaIterations

    @Option(parsing: .unconditional, help: "Optimiser steps per run.")
    var steps: Int = CompareConfig.defaults.steps

    @Option(parsing: .unconditional, help: "Peak learning rate, the same for every method. Of 5e-5, 2e-4 and 1e-3, both LoRA and PiSSA did best at the default on SmolLM2's math runs (docs/RESULTS.md §3).")
    var lr: Double = CompareConfig.defaults.learningRate

    @Option(parsing: .unconditional, help: "LoRA+ for every adapter method: lora_B learns at this many times --lr (PEFT's loraplus_lr_ratio).")
    var loraplusLrRatio: Double?

    @Option(parsing: .unconditional, help: "Training batches the data-driven starts (corda, eva, loraga) learn from.")
    var calibBatches: Int = CalibrationSettings.defaultBatches

    @Option(parsing: .unconditional, help: "Sequences per micro-batch.")
    var batchSize: Int = CompareConfig.defaults.batchSize

    @Option(parsing: .unconditional, help: "Micro-batches per optimiser step.")
    var gradAccum: Int = CompareConfig.defaults.gradientAccumulation

    @Option(parsing: .unconditional, help: "Longest sequence in tokens.")
    var maxSeqLen: Int = CompareConfig.defaults.maxSeqLen

    @Option(parsing: .unconditional, help: "Evaluate the held-out loss every N steps (default: at the end only).")
    var evalEvery: Int?

    @Option(parsing: .unconditional, help: "Held-out math problems answered per run for exact-match accuracy (0: none). The report states the difference in accuracy this many problems can resolve.")
    var accuracyLimit: Int = CompareConfig.defaults.accuracyLimit

    @Option(help: "Held-out prompt/completion math problems for exact match, when not --test's (--test then only gives the held-out loss, evaluated several times per run, which can use fewer problems).")
    var accuracyTest: String?

    @Option(parsing: .unconditional, help: "Most tokens generated per answer.")
    var maxNewTokens: Int = CompareConfig.defaults.maxNewTokens

    @Option(help: "Comma-separated inits for the initialisation table (empty string: no table).")
    var initModes: String = CompareConfig.defaults.initModes.map(\.peftName).joined(separator: ",")

    @Option(help: "Report directory (a new or empty one, or an earlier `pissa compare` report, which is replaced).")
    var out: String

    @Flag(help: "Write the report into a non-empty --out that holds no earlier report (files of the same names are replaced, others kept).")
    var overwrite = false

    @Option(parsing: .unconditional, help: "Parallel lanes (cores) to use.")
    var lanes: Int = CompareConfig.defaults.lanes

    var methodList: [CompareMethod] { methods.split(separator: ",").compactMap { CompareMethod(rawValue: $0.trimmingCharacters(in: .whitespaces)) } }
    var seedList: [UInt64] { seeds.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) } }
    var initModeList: [InitMethod] { initModes.split(separator: ",").compactMap { InitMethod(peftName: String($0)) } }

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        let names = methods.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let unknown = names.filter { CompareMethod(rawValue: $0) == nil }
        guard unknown.isEmpty, !names.isEmpty else {
            throw ValidationError("--methods: unknown \(unknown.joined(separator: ", ")); choose from \(CompareMethod.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        guard qpissaIters >= 1 else { throw ValidationError("--qpissa-iters must be at least 1.") }
        guard Set(names).count == names.count else { throw ValidationError("--methods names a method twice.") }
        guard seedList.count == seeds.split(separator: ",").count, !seedList.isEmpty else {
            throw ValidationError("--seeds must be comma-separated non-negative integers (got \(seeds)).")
        }
        guard Set(seedList).count == seedList.count else { throw ValidationError("--seeds names a seed twice.") }
        guard initModeList.count == initModes.split(separator: ",").count else {
            throw ValidationError("--init-modes: use pissa or pissa_niter_K names (got \(initModes)).")
        }
        guard initModeList.allSatisfy(\.isPiSSA) else { throw ValidationError("--init-modes times PiSSA initialisations only.") }
        try ArgumentCheck.integer(rank, "--rank", in: 1...Int.max)
        if let alpha { try ArgumentCheck.number(alpha, "--alpha", above: 0) }
        try ArgumentCheck.number(lr, "--lr", above: 0)
        if let loraplusLrRatio { try ArgumentCheck.number(loraplusLrRatio, "--loraplus-lr-ratio", above: 0) }
        try ArgumentCheck.integer(calibBatches, "--calib-batches", in: 1...1_000_000)
        try ArgumentCheck.lanes(lanes)
        if let evalEvery { try ArgumentCheck.integer(evalEvery, "--eval-every", in: 1...Int.max) }
        try ArgumentCheck.integer(accuracyLimit, "--accuracy-limit", in: 0...Int.max)
        try ArgumentCheck.integer(maxNewTokens, "--max-new-tokens", in: 1...1 << 20)
        guard pissaInit.isPiSSA else { throw ValidationError("--pissa-init must be pissa or pissa_niter_K.") }
        try ArgumentCheck.integer(steps, "--steps", in: 1...1_000_000_000)
        try ArgumentCheck.integer(batchSize, "--batch-size", in: 1...65536)
        try ArgumentCheck.integer(gradAccum, "--grad-accum", in: 1...65536)
        try ArgumentCheck.integer(maxSeqLen, "--max-seq-len", in: 2...1 << 20)
        try PathCheck.existing(data, "--data", kind: .file, hint: "a .jsonl or .txt file")
        if let test { try PathCheck.existing(test, "--test", kind: .file, hint: "a .jsonl or .txt file") }
        if let accuracyTest { try PathCheck.existing(accuracyTest, "--accuracy-test", kind: .file, hint: "a .jsonl file of prompt/completion problems") }
        try PathCheck.outputDirectory(out, kind: .comparison, inputs: inputs, overwrite: overwrite)
    }

    private var inputs: [OutputDirectory.Input] {
        [.init("--model", modelOptions.path), .init("--data", data)] + (test.map { [.init("--test", $0)] } ?? [])
            + (accuracyTest.map { [.init("--accuracy-test", $0)] } ?? [])
    }

    func run() throws {
        var config = CompareConfig(model: modelOptions.path, data: data, test: test, output: out,
                                   methods: methodList, seeds: seedList)
        config.rank = rank
        config.alpha = alpha
        config.pissaInit = pissaInit
        config.qpissaIterations = qpissaIters
        config.steps = steps
        config.learningRate = lr
        config.batchSize = batchSize
        config.gradientAccumulation = gradAccum
        config.maxSeqLen = maxSeqLen
        config.evalEvery = evalEvery
        config.accuracyLimit = accuracyLimit
        config.accuracyTest = accuracyTest
        config.maxNewTokens = maxNewTokens
        config.initModes = initModeList
        config.lanes = lanes
        config.loraplusLRRatio = loraplusLrRatio
        config.calibrationBatches = calibBatches
        config.commandLine = CommandLine.arguments.map(shellQuoted).joined(separator: " ")

        let line = ProgressLine()
        let interrupt = InterruptFlag.install()
        let started = Date()
        var current = ""
        // REPORT is locked while the comparison runs, and written in place: each of its runs is a training run.
        let results = try OutputWriting.write(out, kind: .comparison, inputs: inputs, overwrite: overwrite, staged: false) { directory in
            config.output = directory.path
            return try Comparison.run(config) { event in
            switch event {
            case let .runStarted(method, seed, index, total):
                current = "[\(index)/\(total)] \(method.rawValue) seed \(seed)"
                line.update("\(current): loading and initialising", force: true)
            case let .step(_, _, m, totalSteps):
                line.update(String(format: "%@  step %d/%d  loss %.4f  grad %.3f  %.0f tok/s  elapsed %@",
                                   current, m.step, totalSteps, m.loss ?? .nan, m.gradNorm ?? 0, m.tokensPerSecond ?? 0,
                                   formatDuration(Date().timeIntervalSince(started))),
                            force: m.step == totalSteps)
            case let .measuring(_, _, what):
                line.update("\(current): \(what)", force: true)
            case let .answering(_, _, p):
                line.update("\(current): " + mathProgressText(p), force: p.done == p.total)
            case let .runFinished(run):
                line.update(String(format: "%@: final train loss %.4f, held-out %.4f", current, run.finalTrainLoss, run.heldOutLoss ?? .nan)
                            + (CompareReport.counts(run).map { ", exact match " + CompareReport.accuracyCell(right: $0.right, of: $0.of) } ?? ""),
                            force: true)
            case .initTiming(let what):
                line.update("initialisation table: \(what)", force: true)
            case .wrote: break
            }
            return interrupt.isSet ? .stop : .proceed
            }
        }
        line.finish()
        print("report: \((out as NSString).appendingPathComponent(CompareReport.fileName)) (\(results.runs.count) runs, \(formatDuration(Date().timeIntervalSince(started))))")
    }
}

/// An argument as a POSIX shell would need it written.
func shellQuoted(_ s: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:@%+")
    return !s.isEmpty && s.allSatisfy(safe.contains) ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
