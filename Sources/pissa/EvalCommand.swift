import ArgumentParser
import Foundation
import Model
import Training

enum EvalTask: String, ExpressibleByArgument, CaseIterable {
    /// Loss and perplexity on the supervised tokens.
    case lm
    /// Greedy answers to {"prompt", "completion"} math problems, exact match on the final number.
    case math
}

struct EvalCommand: ParsableCommand, Diagnosable, RankAware {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Mean token negative log-likelihood and perplexity of a text or JSONL file.",
        discussion: """
        A .txt file is one document, scored as one sequence when it fits in --max-seq-len tokens \
        (no BOS is added unless the tokenizer's configuration says so); a longer one slides a \
        window of --max-seq-len tokens by --stride tokens, scoring each token once. A .jsonl file \
        (chat, prompt/completion, Alpaca or text records, as `pissa train` reads them) is scored \
        on its supervised tokens only. --task math greedy-generates an answer to each \
        prompt/completion record and reports exact-match accuracy on the final number. Under \
        `mpirun -np N` each rank scores its share of the examples, windows or records, and rank 0 \
        prints the totals.
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "A .txt or .jsonl file.")
    var data: String

    @Option(help: "A PEFT LoRA adapter directory to apply (e.g. RUN/adapter on the residual model).")
    var adapter: String?

    @Option(help: "What to measure: lm (loss, perplexity) or math (exact-match accuracy).")
    var task: EvalTask = .lm

    @Option(parsing: .unconditional, help: "Only the first N records (math) or examples (jsonl).")
    var limit: Int?

    @Option(parsing: .unconditional, help: "Most tokens generated per answer (math).")
    var maxNewTokens: Int = 128

    @Option(parsing: .unconditional, help: "Sequences per forward pass (jsonl; default 4), or answers decoded together, sharing one pass per step (math; default \(BatchedGeneration.defaultBatchSize)).")
    var batchSize: Int?

    @Option(parsing: .unconditional, help: "Window length in tokens.")
    var maxSeqLen: Int = 512

    @Option(parsing: .unconditional, help: "Window step for long documents (default: --max-seq-len, i.e. disjoint windows).")
    var stride: Int?

    @Option(parsing: .unconditional, help: "Parallel lanes (cores) to use (per rank under mpirun).")
    var lanes: Int = 2

    @Flag(help: "Print one JSON object.")
    var json = false

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        try ArgumentCheck.integer(maxSeqLen, "--max-seq-len", in: 2...1 << 20)
        if let stride { try ArgumentCheck.integer(stride, "--stride", in: 1...maxSeqLen) }
        if let limit { try ArgumentCheck.integer(limit, "--limit", in: 1...Int.max) }
        try ArgumentCheck.integer(maxNewTokens, "--max-new-tokens", in: 1...1 << 20)
        if let batchSize { try ArgumentCheck.integer(batchSize, "--batch-size", in: 1...65536) }
        try ArgumentCheck.lanes(lanes)
        try PathCheck.existing(data, "--data", kind: .file, hint: "a .txt or .jsonl file")
        if let adapter { try PathCheck.existing(adapter, "--adapter", kind: .directory, hint: "a PEFT adapter directory") }
    }

    struct Output: Encodable {
        var nll: Double
        var perplexity: Double
        var tokens: Int
        var documents: Int
        var maxSeqLen: Int
        var stride: Int?
        var seconds: Double
    }

    func run() throws {
        let group = Job.current
        let (lm, adapters) = try group.together("loading the model") {
            // Math answers are generated: a GGUF's quantised weights stay in their blocks.
            let lm = try modelOptions.load(lanes: lanes, keepBlocks: task == .math)
            return (lm, try adapter.map { try modelOptions.inferenceAdapter($0, on: lm) })
        }
        if task == .math { return try runMath(lm, adapters: adapters) }
        let window = min(maxSeqLen, lm.model.maxPositions)
        let line = ProgressLine()
        let t0 = Date()
        var total = Perplexity.Result()
        var documents = 0
        var stepUsed: Int?
        if data.hasSuffix(".jsonl") {
            let loaded = try DatasetLoader(tokenizer: lm.tokenizer, maxSeqLen: window).load(path: data)
            let examples = Array(loaded.examples.prefix(limit ?? .max))
            documents = examples.count
            total = Evaluation.loss(model: lm.model, adapters: adapters?.adapters, examples: examples, batchSize: batchSize ?? 4, group: group) { done in
                line.update("\(done)/\(examples.count) examples" + (group.isDistributed ? " (rank 0's share)" : ""))
            }
        } else {
            let step = stride ?? window
            stepUsed = step
            let text = try TextDocuments.read(path: data)
            documents = text.count
            for (i, doc) in text.enumerated() {
                let ids = lm.tokenizer.encode(doc, addSpecialTokens: true)
                total = total + Perplexity.score(model: lm.model, ids: ids, window: window, stride: step,
                                                 adapters: adapters?.adapters, shard: (group.rank, group.size)) { done, all in
                    let elapsed = Date().timeIntervalSince(t0)
                    line.update("document \(i + 1)/\(text.count) · \(done)/\(all) tokens · "
                        + String(format: "%.0f tok/s", Double(total.tokens + done) / max(elapsed, 1e-9)))
                }
            }
            if group.isDistributed {   // each rank scored its windows
                let sums = group.sumInRankOrder([total.totalNLL, Double(total.tokens)])
                total = Perplexity.Result(totalNLL: sums[0], tokens: Int(sums[1]))
            }
        }
        line.finish()
        guard group.isRoot else { return }
        let out = Output(nll: total.nll, perplexity: total.perplexity, tokens: total.tokens, documents: documents,
                         maxSeqLen: window, stride: stepUsed, seconds: Date().timeIntervalSince(t0))
        if json {
            try printJSON(out)
        } else {
            print(String(format: "nll %.4f · perplexity %.3f · %d tokens scored in %d document(s) · window %d",
                         out.nll, out.perplexity, out.tokens, out.documents, window)
                  + (stepUsed.map { ", stride \($0)" } ?? ", supervised tokens only"))
        }
    }

    private func runMath(_ lm: LanguageModel, adapters: TrainableAdapters?) throws {
        struct Record: Decodable { var prompt: String; var completion: String }
        guard let content = try? String(contentsOfFile: data, encoding: .utf8) else {
            throw ValidationError("\(data) cannot be read as UTF-8 text.")
        }
        var records: [(prompt: String, completion: String)] = []
        for (n, line) in content.split(separator: "\n").enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let r = try? JSONDecoder().decode(Record.self, from: Data(line.utf8)) else {
                throw ValidationError("\(data):\(n + 1): --task math needs {\"prompt\", \"completion\"} records.")
            }
            records.append((r.prompt, r.completion))
        }
        records = Array(records.prefix(limit ?? .max))
        guard !records.isEmpty else { throw ValidationError("\(data) has no prompt/completion record to answer.") }
        let line = ProgressLine()
        let group = Job.current
        let result = try Evaluation.mathAccuracy(model: lm.model, adapters: adapters?.adapters, tokenizer: lm.tokenizer,
                                             records: records, maxTokens: maxNewTokens, batchSize: batchSize ?? BatchedGeneration.defaultBatchSize, group: group) { p in
            line.update(mathProgressText(p) + (group.isDistributed ? " (rank 0's share)" : ""), force: p.done == p.total)
        }
        line.finish()
        guard group.isRoot else { return }
        let interval = result.interval!
        if json { try printJSON(MathOutput(result)) } else {
            print(String(format: "exact match %.1f %% (%d of %d; 95 %% Wilson interval %.1f–%.1f %%) · %d tokens in %@ (%.0f tok/s)",
                         100 * result.accuracy, result.correct, result.total, 100 * interval.lower, 100 * interval.upper,
                         result.generatedTokens, formatDuration(result.seconds), Double(result.generatedTokens) / max(result.seconds, 1e-9)))
            for s in [result.samples.first { $0.correct }, result.samples.first { !$0.correct }].compactMap({ $0 }) {
                print("\(s.correct ? "right" : "wrong"), problem \(s.index + 1): \(s.prompt)\(s.generated)")
            }
        }
    }

    /// `--json` of `--task math`: the result with its accuracy and interval.
    struct MathOutput: Encodable {
        var correct: Int, total: Int, accuracy: Double
        var interval: Statistics.Interval
        var outcomes: AnswerOutcomes
        var samples: [Evaluation.MathResult.Sample]
        var generatedTokens: Int, seconds: Double

        init(_ r: Evaluation.MathResult) {
            (correct, total, accuracy, interval, outcomes) = (r.correct, r.total, r.accuracy, r.interval!, r.outcomes)
            (samples, generatedTokens, seconds) = (r.samples, r.generatedTokens, r.seconds)
        }
    }
}

/// One progress line of an exact-match evaluation: answered, right so far, ETA.
func mathProgressText(_ p: Evaluation.MathProgress) -> String {
    String(format: "exact match: %d/%d answered · %.1f %% right so far · elapsed %@ · ETA %@",
           p.done, p.total, 100 * p.accuracySoFar, formatDuration(p.elapsed), formatDuration(p.eta))
}

/// Documents of a .txt file (one) or a .jsonl file (one `{"text": …}` per line).
enum TextDocuments {
    static func read(path: String) throws -> [String] {
        guard let content = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("\(path) cannot be read as UTF-8 text.")
        }
        guard path.hasSuffix(".jsonl") else { return [content] }
        struct Line: Decodable { var text: String }
        var docs: [String] = []
        for (n, line) in content.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let doc = try? JSONDecoder().decode(Line.self, from: Data(line.utf8)) else {
                throw ValidationError("\(path):\(n + 1): expected a JSON object with a \"text\" string.")
            }
            docs.append(doc.text)
        }
        return docs
    }
}
