import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// What one method and seed gave.
public struct CompareRun: Codable, Sendable, Equatable {
    public var method: CompareMethod
    public var seed: UInt64
    /// Every logged step of the run (`metrics.jsonl`).
    public var metrics: [StepMetrics]
    /// Held-out loss of the start, before any update (PiSSA and LoRA start from the same
    /// function; the quantised methods do not).
    public var initialHeldOutLoss: Double?
    public var heldOutLoss: Double?
    /// Exact-match accuracy on the held-out math problems, when measured.
    public var accuracy: Double?
    public var answered: Int?
    /// Right or wrong on each of those problems (nil in results of older versions).
    public var answers: AnswerOutcomes?
    /// A few right and wrong answers.
    public var samples: [Evaluation.MathResult.Sample]?
    /// Wall time of the exact-match evaluation.
    public var answerSeconds: Double?
    /// Σ NLL of each held-out example's supervised tokens after training, for a paired test of
    /// two methods' held-out loss over the same examples (nil in results of older versions).
    public var heldOutExampleLosses: [Double]?
    /// Loading the model and data and initialising the adapter.
    public var setupSeconds: Double
    /// Wall time of the optimiser steps, periodic held-out evaluations included.
    public var trainSeconds: Double
    /// Median over steps of the step's tokens per second.
    public var tokensPerSecond: Double

    /// Mean training loss over the last tenth of the steps (at least one): one step's loss is noisy.
    public var finalTrainLoss: Double {
        let losses = metrics.compactMap(\.loss)
        let tail = losses.suffix(max(1, losses.count / 10))
        return tail.isEmpty ? .nan : tail.reduce(0, +) / Double(tail.count)
    }
}

/// Everything a comparison measured; saved as `REPORT/results.json`, from which the report is made.
public struct ComparisonResults: Codable, Sendable {
    public var config: CompareConfig
    public var runs: [CompareRun]
    public var initTimings: [InitTiming]
    /// QLoRA's and QPiSSA's quantisation error at the comparison's rank, for T = 1 and T
    /// (when a quantised method ran).
    public var quantError: QuantErrorAnalysis.Report?

    public static let fileName = "results.json"
    /// The runs finished so far, rewritten after each run and removed when `fileName` is written:
    /// copied to `results.json` in a directory of its own, `pissa report` makes their report.
    public static let partialFileName = "results.partial.json"
}

/// `pissa compare` as a library call: trains every method with every seed under identical
/// hyperparameters, measures each on the held-out data, times the initialisations, and writes
/// `results.json`, `report.md` and the figures into `config.output`.
public enum Comparison {
    public enum Event: Sendable {
        case runStarted(method: CompareMethod, seed: UInt64, index: Int, of: Int)
        case step(method: CompareMethod, seed: UInt64, StepMetrics, totalSteps: Int)
        case measuring(method: CompareMethod, seed: UInt64, what: String)
        /// The exact-match evaluation, answer by answer.
        case answering(method: CompareMethod, seed: UInt64, Evaluation.MathProgress)
        case runFinished(CompareRun)
        case initTiming(String)
        case wrote(path: String)
    }

    public static func run(_ config: CompareConfig, progress: (Event) -> Trainer.Control = { _ in .proceed }) throws -> ComparisonResults {
        guard !config.methods.isEmpty, !config.seeds.isEmpty else { throw CompareError.nothingToRun }
        let output = URL(fileURLWithPath: config.output)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        try AtomicFile.write(try jsonData(config), to: output.appendingPathComponent("config.json"))

        var runs: [CompareRun] = []
        let total = config.methods.count * config.seeds.count
        for seed in config.seeds {   // seeds outermost, so that a stopped comparison has every method once
            for method in config.methods {
                _ = progress(.runStarted(method: method, seed: seed, index: runs.count + 1, of: total))
                guard let run = try trainOne(config, method: method, seed: seed, progress: progress) else {
                    throw CompareError.stopped
                }
                runs.append(run)
                // What a stopped or killed comparison leaves: every finished run (no tables).
                let partial = ComparisonResults(config: config, runs: runs, initTimings: [], quantError: nil)
                try AtomicFile.write(try jsonData(partial), to: output.appendingPathComponent(ComparisonResults.partialFileName))
                _ = progress(.runFinished(run))
            }
        }
        var settings = config.trainConfig(method: .pissa, seed: config.seeds[0]).adapter
        settings.seed = config.seeds[0]
        let timings = try InitTiming.measure(modelPath: config.model, settings: settings, modes: config.initModes,
                                             lanes: config.lanes) { _ = progress(.initTiming($0)) }
        var quantError: QuantErrorAnalysis.Report?
        if config.methods.contains(where: \.isQuantized) {
            _ = progress(.initTiming("quantisation error of QLoRA and QPiSSA"))
            quantError = try quantErrorReport(config)
        }
        let results = ComparisonResults(config: config, runs: runs, initTimings: timings, quantError: quantError)
        try AtomicFile.write(try jsonData(results), to: output.appendingPathComponent(ComparisonResults.fileName))
        try? FileManager.default.removeItem(at: output.appendingPathComponent(ComparisonResults.partialFileName))
        for path in try CompareReport.write(results, to: output) { _ = progress(.wrote(path: path)) }
        return results
    }

    /// One training run; nil when `progress` asked to stop.
    static func trainOne(_ config: CompareConfig, method: CompareMethod, seed: UInt64,
                         progress: (Event) -> Trainer.Control) throws -> CompareRun? {
        let train = config.trainConfig(method: method, seed: seed)
        try? FileManager.default.removeItem(atPath: train.output)   // a comparison reruns its runs from scratch
        let t0 = Date()
        let trainer = try Trainer(config: train)
        let test = try config.test.map { try DatasetLoader(tokenizer: trainer.tokenizer, maxSeqLen: config.maxSeqLen).load(path: $0).examples } ?? []
        let setup = Date().timeIntervalSince(t0)
        _ = progress(.measuring(method: method, seed: seed, what: "held-out loss of the start"))
        let initial = test.isEmpty ? nil : trainer.evaluate(test)
        var stopped = false
        let t1 = Date()
        let metrics = try trainer.fit { event in
            switch event {
            case let .step(m, totalSteps):
                if progress(.step(method: method, seed: seed, m, totalSteps: totalSteps)) == .stop { stopped = true }
            default: break
            }
            return stopped ? .stop : .proceed
        }
        if stopped { return nil }
        let trainSeconds = Date().timeIntervalSince(t1)
        // Each step's own tokens/s excludes the evaluations that follow some steps.
        let tokensPerSecond = median(metrics.compactMap(\.tokensPerSecond))
        var run = CompareRun(method: method, seed: seed, metrics: metrics, initialHeldOutLoss: initial,
                             heldOutLoss: metrics.last?.evalLoss, accuracy: nil, answered: nil,
                             setupSeconds: setup, trainSeconds: trainSeconds, tokensPerSecond: tokensPerSecond)
        if !test.isEmpty {
            _ = progress(.measuring(method: method, seed: seed, what: "held-out loss per example"))
            run.heldOutExampleLosses = Evaluation.lossPerExample(model: trainer.model, adapters: trainer.adapters, examples: test,
                                                                 batchSize: config.batchSize).map(\.totalNLL)
        }
        if let path = config.accuracyData, config.accuracyLimit > 0, let records = try MathRecords.read(path: path), !records.isEmpty {
            _ = progress(.measuring(method: method, seed: seed, what: "exact-match accuracy"))
            let r = try Evaluation.mathAccuracy(model: trainer.model, adapters: trainer.adapters, tokenizer: trainer.tokenizer,
                                            records: Array(records.prefix(config.accuracyLimit)), maxTokens: config.maxNewTokens) {
                _ = progress(.answering(method: method, seed: seed, $0))
            }
            run.accuracy = r.accuracy
            run.answered = r.total
            run.answers = r.outcomes
            run.samples = r.samples
            run.answerSeconds = r.seconds
        }
        return run
    }

    /// `pissa quant-error` at the comparison's rank: QPiSSA with 1 and T iterations against QLoRA.
    static func quantErrorReport(_ config: CompareConfig) throws -> QuantErrorAnalysis.Report {
        let options = QuantErrorAnalysis.Options(
            model: URL(fileURLWithPath: config.model), ranks: [config.rank], iterations: Array(Set([1, config.qpissaIterations])).sorted(),
            targets: config.targets, lanes: config.lanes)
        if config.model.lowercased().hasSuffix(".gguf") {
            let scratch = URL(fileURLWithPath: config.output).appendingPathComponent("quant-error-scratch")
            defer { try? FileManager.default.removeItem(at: scratch) }
            return try QuantErrorAnalysis.runOnGGUF(options, scratch: scratch)
        }
        return try QuantErrorAnalysis.run(options)
    }

    static func median(_ values: [Double]) -> Double {
        let s = values.filter(\.isFinite).sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Reads `directory/results.json` and writes the report and figures again (after a change
    /// to the report code, or when they were lost); returns the paths written.
    @discardableResult
    public static func rewriteReport(in directory: URL) throws -> [String] {
        let url = directory.appendingPathComponent(ComparisonResults.fileName)
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw CompareError.unreadableResults(path: url.path, reason: "cannot be read") }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let results: ComparisonResults
        do { results = try decoder.decode(ComparisonResults.self, from: data) } catch {
            throw CompareError.unreadableResults(path: url.path, reason: "is not the results.json of `pissa compare` (\(ErrorText.plain(error)))")
        }
        return try CompareReport.write(results, to: directory)
    }

    static func jsonData<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return try encoder.encode(value)
    }
}

public enum CompareError: Error, CustomStringConvertible, Equatable {
    case nothingToRun
    case stopped
    case unreadableResults(path: String, reason: String)

    public var description: String {
        switch self {
        case .nothingToRun: "no method or no seed to run"
        case .stopped: "the comparison was stopped before it finished; no report was written (the finished runs are in \(ComparisonResults.partialFileName))"
        case let .unreadableResults(path, reason): "\(path) \(reason)"
        }
    }
}
