import Foundation

extension BPETokenizer {
    /// The largest vocabulary a `tokenizer.json` may describe (ids `0..<2^24`; Gemma 3 has 262,144).
    public static let maximumVocabularySize = 1 << 24

    /// A tokenizer from Hugging Face files: `tokenizer.json` and, optionally,
    /// `tokenizer_config.json` (special tokens, `add_bos_token`, `add_eos_token`, `chat_template`).
    /// Without `add_bos_token` / `add_eos_token`, BOS / EOS are added exactly where the
    /// `post_processor` (TemplateProcessing) puts special tokens. A `chat_template.jinja` beside
    /// `tokenizer.json` is read when the config has no template; `defaultChatTemplate` is what
    /// `chatTemplate()` gives when neither has one (the model family's, e.g. `.gemma`).
    ///
    /// Two kinds of `tokenizer.json` are read (anything else is `TokenizerError.unsupported`):
    /// - byte-level BPE: no normalizer or NFC (Qwen2 / Qwen2.5's, `TextNormalizer`), a
    ///   ByteLevel-family pre-tokenizer that `PreTokenizer` implements, ByteLevel decoder
    ///   (SmolLM2, Llama 3, Qwen2.5, Qwen from tiktoken ranks);
    /// - SentencePiece BPE with byte fallback, as transformers writes Gemma's: normalizer
    ///   `Replace(" " → "▁")`, pre-tokenizer none or `Split(" ", MergedWithPrevious)` (a no-op
    ///   once spaces are "▁"), model `byte_fallback: true`, decoder
    ///   `Sequence[Replace("▁" → " "), ByteFallback, Fuse]`.
    public convenience init(
        tokenizerJSON: URL, tokenizerConfig: URL?, defaultChatTemplate: ChatTemplate? = nil
    ) throws(TokenizerError) {
        let path = tokenizerJSON.path
        let file = try HFTokenizerFile(contentsOf: tokenizerJSON)
        let model = file.model

        if let type = model.type, type != "BPE" { throw .unsupported(source: path, key: "model.type", value: type) }
        if let d = model.dropout, d > 0 { throw .unsupported(source: path, key: "model.dropout", value: "\(d)") }
        for (key, value) in [("continuing_subword_prefix", model.continuing_subword_prefix),
                             ("end_of_word_suffix", model.end_of_word_suffix)] {
            if let value, !value.isEmpty { throw .unsupported(source: path, key: "model.\(key)", value: value) }
        }
        let kind: Kind
        // A byte-level normalizer (NFC), or nil: then a normalizer means SentencePiece's Replace.
        let normalizer = file.normalizer.flatMap { TextNormalizer(rawValue: $0.type ?? "") }
        if let n = file.normalizer, normalizer == nil {
            guard n.isReplace(" ", "\u{2581}") else { throw .unsupported(source: path, key: "normalizer", value: n.summary) }
            guard model.byte_fallback == true else {
                throw .unsupported(source: path, key: "model.byte_fallback", value: "false (with a SentencePiece normalizer)")
            }
            if model.ignore_merges { throw .unsupported(source: path, key: "model.ignore_merges", value: "true (with byte fallback)") }
            if let p = file.pre_tokenizer,
               !(p.type == "Split" && p.pattern?.String == " " && p.behavior == "MergedWithPrevious" && p.invert != true) {
                throw .unknownPreTokenizer(source: path, description: p.summary)
            }
            let parts = file.decoder?.type == "Sequence" ? file.decoder?.decoders ?? [] : []
            guard parts.count == 3, parts[0].isReplace("\u{2581}", " "), parts[1].type == "ByteFallback", parts[2].type == "Fuse" else {
                throw .unsupported(source: path, key: "decoder", value: file.decoder?.summary ?? "null")
            }
            kind = .sentencePiece
        } else {
            if model.byte_fallback == true {
                throw .unsupported(source: path, key: "model.byte_fallback", value: "true (without a SentencePiece normalizer)")
            }
            guard let decoder = file.decoder else { throw .missingKey(source: path, key: "decoder") }
            guard decoder.type == "ByteLevel" else { throw .unsupported(source: path, key: "decoder.type", value: decoder.summary) }
            kind = .byteLevel(try PreTokenizer(huggingFace: file.pre_tokenizer, source: path))
        }

        // Vocabulary: model tokens, then added tokens (which may extend it).
        // Ids may leave gaps, but a crafted id must not size the vocabulary: at most 2^24 ids.
        let limit = Self.maximumVocabularySize
        var size = 0
        for (token, id) in model.vocab {
            guard (0..<limit).contains(id) else {
                throw .tokenIDOutOfRange(source: path, key: "model.vocab[\(token.debugDescription)]", id: id, vocabularySize: limit)
            }
            size = max(size, id + 1)
        }
        for a in file.added_tokens {
            guard (0..<limit).contains(a.id) else {
                throw .tokenIDOutOfRange(source: path, key: "added_tokens[\(a.content.debugDescription)]", id: a.id, vocabularySize: limit)
            }
            size = max(size, a.id + 1)
        }
        var vocabulary = [String](repeating: "", count: size)
        for (token, id) in model.vocab {
            if !vocabulary[id].isEmpty { throw .duplicateToken(source: path, token: token, ids: [id]) }
            vocabulary[id] = token
        }
        var added: [AddedToken] = []
        for a in file.added_tokens {
            let key = "added_tokens[\(a.content.debugDescription)]"
            if a.lstrip || a.rstrip || a.single_word { throw .unsupported(source: path, key: key, value: "lstrip/rstrip/single_word") }
            // A normalized added token is matched in the normalized text, where spaces are "▁".
            if kind == .sentencePiece, a.normalized, a.content.unicodeScalars.contains(where: { $0 == " " || $0 == "\u{2581}" }) {
                throw .unsupported(source: path, key: key, value: "normalized, with a space")
            }
            added.append(AddedToken(content: a.content, id: Int32(a.id), special: a.special))
        }
        /// A special token's id: added tokens first, then the vocabulary, as `token_to_id` looks up.
        func lookup(_ token: String, _ key: String) throws(TokenizerError) -> Int {
            let utf8 = Array(token.utf8)
            if let a = file.added_tokens.first(where: { $0.content.utf8.elementsEqual(utf8) }) { return a.id }
            if let v = model.vocab.first(where: { $0.0.utf8.elementsEqual(utf8) }) { return v.1 }
            throw .unknownToken(source: path, key: key, token: token)
        }

        // Special tokens: tokenizer_config.json, else what the post-processor adds.
        var special = SpecialTokens()
        let processor = try file.post_processor.map { p throws(TokenizerError) in try TemplateSpecials(p, source: path) }
        if let t = processor?.bos { special.bos = try lookup(t, "post_processor") }
        if let t = processor?.eos { special.eos = try lookup(t, "post_processor") }
        special.addBOS = processor?.bos != nil
        special.addEOS = processor?.eos != nil
        if let unk = model.unk_token { special.unk = try lookup(unk, "model.unk_token") }
        var chatTemplate: String?
        if let configURL = tokenizerConfig {
            let config = try decodeJSON(HFTokenizerConfig.self, at: configURL)
            let cpath = configURL.path
            if let t = config.bos_token?.content { special.bos = try lookup(t, "\(cpath): bos_token") }
            if let t = config.eos_token?.content { special.eos = try lookup(t, "\(cpath): eos_token") }
            if let t = config.unk_token?.content { special.unk = try lookup(t, "\(cpath): unk_token") }
            if let t = config.pad_token?.content { special.pad = try lookup(t, "\(cpath): pad_token") }
            if let b = config.add_bos_token { special.addBOS = b }
            if let b = config.add_eos_token { special.addEOS = b }
            chatTemplate = config.chat_template?.text
        }
        if chatTemplate == nil {
            let jinja = tokenizerJSON.deletingLastPathComponent().appendingPathComponent("chat_template.jinja")
            chatTemplate = try? String(contentsOf: jinja, encoding: .utf8)
        }

        try self.init(
            source: path, kind: kind, vocabulary: vocabulary, added: added, merges: .pairs(model.merges),
            special: special, ignoreMerges: model.ignore_merges,
            unknownID: try model.unk_token.map { t throws(TokenizerError) in Int32(try lookup(t, "model.unk_token")) },
            fuseUnknown: model.fuse_unk, normalizer: normalizer, chatTemplate: chatTemplate, defaultChatTemplate: defaultChatTemplate)
    }
}

extension PreTokenizer {
    /// Recognises a `tokenizer.json` `pre_tokenizer`.
    init(huggingFace p: HFComponent?, source: String) throws(TokenizerError) {
        func byteLevel(_ c: HFComponent, regex: Bool) -> Bool {
            c.type == "ByteLevel" && c.add_prefix_space != true && (c.use_regex ?? true) == regex
        }
        let description = p.map { $0.summary } ?? "null"
        guard let p else { throw .unknownPreTokenizer(source: source, description: description) }
        if byteLevel(p, regex: true) {
            self = .gpt2
            return
        }
        if p.type == "Sequence", let parts = p.pretokenizers, parts.count == 2 {
            if parts[0].type == "Digits", parts[0].individual_digits == true, byteLevel(parts[1], regex: true) {
                self = .smolLM
                return
            }
            if parts[0].type == "Split", parts[0].behavior == "Isolated", parts[0].invert != true,
               byteLevel(parts[1], regex: false), let regex = parts[0].pattern?.Regex,
               let kind = Self.allCases.first(where: { $0.splitRegex == regex }) {
                self = kind
                return
            }
        }
        throw .unknownPreTokenizer(source: source, description: description)
    }

    /// The regex of the `Split` pre-tokenizer that comes before a regex-free ByteLevel (nil for
    /// the cases that are ByteLevel's own regex).
    var splitRegex: String? {
        switch self {
        case .gpt2, .smolLM: nil
        case .llama3: #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        case .qwen2: #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        }
    }
}
