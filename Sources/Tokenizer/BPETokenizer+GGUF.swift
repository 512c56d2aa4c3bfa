import Formats

extension BPETokenizer {
    /// The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`, as llama.cpp writes it).
    public convenience init(gguf file: GGUFFile) throws(TokenizerError) {
        let m = file.metadata
        let source = file.url.path
        guard m["tokenizer.ggml.model"]?.string == "gpt2" else {
            throw .unsupported(source: source, key: "tokenizer.ggml.model",
                               value: m["tokenizer.ggml.model"]?.string ?? "missing (only byte-level BPE, gpt2, is supported)")
        }
        guard let tokens = m["tokenizer.ggml.tokens"]?.stringArray else {
            throw .missingKey(source: source, key: "tokenizer.ggml.tokens")
        }
        guard let merges = m["tokenizer.ggml.merges"]?.stringArray else {
            throw .missingKey(source: source, key: "tokenizer.ggml.merges")
        }
        let types = m["tokenizer.ggml.token_type"]?.intArray.map { $0.map { Int32(truncatingIfNeeded: $0) } }
        func id(_ key: String) throws(TokenizerError) -> Int? {
            guard let v = m[key]?.int else { return nil }
            guard v >= 0, v < tokens.count else {
                throw .tokenIDOutOfRange(source: source, key: key, id: v, vocabularySize: tokens.count)
            }
            return v
        }
        let special = SpecialTokens(
            bos: try id("tokenizer.ggml.bos_token_id"), eos: try id("tokenizer.ggml.eos_token_id"),
            unk: try id("tokenizer.ggml.unknown_token_id"), pad: try id("tokenizer.ggml.padding_token_id"),
            addBOS: m["tokenizer.ggml.add_bos_token"]?.bool ?? false,
            addEOS: m["tokenizer.ggml.add_eos_token"]?.bool ?? false)
        let pre: PreTokenizer
        do { pre = try PreTokenizer(ggufPre: m["tokenizer.ggml.pre"]?.string ?? "gpt2") } catch {
            throw .unknownPreTokenizer(source: "\(source): tokenizer.ggml.pre", description: m["tokenizer.ggml.pre"]?.string ?? "")
        }
        try self.init(tokens: tokens, merges: merges, tokenTypes: types, special: special, preTokenizer: pre,
                      chatTemplate: m["tokenizer.chat_template"]?.string)
    }
}
