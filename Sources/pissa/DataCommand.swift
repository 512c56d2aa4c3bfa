import ArgumentParser
import Experiments
import Formats
import Foundation
import Model
import Tokenizer
import Training

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Make and check training data.",
        subcommands: [MathDataCommand.self, InspectDataCommand.self]
    )
}

struct MathDataCommand: ParsableCommand, Diagnosable {
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

    @Option(parsing: .unconditional, help: "Training problems.")
    var train: Int = 2000

    @Option(parsing: .unconditional, help: "Test problems.")
    var test: Int = 200

    @Option(parsing: .unconditional, help: "Seed of the generator.")
    var seed: UInt64 = 0

    @Option(help: "Output directory (created if missing; written whole, replacing an earlier `data math` output).")
    var out: String

    @Flag(help: "Write into a non-empty --out that holds no earlier `data math` output (files of the same names are replaced, others kept).")
    var overwrite = false

    @Option(parsing: .upToNextOption,
            help: "Only these templates (default: all). Names: \(MathGenerator.templateNames.joined(separator: ", ")).")
    var templates: [String] = []

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        try ArgumentCheck.integer(train, "--train", in: 0...10_000_000)
        try ArgumentCheck.integer(test, "--test", in: 0...10_000_000)
        guard train + test > 0 else { throw ValidationError("--train and --test are both 0; ask for at least one problem.") }
        for name in templates where !MathGenerator.templateNames.contains(name) {
            throw ValidationError("--templates: no template is named '\(name)'; choose from \(MathGenerator.templateNames.joined(separator: ", ")).")
        }
        try PathCheck.outputDirectory(out, kind: .mathData, inputs: [], overwrite: overwrite)
    }

    func run() throws {
        let sets = try MathGenerator.generate(train: train, test: test, seed: seed, templates: templates.isEmpty ? nil : templates)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let files = [("train.jsonl", sets.train), ("test.jsonl", sets.test)]
        try OutputWriting.write(out, kind: .mathData, inputs: [], overwrite: overwrite) { staging in
            for (name, problems) in files {
                var data = Data()
                for problem in problems {
                    data.append(try encoder.encode(problem.record))
                    data.append(UInt8(ascii: "\n"))
                }
                try AtomicFile.write(data, to: staging.appendingPathComponent(name))
            }
        }
        for (name, problems) in files { print("\(URL(fileURLWithPath: out).appendingPathComponent(name).path): \(problems.count) problems") }
        if let example = sets.train.first ?? sets.test.first {
            print("\nexample (\(example.template)):\n\(example.prompt)\(example.completion)")
        }
    }
}

struct InspectDataCommand: ParsableCommand, Diagnosable {
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

    @Option(parsing: .unconditional, help: "Longest sequence in tokens: longer records are truncated, longer texts split.")
    var maxSeqLen: Int = 512

    @Flag(help: "Skip lines that are not valid records (they are counted and the first few shown).")
    var skipBadLines = false

    @Option(parsing: .unconditional, help: "Which example to show (0-based).")
    var example: Int = 0

    @Flag(help: "Print the report as JSON.")
    var json = false

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        try ArgumentCheck.integer(maxSeqLen, "--max-seq-len", in: 2...1 << 20)
        try ArgumentCheck.integer(example, "--example", in: 0...Int.max)
        try PathCheck.existing(data, "--data", kind: .file, hint: "a .jsonl or .txt file")
    }

    func run() throws {
        let tokenizer = try Self.tokenizer(path: modelOptions.path)
        let loaded = try withSkipHint { try DatasetLoader(tokenizer: tokenizer, maxSeqLen: maxSeqLen, skipBadLines: skipBadLines).load(path: data) }
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
    /// Only the tokenizer of a model (`LanguageModel.loadTokenizer`).
    static func tokenizer(path: String) throws -> BPETokenizer { try LanguageModel.loadTokenizer(path: path) }
}
