import Formats
import Foundation

extension BPETokenizer {
    /// The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`, as llama.cpp writes it),
    /// built as transformers builds it from the same file (`AutoTokenizer.from_pretrained(dir,
    /// gguf_file:)`), so that the ids equal those of the `tokenizer.json` transformers saves:
    ///
    /// - `tokenizer.ggml.model = "gpt2"`: byte-level BPE with the file's merges and the
    ///   pre-tokenizer named by `tokenizer.ggml.pre` (`PreTokenizer(ggufPre:)`);
    /// - `"llama"` (SentencePiece) in a Gemma file (`general.architecture` gemma, gemma2, gemma3):
    ///   SentencePiece BPE with byte fallback. Tokens of two or more spaces are respelled with "▁"
    ///   (`SentencePieceAlphabet.gemmaSpelling`), merges come from the file or else from the
    ///   vocabulary in file order (`DerivedMerges`), `<unk>` runs fuse. Other SentencePiece files,
    ///   and any with `add_space_prefix`, are refused: transformers gives them normalizers that
    ///   nothing here reproduces or checks.
    ///
    /// Token types 2 (unknown), 3 (control) and 4 (user-defined) are added tokens, matched
    /// verbatim in the text, 2 and 3 special. `defaultChatTemplate` is what `chatTemplate()` gives
    /// when the file has no `tokenizer.chat_template` (Gemma 3's GGUF has none: `.gemma`).
    public convenience init(gguf file: GGUFFile, defaultChatTemplate: ChatTemplate? = nil) throws(TokenizerError) {
        let m = file.metadata
        let source = file.url.path
        let model = m["tokenizer.ggml.model"]?.string
        guard model == "gpt2" || model == "llama" else {
            throw .unsupported(source: source, key: "tokenizer.ggml.model",
                               value: model ?? "missing (supported: gpt2, and llama in Gemma files)")
        }
        guard let tokens = m["tokenizer.ggml.tokens"]?.stringArray else {
            throw .missingKey(source: source, key: "tokenizer.ggml.tokens")
        }
        let merges = m["tokenizer.ggml.merges"]?.stringArray
        let types = m["tokenizer.ggml.token_type"]?.intArray.map { $0.map { Int32(truncatingIfNeeded: $0) } }
        func id(_ key: String) throws(TokenizerError) -> Int? {
            guard let v = m[key]?.int else { return nil }
            guard v >= 0, v < tokens.count else {
                throw .tokenIDOutOfRange(source: source, key: key, id: v, vocabularySize: tokens.count)
            }
            return v
        }
        var special = SpecialTokens(
            bos: try id("tokenizer.ggml.bos_token_id"), eos: try id("tokenizer.ggml.eos_token_id"),
            unk: try id("tokenizer.ggml.unknown_token_id"), pad: try id("tokenizer.ggml.padding_token_id"),
            addBOS: m["tokenizer.ggml.add_bos_token"]?.bool ?? false,
            addEOS: m["tokenizer.ggml.add_eos_token"]?.bool ?? false)
        let chatTemplate = m["tokenizer.chat_template"]?.string

        if model == "gpt2" {
            guard let merges else { throw .missingKey(source: source, key: "tokenizer.ggml.merges") }
            let pre: PreTokenizer
            do { pre = try PreTokenizer(ggufPre: m["tokenizer.ggml.pre"]?.string ?? "gpt2") } catch {
                throw .unknownPreTokenizer(source: "\(source): tokenizer.ggml.pre", description: m["tokenizer.ggml.pre"]?.string ?? "")
            }
            try self.init(source: source, tokens: tokens, merges: merges, tokenTypes: types, special: special,
                          preTokenizer: pre, chatTemplate: chatTemplate, defaultChatTemplate: defaultChatTemplate)
            return
        }

        let architecture = file.architecture ?? "unknown"
        guard ["gemma", "gemma2", "gemma3"].contains(architecture) else {
            throw .unsupported(source: source, key: "tokenizer.ggml.model",
                               value: "llama (SentencePiece) in a \(architecture) file; only Gemma's is supported")
        }
        if m["tokenizer.ggml.add_space_prefix"]?.bool == true {
            throw .unsupported(source: source, key: "tokenizer.ggml.add_space_prefix", value: "true")
        }
        // llama.cpp and transformers add BOS to a SentencePiece vocabulary that does not say otherwise.
        special.addBOS = m["tokenizer.ggml.add_bos_token"]?.bool ?? true
        let vocabulary = tokens.map(SentencePieceAlphabet.gemmaSpelling)
        let added = try AddedToken.fromTokenTypes(types, tokens: tokens, source: source)
            .filter { vocabulary[Int($0.id)] == tokens[Int($0.id)] }
        let mergeSource: MergeSource
        if let merges {
            var pairs: [(String, String)] = []
            for (index, merge) in merges.enumerated() {
                let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw .malformedMerge(source: "\(source): tokenizer.ggml.merges", index: index, merge: merge)
                }
                pairs.append((String(parts[0]), String(parts[1])))
            }
            mergeSource = .pairs(pairs)
        } else {
            mergeSource = .derived(.longerLeftFirst)
        }
        try self.init(
            source: source, kind: .sentencePiece, vocabulary: vocabulary, added: added, merges: mergeSource,
            special: special, ignoreMerges: false, unknownID: special.unk.map(Int32.init), fuseUnknown: true,
            chatTemplate: chatTemplate, defaultChatTemplate: defaultChatTemplate)
    }

    /// The tokenizer of the GGUF file at `url` (see `init(gguf:defaultChatTemplate:)`).
    public convenience init(ggufAt url: URL, defaultChatTemplate: ChatTemplate? = nil) throws(TokenizerError) {
        let file: GGUFFile
        do { file = try GGUFFile(url: url) } catch { throw .unreadableFile(path: url.path, reason: ErrorText.plain(error)) }
        try self.init(gguf: file, defaultChatTemplate: defaultChatTemplate)
    }
}
