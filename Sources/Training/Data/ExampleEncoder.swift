import Tokenizer

/// Turns records into token ids and loss masks.
///
/// - `.chat`: `BPETokenizer.encodeChat` (the model's chat template, no generation prompt); loss
///   on each assistant message's content and the `<|im_end|>` that closes it.
/// - `.completion`: `encode(prompt) + encode(completion) + [EOS]`, loss on the completion and
///   the EOS. Prompt and completion are encoded separately, so the prompt's tokens are exactly
///   those that generation is later given (`pissa eval` greedy-decodes after `encode(prompt)`).
///   Put any separator (a space, a newline) in the strings themselves.
/// - `.alpaca`: as GraphPKU/PiSSA's `train.py`: source = `alpacaPrompt` with the instruction
///   (`alpacaPromptWithInput` when `input` is not empty), target = output + "\n" + EOS; the
///   ids are those of source + target encoded together, and the first `encode(source).count`
///   of them are not supervised (PiSSA's `preprocess`), so where the tokenizer merges across the
///   boundary (an output starting with ":") the merged token is masked, as there.
/// - `.text`: `encode(text)`, every token supervised, no EOS.
///
/// Where the tokenizer says so (`special.addBOS`, e.g. Llama 3; not SmolLM2), BOS comes first in
/// all formats but chat, as `tokenizer(text)` does in Hugging Face. Sequences are not truncated
/// here (`DatasetLoader` truncates or chunks).
public struct ExampleEncoder: Sendable {
    public let tokenizer: BPETokenizer

    /// PiSSA's `PROMPT` (Stanford Alpaca's `prompt_no_input`).
    public static let alpacaPrompt =
        "Below is an instruction that describes a task. "
        + "Write a response that appropriately completes the request.\n\n"
        + "### Instruction:\n{instruction}\n\n### Response:"

    /// Stanford Alpaca's `prompt_input`, for records with an input (PiSSA's `train.py` has only
    /// the no-input template, whose sibling this is).
    public static let alpacaPromptWithInput =
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        + "Write a response that appropriately completes the request.\n\n"
        + "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"

    public init(tokenizer: BPETokenizer) {
        self.tokenizer = tokenizer
    }

    /// The id that pads batch rows: the tokenizer's pad token, else EOS, else 0. Padding is never
    /// a target and sits after each row's end, so its value does not change the loss.
    public var padID: Int32 { Int32(tokenizer.special.pad ?? tokenizer.special.eos ?? 0) }

    /// The prompt (the unsupervised source) of an Alpaca record.
    public static func alpacaSource(instruction: String, input: String) -> String {
        input.isEmpty
            ? fill(alpacaPrompt, ["instruction": instruction])
            : fill(alpacaPromptWithInput, ["instruction": instruction, "input": input])
    }

    /// Python's `template.format_map(values)` for plain `{name}` fields: placeholders are found in
    /// the template only, so braces inside the values stay as they are.
    static func fill(_ template: String, _ values: [String: String]) -> String {
        var out = ""
        var rest = template[...]
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}"),
              let value = values[String(rest[rest.index(after: open)..<close])] {
            out += rest[..<open]
            out += value
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    /// The example of one record, untruncated.
    public func encode(_ record: Record) throws(LineProblem) -> Example {
        let bos: [Int] = tokenizer.special.addBOS ? tokenizer.special.bos.map { [$0] } ?? [] : []
        let ids: [Int]
        let supervised: [Bool]
        switch record {
        case .chat(let messages):
            let chat: (ids: [Int], assistantMask: [Bool])
            do {
                chat = try tokenizer.encodeChat(messages, addGenerationPrompt: false)
            } catch {
                throw .tokenizer("chat records need the model's chat template: \(error)")
            }
            (ids, supervised) = chat
        case let .completion(prompt, completion):
            let eos = try eosID(for: .completion)
            let p = bos + tokenizer.encode(prompt)
            let c = tokenizer.encode(completion) + [eos]
            ids = p + c
            supervised = Array(repeating: false, count: p.count) + Array(repeating: true, count: c.count)
        case let .alpaca(instruction, input, output):
            let eos = try eosID(for: .alpaca)
            let source = Self.alpacaSource(instruction: instruction, input: input)
            let promptCount = bos.count + tokenizer.encode(source).count
            ids = bos + tokenizer.encode(source + output + "\n") + [eos]
            supervised = (0..<ids.count).map { $0 >= promptCount }
        case .text(let text):
            ids = bos + tokenizer.encode(text)
            supervised = Array(repeating: true, count: ids.count)
        }
        guard ids.count >= 2 else { throw .tooShort(tokens: ids.count) }
        return Example(ids: ids, supervised: supervised)
    }

    private func eosID(for format: DataFormat) throws(LineProblem) -> Int {
        guard let eos = tokenizer.special.eos else {
            throw .tokenizer("\(format.rawValue) records end with the EOS token, and the tokenizer has none "
                             + "(Hugging Face: eos_token in tokenizer_config.json)")
        }
        return eos
    }
}
