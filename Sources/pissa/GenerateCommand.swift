import ArgumentParser
import Foundation
import Model
import Tokenizer
import Training

struct GenerateCommand: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Continue a prompt, streaming tokens as they are chosen.",
        discussion: """
        A prompt that fills the model's positions (max_position_embeddings, at most 8192 here) \
        is refused, not truncated, as transformers does not truncate a prompt unless asked; \
        generation stops at the model's last position.
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "A PEFT LoRA adapter directory to apply.")
    var adapter: String?

    @Option(help: "The prompt.")
    var prompt: String

    @Option(parsing: .unconditional, help: "Most tokens to generate.")
    var maxTokens: Int = 128

    @Option(parsing: .unconditional, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(parsing: .unconditional, help: "Nucleus sampling threshold (1 keeps every token).")
    var topP: Float = 1

    @Option(parsing: .unconditional, help: "Seed for sampling.")
    var seed: UInt64 = 0

    @Flag(help: "Wrap the prompt as a user turn in the model's chat template.")
    var chat = false

    @Option(help: "System prompt for --chat (default: the template's own).")
    var system: String?

    @Flag(help: "Print one JSON object (text, tokens, speeds) at the end instead of streaming.")
    var json = false

    @Flag(help: "Dequantise a GGUF's weights to float32 when loading, instead of multiplying by its quantised blocks (≈ 5× the memory; the same tokens).")
    var float32 = false

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        try ArgumentCheck.integer(maxTokens, "--max-tokens", in: 1...1 << 20)
        try ArgumentCheck.number(temperature, "--temperature", above: 0, inclusive: true, atMost: 100)
        try ArgumentCheck.number(topP, "--top-p", above: 0, atMost: 1)
        if let adapter { try PathCheck.existing(adapter, "--adapter", kind: .directory, hint: "a PEFT adapter directory") }
    }

    struct Output: Encodable {
        var text: String
        var tokens: [Int]
        var statistics: Generation.Statistics
        var loadSeconds: Double
    }

    func run() throws {
        let lm = try modelOptions.load(keepBlocks: !float32)
        let adapters = try adapter.map { try modelOptions.inferenceAdapter($0, on: lm) }
        let tokenizer = lm.tokenizer
        var text = prompt
        if chat {
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: prompt))
            text = try tokenizer.chatTemplate().render(messages, addGenerationPrompt: true).text
        }
        let ids = tokenizer.encode(text, addSpecialTokens: !chat)
        do { try Generation.check(promptTokens: ids.count, positions: lm.model.maxPositions) } catch {
            throw CommandFailure(description: "--prompt: \(error)")
        }
        if ids.count + maxTokens > lm.model.maxPositions {
            printError("note: generation stops after \(lm.model.maxPositions - ids.count) tokens, at the model's \(lm.model.maxPositions) positions")
        }
        var stops = Set<Int>()
        if let eos = tokenizer.special.eos { stops.insert(eos) }
        if chat, let end = tokenizer.id("<|im_end|>") { stops.insert(end) }
        var decoder = tokenizer.makeStreamingDecoder(skipSpecialTokens: true)
        let result = try Generation.run(model: lm.model, prompt: ids, maxTokens: maxTokens,
                                    sampling: SamplingSettings(temperature: temperature, topP: topP, seed: seed),
                                    stopTokens: stops, adapters: adapters?.adapters) { token in
            if !json {
                FileHandle.standardOutput.write(Data(decoder.append(token).utf8))
            }
            return .proceed
        }
        let s = result.statistics
        if json {
            try printJSON(Output(text: tokenizer.decode(result.tokens, skipSpecialTokens: true), tokens: result.tokens,
                                 statistics: s, loadSeconds: lm.loadSeconds))
        } else {
            FileHandle.standardOutput.write(Data((decoder.finish() + "\n").utf8))
            printError(String(format: "load %.2f s · prefill %d tokens at %.1f tok/s · decode %d tokens at %.1f tok/s",
                              lm.loadSeconds, s.promptTokens, s.prefillTokensPerSecond, s.generatedTokens, s.decodeTokensPerSecond))
        }
    }
}
