import Formats
import Foundation

extension BPETokenizer {
    /// The largest vocabulary a `tokenizer.json` may describe (ids `0..<2^24`; Gemma 3 has 262,144).
    public static let maximumVocabularySize = 1 << 24

    /// A tokenizer from Hugging Face files: `tokenizer.json` (model BPE without byte fallback,
    /// no normalizer, a ByteLevel-family pre-tokenizer that `PreTokenizer` implements, ByteLevel
    /// decoder) and, optionally, `tokenizer_config.json` (special tokens, `add_bos_token`,
    /// `add_eos_token`, `chat_template`). Without `add_bos_token` / `add_eos_token`, BOS / EOS
    /// are added exactly where the `post_processor` (TemplateProcessing) puts special tokens.
    /// A `chat_template.jinja` beside `tokenizer.json` is read when the config has no template.
    public convenience init(tokenizerJSON: URL, tokenizerConfig: URL?) throws(TokenizerError) {
        let path = tokenizerJSON.path
        let file: HFTokenizerFile = try decodeJSON(HFTokenizerFile.self, at: tokenizerJSON)
        let model = file.model

        if let type = model.type, type != "BPE" { throw .unsupported(source: path, key: "model.type", value: type) }
        if model.byte_fallback == true { throw .unsupported(source: path, key: "model.byte_fallback", value: "true") }
        if let d = model.dropout, d > 0 { throw .unsupported(source: path, key: "model.dropout", value: "\(d)") }
        for (key, value) in [("continuing_subword_prefix", model.continuing_subword_prefix),
                             ("end_of_word_suffix", model.end_of_word_suffix)] {
            if let value, !value.isEmpty { throw .unsupported(source: path, key: "model.\(key)", value: value) }
        }
        if let n = file.normalizer { throw .unsupported(source: path, key: "normalizer", value: n.type ?? "?") }
        guard let decoder = file.decoder else { throw .missingKey(source: path, key: "decoder") }
        guard decoder.type == "ByteLevel" else {
            throw .unsupported(source: path, key: "decoder.type", value: decoder.type ?? "?")
        }
        let preTokenizer = try PreTokenizer(huggingFace: file.pre_tokenizer, source: path)

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
        for a in file.added_tokens ?? [] {
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
        var added: [(content: String, id: Int32, special: Bool)] = []
        for a in file.added_tokens ?? [] {
            if a.lstrip == true || a.rstrip == true || a.single_word == true {
                throw .unsupported(source: path, key: "added_tokens[\(a.content.debugDescription)]",
                                   value: "lstrip/rstrip/single_word")
            }
            added.append((a.content, Int32(a.id), a.special ?? false))
        }
        let allIDs = model.vocab.merging((file.added_tokens ?? []).map { ($0.content, $0.id) }) { _, addedID in addedID }
        func lookup(_ token: String, _ key: String) throws(TokenizerError) -> Int {
            guard let id = allIDs[token] else { throw .unknownToken(source: path, key: key, token: token) }
            return id
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

        var merges: [(String, String)] = []
        merges.reserveCapacity(model.merges.count)
        for (index, m) in model.merges.enumerated() {
            guard let pair = m.pair else { throw .malformedMerge(source: path, index: index, merge: m.text) }
            merges.append(pair)
        }
        try self.init(
            source: path, vocabulary: vocabulary, added: added, merges: merges, special: special,
            preTokenizer: preTokenizer, ignoreMerges: model.ignore_merges ?? false,
            missingByteID: try model.unk_token.map { t throws(TokenizerError) in Int32(try lookup(t, "model.unk_token")) },
            chatTemplate: chatTemplate)
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
            if parts[0].type == "Split", parts[0].pattern?.Regex == Self.llama3Regex,
               parts[0].behavior == "Isolated", parts[0].invert != true, byteLevel(parts[1], regex: false) {
                self = .llama3
                return
            }
        }
        throw .unknownPreTokenizer(source: source, description: description)
    }

    static let llama3Regex =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
}

// MARK: - File layouts

private func decodeJSON<T: Decodable>(_ type: T.Type, at url: URL) throws(TokenizerError) -> T {
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
    do { return try JSONDecoder().decode(T.self, from: data) } catch {
        throw .malformedJSON(path: url.path, reason: ErrorText.plain(error))
    }
}

/// The parts of `tokenizer.json` that byte-level BPE needs (snake_case as in the file).
struct HFTokenizerFile: Decodable {
    struct AddedToken: Decodable {
        var id: Int
        var content: String
        var special: Bool?
        var lstrip: Bool?
        var rstrip: Bool?
        var single_word: Bool?
    }

    struct Model: Decodable {
        var type: String?
        var vocab: [String: Int]
        var merges: [HFMerge]
        var unk_token: String?
        var ignore_merges: Bool?
        var byte_fallback: Bool?
        var dropout: Double?
        var continuing_subword_prefix: String?
        var end_of_word_suffix: String?
    }

    var added_tokens: [AddedToken]?
    var normalizer: HFComponent?
    var pre_tokenizer: HFComponent?
    var post_processor: HFComponent?
    var decoder: HFComponent?
    var model: Model
}

/// A merge: "a b" (older files) or ["a", "b"].
struct HFMerge: Decodable {
    var pair: (String, String)?
    var text: String

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) {
            text = s
            let parts = s.split(separator: " ", omittingEmptySubsequences: false)
            pair = parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty ? (String(parts[0]), String(parts[1])) : nil
        } else {
            let parts = try c.decode([String].self)
            text = parts.joined(separator: " ")
            pair = parts.count == 2 ? (parts[0], parts[1]) : nil
        }
    }
}

/// A normalizer / pre-tokenizer / post-processor / decoder entry: only the fields we inspect.
struct HFComponent: Decodable {
    struct Pattern: Decodable {
        var Regex: String?
        var String: String?
    }

    /// One item of TemplateProcessing's `single`.
    struct TemplateItem: Decodable {
        struct Ref: Decodable { var id: String }
        var SpecialToken: Ref?
        var Sequence: Ref?
    }

    var type: String?
    var pretokenizers: [HFComponent]?
    var processors: [HFComponent]?
    var individual_digits: Bool?
    var add_prefix_space: Bool?
    var use_regex: Bool?
    var pattern: Pattern?
    var behavior: String?
    var invert: Bool?
    var single: [TemplateItem]?

    var summary: String {
        var s = type ?? "?"
        if let parts = pretokenizers { s += "[" + parts.map(\.summary).joined(separator: ", ") + "]" }
        if let r = pattern?.Regex { s += "(\(r.debugDescription))" }
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
            guard let sequence = items.firstIndex(where: { $0.Sequence != nil }) else {
                throw .unsupported(source: source, key: "post_processor.single", value: "no $A sequence")
            }
            let before = items[..<sequence].compactMap(\.SpecialToken?.id)
            let after = items[(sequence + 1)...].compactMap(\.SpecialToken?.id)
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
