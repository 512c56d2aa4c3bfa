import ArgumentParser
import Foundation
import Model
import Tokenizer
import Training

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Continue a prompt, streaming tokens as they are chosen.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "A PEFT LoRA adapter directory to apply.")
    var adapter: String?

    @Option(help: "The prompt.")
    var prompt: String

    @Option(help: "Most tokens to generate.")
    var maxTokens: Int = 128

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(help: "Nucleus sampling threshold (1 keeps every token).")
    var topP: Float = 1

    @Option(help: "Seed for sampling.")
    var seed: UInt64 = 0

    @Flag(help: "Wrap the prompt as a user turn in the model's chat template.")
    var chat = false

    @Option(help: "System prompt for --chat (default: the template's own).")
    var system: String?

    @Flag(help: "Print one JSON object (text, tokens, speeds) at the end instead of streaming.")
    var json = false

    @Flag(help: "Dequantise a GGUF's weights to float32 when loading, instead of multiplying by its quantised blocks (≈ 5× the memory; the same tokens).")
    var float32 = false

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1.") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be 0 (greedy) or more.") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1].") }
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
        guard !ids.isEmpty else { throw ValidationError("The prompt encodes to no tokens.") }
        var stops = Set<Int>()
        if let eos = tokenizer.special.eos { stops.insert(eos) }
        if chat, let end = tokenizer.id("<|im_end|>") { stops.insert(end) }
        var decoder = tokenizer.makeStreamingDecoder(skipSpecialTokens: true)
        let result = Generation.run(model: lm.model, prompt: ids, maxTokens: maxTokens,
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
