import ArgumentParser
import Foundation
import Model

struct TokenizeCommand: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "tokenize", abstract: "Print the token ids of a text, or (--decode) the text of token ids.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "The text (or, with --decode, comma- or space-separated ids).")
    var text: String?

    @Option(help: "Read the text from this file instead.")
    var file: String?

    @Flag(help: "Turn ids back into text.")
    var decode = false

    @Flag(help: "Add the tokenizer's BOS/EOS as its configuration says.")
    var addSpecialTokens = false

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        guard (text == nil) != (file == nil) else { throw ValidationError("Give exactly one of --text and --file.") }
        if let file { try PathCheck.existing(file, "--file", kind: .file, hint: "a UTF-8 text file") }
    }

    func run() throws {
        let input: String
        if let file {
            guard let s = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("--file \(file) cannot be read as UTF-8 text.")
            }
            input = s
        } else {
            input = text!
        }
        let tokenizer = try modelOptions.load().tokenizer
        if decode {
            let ids = try input.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\n" }).map { part -> Int in
                guard let id = Int(part), id >= 0, id < tokenizer.vocabularySize else {
                    throw ValidationError("'\(part)' is not a token id (0..<\(tokenizer.vocabularySize)).")
                }
                return id
            }
            let out = tokenizer.decode(ids)
            if json { try printJSON(["text": out]) } else { print(out) }
        } else {
            let ids = tokenizer.encode(input, addSpecialTokens: addSpecialTokens)
            if json {
                try printJSON(["ids": ids])
            } else {
                print(ids.map(String.init).joined(separator: " "))
                printError("\(ids.count) tokens")
            }
        }
    }
}
