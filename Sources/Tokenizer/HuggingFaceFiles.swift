import Formats
import Foundation

// The layouts of Hugging Face's `tokenizer.json` and `tokenizer_config.json`, as
// `BPETokenizer(tokenizerJSON:tokenizerConfig:)` reads them.

/// The bytes of a JSON file: refused when empty or not UTF-8, with the path in the error.
func readJSONFile(_ url: URL) throws(TokenizerError) -> Data {
    // An empty file is refused before reading: Foundation's `Data(contentsOf:)` leaks a 4 KiB
    // buffer on empty files (found by the tokenizer fuzz target under LeakSanitizer).
    if let size = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? Int, size == 0 {
        throw .malformedJSON(path: url.path, reason: "the file is empty")
    }
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
        throw .unreadableFile(path: url.path, reason: ErrorText.reason(error))
    }
    // JSON is UTF-8 (RFC 8259 §8.1); Foundation only checks the strings it decodes.
    guard data.withUnsafeBytes({ String(validating: $0, as: UTF8.self) }) != nil else {
        throw .malformedJSON(path: url.path, reason: "not valid UTF-8")
    }
    return data
}

func decodeJSON<T: Decodable>(_ type: T.Type, at url: URL) throws(TokenizerError) -> T {
    let data = try readJSONFile(url)
    do { return try JSONDecoder().decode(T.self, from: data) } catch {
        throw .malformedJSON(path: url.path, reason: ErrorText.plain(error))
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
struct TemplateSpecials {
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
