import ArgumentParser
import Formats
import Foundation
import Tokenizer
import Training

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Make and check training data.",
        subcommands: [MathDataCommand.self, InspectDataCommand.self]
    )
}

struct MathDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "math",
        abstract: "Write GSM8K-style word problems as completion JSONL: OUT/train.jsonl and OUT/test.jsonl.",
        discussion: """
        Each line is {"prompt": "Question: …\\nAnswer:", "completion": " <worked steps>\\n#### <answer>", \
        "answer": "<answer>", "template": "<name>"}. Problems come from seeded templates (shopping, rates, \
        ages, fractions, percentages, time, sharing, …) with integer arithmetic written out in each step. \
        A problem's side of the split depends only on its template and numbers, so no test problem appears \
        in any train set, whatever the seeds. The same arguments always write the same files.
        """)

    @Option(help: "Training problems.")
    var train: Int = 2000

    @Option(help: "Test problems.")
    var test: Int = 200

    @Option(help: "Seed of the generator.")
    var seed: UInt64 = 0

    @Option(help: "Output directory (created if missing).")
    var out: String

    @Option(parsing: .upToNextOption,
            help: "Only these templates (default: all). Names: \(MathGenerator.templateNames.joined(separator: ", ")).")
    var templates: [String] = []

    func validate() throws {
        guard train >= 0, test >= 0, train + test > 0 else {
            throw ValidationError("--train and --test must be non-negative, and not both 0.")
        }
        for name in templates where !MathGenerator.templateNames.contains(name) {
            throw ValidationError("--templates: no template is named '\(name)'; choose from \(MathGenerator.templateNames.joined(separator: ", ")).")
        }
    }

    func run() throws {
        let sets = try MathGenerator.generate(train: train, test: test, seed: seed, templates: templates.isEmpty ? nil : templates)
        let directory = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for (name, problems) in [("train.jsonl", sets.train), ("test.jsonl", sets.test)] {
            var data = Data()
            for problem in problems {
                data.append(try encoder.encode(problem.record))
                data.append(UInt8(ascii: "\n"))
            }
            let url = directory.appendingPathComponent(name)
            try AtomicFile.write(data, to: url)
            print("\(url.path): \(problems.count) problems")
        }
        if let example = sets.train.first ?? sets.test.first {
            print("\nexample (\(example.template)):\n\(example.prompt)\(example.completion)")
        }
    }
}

struct InspectDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Load a training file as training would, report what it gives, and show an example's loss mask.",
        discussion: """
        Formats (JSONL, one object per line, recognised from the keys): {"messages": [...]} (chat \
        template; loss on assistant turns), {"prompt", "completion"} (loss on the completion and EOS), \
        {"instruction", "input", "output"} (PiSSA's Alpaca template; loss on the output and EOS), \
        {"text"}; a .txt file is one text (loss on every token) split into --max-seq-len windows. \
        In the example, ⟦…⟧ marks the tokens the loss is computed on.
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "A .jsonl or .txt file.")
    var data: String

    @Option(help: "Longest sequence in tokens: longer records are truncated, longer texts split.")
    var maxSeqLen: Int = 512

    @Flag(help: "Skip lines that are not valid records (they are counted and the first few shown).")
    var skipBadLines = false

    @Option(help: "Which example to show (0-based).")
    var example: Int = 0

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        guard maxSeqLen >= 2 else { throw ValidationError("--max-seq-len must be at least 2.") }
        guard example >= 0 else { throw ValidationError("--example must be 0 or more.") }
        try PathCheck.existing(data, "--data")
    }

    func run() throws {
        let tokenizer = try Self.tokenizer(path: modelOptions.path)
        let loaded = try DatasetLoader(tokenizer: tokenizer, maxSeqLen: maxSeqLen, skipBadLines: skipBadLines).load(path: data)
        if json {
            try printJSON(loaded.report)
            return
        }
        print(loaded.report)
        guard loaded.examples.indices.contains(example) else {
            throw ValidationError("--example \(example): the file gave \(loaded.examples.count) examples.")
        }
        let e = loaded.examples[example]
        print("\nexample \(example): \(e.count) tokens, \(e.supervisedCount) supervised (⟦…⟧)")
        print(Self.render(e, tokenizer: tokenizer))
    }

    /// The example's text with each run of supervised tokens between ⟦ and ⟧.
    static func render(_ example: Example, tokenizer: BPETokenizer) -> String {
        var out = ""
        var start = 0
        while start < example.count {
            var end = start
            while end < example.count && example.supervised[end] == example.supervised[start] { end += 1 }
            let text = tokenizer.decode(example.tokens[start..<end].map(Int.init))
            out += example.supervised[start] ? "⟦" + text + "⟧" : text
            start = end
        }
        return out
    }
}

extension InspectDataCommand {
    /// Only the tokenizer of a model: a GGUF file's metadata, or a Hugging Face directory's
    /// tokenizer.json (+ tokenizer_config.json).
    static func tokenizer(path: String) throws -> BPETokenizer {
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if isDirectory.boolValue {
            let dir = URL(fileURLWithPath: path)
            let config = dir.appendingPathComponent("tokenizer_config.json")
            return try BPETokenizer(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"),
                                    tokenizerConfig: FileManager.default.fileExists(atPath: config.path) ? config : nil)
        }
        return try BPETokenizer(gguf: GGUFFile(url: URL(fileURLWithPath: path)))
    }
}
