import ArgumentParser
import Foundation
import Model

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Mean token negative log-likelihood and perplexity of a text or JSONL file.",
        discussion: """
        A .txt file is one document; a .jsonl file holds one {"text": ...} document per line. Each \
        document is scored as one sequence when it fits in --max-seq-len tokens (no BOS is added \
        unless the tokenizer's configuration says so); a longer one slides a window of \
        --max-seq-len tokens by --stride tokens, scoring each token once.
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "A .txt or .jsonl file.")
    var data: String

    @Option(help: "Window length in tokens.")
    var maxSeqLen: Int = 512

    @Option(help: "Window step for long documents (default: --max-seq-len, i.e. disjoint windows).")
    var stride: Int?

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard maxSeqLen >= 2 else { throw ValidationError("--max-seq-len must be at least 2.") }
        if let stride { guard stride >= 1 && stride <= maxSeqLen else { throw ValidationError("--stride must be in 1…--max-seq-len.") } }
        guard FileManager.default.fileExists(atPath: data) else { throw ValidationError("--data \(data) does not exist.") }
    }

    struct Output: Encodable {
        var nll: Double
        var perplexity: Double
        var tokens: Int
        var documents: Int
        var maxSeqLen: Int
        var stride: Int
        var seconds: Double
    }

    func run() throws {
        let lm = try modelOptions.load()
        let documents = try TextDocuments.read(path: data)
        let window = min(maxSeqLen, lm.model.maxPositions), step = stride ?? window
        let line = ProgressLine()
        let t0 = Date()
        var total = Perplexity.Result()
        for (i, doc) in documents.enumerated() {
            let ids = lm.tokenizer.encode(doc, addSpecialTokens: true)
            total = total + Perplexity.score(model: lm.model, ids: ids, window: window, stride: step) { done, all in
                let elapsed = Date().timeIntervalSince(t0)
                line.update("document \(i + 1)/\(documents.count) · \(done)/\(all) tokens · "
                    + String(format: "%.0f tok/s", Double(total.tokens + done) / max(elapsed, 1e-9)))
            }
        }
        line.finish()
        let out = Output(nll: total.nll, perplexity: total.perplexity, tokens: total.tokens, documents: documents.count,
                         maxSeqLen: window, stride: step, seconds: Date().timeIntervalSince(t0))
        if json {
            try printJSON(out)
        } else {
            print(String(format: "nll %.4f · perplexity %.3f · %d tokens scored in %d document(s) · window %d, stride %d",
                         out.nll, out.perplexity, out.tokens, out.documents, window, step))
        }
    }
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
