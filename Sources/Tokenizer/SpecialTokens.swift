/// The ids of a tokenizer's special tokens, and whether `encode(_:addSpecialTokens: true)` adds
/// BOS / EOS. GGUF: `tokenizer.ggml.{bos,eos,unknown,padding}_token_id` and
/// `tokenizer.ggml.add_{bos,eos}_token`; Hugging Face: `tokenizer_config.json` (`bos_token`,
/// `add_bos_token`, …) and the `post_processor` of `tokenizer.json`.
public struct SpecialTokens: Sendable, Codable, Equatable {
    public var bos: Int?
    public var eos: Int?
    public var unk: Int?
    public var pad: Int?
    /// Prepend `bos` when special tokens are added. SmolLM2 says no (GGUF `add_bos_token = false`,
    /// and its `post_processor` adds nothing).
    public var addBOS: Bool
    /// Append `eos` when special tokens are added.
    public var addEOS: Bool

    public init(bos: Int? = nil, eos: Int? = nil, unk: Int? = nil, pad: Int? = nil, addBOS: Bool = false, addEOS: Bool = false) {
        self.bos = bos
        self.eos = eos
        self.unk = unk
        self.pad = pad
        self.addBOS = addBOS
        self.addEOS = addEOS
    }
}

/// One turn of a conversation, as chat templates see it (`role` is "system", "user", "assistant", …).
public struct ChatMessage: Codable, Sendable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}
