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
    /// - byte-level BPE: no normalizer, a ByteLevel-family pre-tokenizer that `PreTokenizer`
    ///   implements, ByteLevel decoder (SmolLM2, Llama 3, Qwen from tiktoken ranks);
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
        if let n = file.normalizer {
            guard n.isReplace(" ", "\u{2581}") else { throw .unsupported(source: path, key: "normalizer", value: n.summary) }
            guard model.byte_fallback == true else {
                throw .unsupported(source: path, key: "model.byte_fallback", value: "false (with a SentencePiece normalizer)")
            }
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
            if model.byte_fallback == true { throw .unsupported(source: path, key: "model.byte_fallback", value: "true (without a normalizer)") }
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
            fuseUnknown: model.fuse_unk, chatTemplate: chatTemplate, defaultChatTemplate: defaultChatTemplate)
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

// MARK: - File layouts

/// The bytes of a JSON file: refused when empty or not UTF-8, with the path in the error.
private func readJSONFile(_ url: URL) throws(TokenizerError) -> Data {
    // An empty file is refused before reading: Foundation's `Data(contentsOf:)` leaks a 4 KiB
    // buffer on empty files (found by the tokenizer fuzz target under LeakSanitizer).
    if let size = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? Int, size == 0 {
        throw .malformedJSON(path: url.path, reason: "the file is empty")
    }
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
        throw .unreadableFile(path: url.path, reason: error.localizedDescription)
    }
    // JSON is UTF-8 (RFC 8259 §8.1); Foundation only checks the strings it decodes.
    guard data.withUnsafeBytes({ String(validating: $0, as: UTF8.self) }) != nil else {
        throw .malformedJSON(path: url.path, reason: "not valid UTF-8")
    }
    return data
}

private func decodeJSON<T: Decodable>(_ type: T.Type, at url: URL) throws(TokenizerError) -> T {
    let data = try readJSONFile(url)
    do { return try JSONDecoder().decode(T.self, from: data) } catch {
        throw .malformedJSON(path: url.path, reason: "\(error)")
    }
}

/// The parts of `tokenizer.json` that BPE needs (snake_case as in the file), read with
/// `JSONReader` so that the vocabulary keeps tokens that differ only in Unicode normalisation.
struct HFTokenizerFile {
    struct AddedToken {
        var id: Int
        var content: String
        var special = false
        var normalized = false
        var lstrip = false
        var rstrip = false
        var single_word = false
    }

    struct Model {
        var type: String?
        /// (token, id) in file order.
        var vocab: [(String, Int)] = []
        var merges: [(String, String)] = []
        var unk_token: String?
        var ignore_merges = false
        var byte_fallback: Bool?
        var fuse_unk = false
        var dropout: Double?
        var continuing_subword_prefix: String?
        var end_of_word_suffix: String?
    }

    var added_tokens: [AddedToken] = []
    var normalizer: HFComponent?
    var pre_tokenizer: HFComponent?
    var post_processor: HFComponent?
    var decoder: HFComponent?
    var model = Model()

    init(contentsOf url: URL) throws(TokenizerError) {
        let path = url.path
        let data = try readJSONFile(url)
        let parsed: Result<JSONValue, JSONReader.Failure> = data.withUnsafeBytes { raw in
            do throws(JSONReader.Failure) { return .success(try JSONReader.parse(raw.bindMemory(to: UInt8.self))) } catch { return .failure(error) }
        }
        let root: JSONValue
        switch parsed {
        case .success(let value): root = value
        case .failure(let f): throw .malformedJSON(path: path, reason: "byte \(f.offset): \(f.message)")
        }
        func bad(_ key: String, _ expected: String) -> TokenizerError {
            .malformedJSON(path: path, reason: "\(key) is not \(expected)")
        }
        /// A token id: an integral number (a huge one is reported as outside the vocabulary).
        func tokenID(_ v: JSONValue?, _ key: String) throws(TokenizerError) -> Int {
            guard let d = v?.number, d == d.rounded() else { throw bad(key, "an integer") }
            guard let id = v?.int else {
                throw .tokenIDOutOfRange(source: path, key: key, id: d < 0 ? Int.min : Int.max,
                                         vocabularySize: BPETokenizer.maximumVocabularySize)
            }
            return id
        }
        guard root.members != nil else { throw bad("the document", "an object") }
        guard let m = root["model"], m.members != nil else { throw .missingKey(source: path, key: "model") }
        model.type = m["type"]?.string
        guard let vocab = m["vocab"]?.members else { throw bad("model.vocab", "an object") }
        model.vocab.reserveCapacity(vocab.count)
        for (token, value) in vocab { model.vocab.append((token, try tokenID(value, "model.vocab[\(token.debugDescription)]"))) }
        guard let merges = m["merges"]?.array else { throw bad("model.merges", "an array") }
        model.merges.reserveCapacity(merges.count)
        for (index, merge) in merges.enumerated() {
            guard let pair = Self.pair(merge) else {
                let text = merge.string ?? (merge.array ?? []).compactMap(\.string).joined(separator: " ")
                throw .malformedMerge(source: path, index: index, merge: text)
            }
            model.merges.append(pair)
        }
        model.unk_token = m["unk_token"]?.string
        model.ignore_merges = m["ignore_merges"]?.bool ?? false
        model.byte_fallback = m["byte_fallback"]?.bool
        model.fuse_unk = m["fuse_unk"]?.bool ?? false
        model.dropout = m["dropout"]?.number
        model.continuing_subword_prefix = m["continuing_subword_prefix"]?.string
        model.end_of_word_suffix = m["end_of_word_suffix"]?.string

        if let list = root["added_tokens"], !list.isNull {
            guard let items = list.array else { throw bad("added_tokens", "an array") }
            for (index, item) in items.enumerated() {
                guard let content = item["content"]?.string else { throw bad("added_tokens[\(index)].content", "a string") }
                let id = try tokenID(item["id"], "added_tokens[\(content.debugDescription)]")
                added_tokens.append(AddedToken(
                    id: id, content: content, special: item["special"]?.bool ?? false,
                    normalized: item["normalized"]?.bool ?? false, lstrip: item["lstrip"]?.bool ?? false,
                    rstrip: item["rstrip"]?.bool ?? false, single_word: item["single_word"]?.bool ?? false))
            }
        }
        normalizer = HFComponent(root["normalizer"])
        pre_tokenizer = HFComponent(root["pre_tokenizer"])
        post_processor = HFComponent(root["post_processor"])
        decoder = HFComponent(root["decoder"])
    }

    /// A merge: "a b" (older files) or ["a", "b"].
    private static func pair(_ v: JSONValue) -> (String, String)? {
        if let s = v.string {
            let parts = s.split(separator: " ", omittingEmptySubsequences: false)
            return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty ? (String(parts[0]), String(parts[1])) : nil
        }
        guard let a = v.array, a.count == 2, let l = a[0].string, let r = a[1].string else { return nil }
        return (l, r)
    }
}

/// A normalizer / pre-tokenizer / post-processor / decoder entry: only the fields we inspect.
struct HFComponent {
    struct Pattern {
        var Regex: String?
        var String: String?
    }

    /// One item of TemplateProcessing's `single`: a special token's id, or a sequence's.
    struct TemplateItem {
        var specialToken: String?
        var sequence: String?
    }

    var type: String?
    var pretokenizers: [HFComponent]?
    var processors: [HFComponent]?
    var decoders: [HFComponent]?
    var individual_digits: Bool?
    var add_prefix_space: Bool?
    var use_regex: Bool?
    var pattern: Pattern?
    var content: String?
    var behavior: String?
    var invert: Bool?
    var single: [TemplateItem]?

    /// nil for null or absent; fields of the wrong type read as absent.
    init?(_ v: JSONValue?) {
        guard let v, v.members != nil else { return nil }
        type = v["type"]?.string
        pretokenizers = v["pretokenizers"]?.array?.compactMap { HFComponent($0) }
        processors = v["processors"]?.array?.compactMap { HFComponent($0) }
        decoders = v["decoders"]?.array?.compactMap { HFComponent($0) }
        individual_digits = v["individual_digits"]?.bool
        add_prefix_space = v["add_prefix_space"]?.bool
        use_regex = v["use_regex"]?.bool
        if let p = v["pattern"], p.members != nil { pattern = Pattern(Regex: p["Regex"]?.string, String: p["String"]?.string) }
        content = v["content"]?.string
        behavior = v["behavior"]?.string
        invert = v["invert"]?.bool
        single = v["single"]?.array?.map { item in
            TemplateItem(specialToken: item["SpecialToken"]?["id"]?.string, sequence: item["Sequence"]?["id"]?.string)
        }
    }

    /// `Replace` of the literal `from` by `to`.
    func isReplace(_ from: String, _ to: String) -> Bool {
        type == "Replace" && pattern?.String == from && pattern?.Regex == nil && content == to
    }

    var summary: String {
        var s = type ?? "?"
        if let parts = pretokenizers ?? decoders { s += "[" + parts.map(\.summary).joined(separator: ", ") + "]" }
        if let r = pattern?.Regex { s += "(\(r.debugDescription))" }
        if let t = pattern?.String { s += "(\(t.debugDescription) → \((content ?? behavior ?? "?").debugDescription))" }
        if type == "ByteLevel" { s += "(add_prefix_space: \(add_prefix_space ?? false), use_regex: \(use_regex ?? true))" }
        if type == "Digits" { s += "(individual_digits: \(individual_digits ?? false))" }
        return s
    }
}

/// The special tokens a post-processor puts before and after a single sequence.
private struct TemplateSpecials {
    var bos: String?
    var eos: String?

    init(_ p: HFComponent, source: String) throws(TokenizerError) {
        switch p.type {
        case "ByteLevel":
            return
        case "Sequence":
            for part in p.processors ?? [] {
                let t = try TemplateSpecials(part, source: source)
                bos = t.bos ?? bos
                eos = t.eos ?? eos
            }
        case "TemplateProcessing":
            let items = p.single ?? []
            guard let sequence = items.firstIndex(where: { $0.sequence != nil }) else {
                throw .unsupported(source: source, key: "post_processor.single", value: "no $A sequence")
            }
            let before = items[..<sequence].compactMap(\.specialToken)
            let after = items[(sequence + 1)...].compactMap(\.specialToken)
            guard before.count <= 1, after.count <= 1 else {
                throw .unsupported(source: source, key: "post_processor.single", value: "more than one special token per side")
            }
            bos = before.first
            eos = after.first
        default:
            throw .unsupported(source: source, key: "post_processor.type", value: p.type ?? "?")
        }
    }
}

/// The parts of `tokenizer_config.json` we use. Token fields are a string or {"content": …}.
struct HFTokenizerConfig: Decodable {
    struct TokenField: Decodable {
        var content: String?

        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() {
                content = nil
            } else if let s = try? c.decode(String.self) {
                content = s
            } else {
                struct Object: Decodable { var content: String }
                content = try c.decode(Object.self).content
            }
        }
    }

    var bos_token: TokenField?
    var eos_token: TokenField?
    var unk_token: TokenField?
    var pad_token: TokenField?
    var add_bos_token: Bool?
    var add_eos_token: Bool?
    var chat_template: TemplateField?

    /// A template string, or a list of named templates (the one named "default" is used).
    struct TemplateField: Decodable {
        var text: String?

        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) {
                text = s
            } else {
                struct Named: Decodable { var name: String; var template: String }
                text = try c.decode([Named].self).first { $0.name == "default" }?.template
            }
        }
    }
}
