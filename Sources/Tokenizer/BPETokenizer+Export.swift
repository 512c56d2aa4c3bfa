import Formats
import Foundation

extension BPETokenizer {
    /// The Hugging Face `tokenizer.json` of this tokenizer, laid out as `tokenizers` saves
    /// SmolLM2's (Tests/TokenizerTests/Fixtures/smollm2_tokenizer.json) and transformers Gemma's:
    ///
    /// - `added_tokens`: every added token by id, `special` as here (GGUF token type 3 control →
    ///   true, 4 user-defined → false), `normalized`/`lstrip`/`rstrip`/`single_word` false;
    /// - byte-level: no normalizer, or `{"type": "NFC"}` when `normalizer` is `.nfc`; the
    ///   pre-tokenizer of `preTokenizer` (`.smolLM`: `Sequence[Digits(individual_digits),
    ///   ByteLevel]`, `.gpt2`: `ByteLevel`, `.llama3` and `.qwen2`: `Sequence[Split(regex,
    ///   Isolated), ByteLevel(use_regex: false)]`); a ByteLevel decoder;
    /// - SentencePiece: normalizer `Replace(" " → "▁")`, pre-tokenizer `Split(" ",
    ///   MergedWithPrevious)`, decoder `Sequence[Replace("▁" → " "), ByteFallback, Fuse]`, model
    ///   `byte_fallback: true`;
    /// - a `TemplateProcessing` post-processor that adds BOS / EOS exactly when `special.addBOS` /
    ///   `addEOS` say so (with neither it is `$A` alone, as SmolLM2's);
    /// - model BPE: `vocab` in id order, `merges` as `[left, right]` pairs in rank order,
    ///   `unk_token` only when this tokenizer emits one, `fuse_unk` and `ignore_merges` as here.
    ///
    /// `BPETokenizer(tokenizerJSON:tokenizerConfig:)` and Hugging Face `tokenizers` both read it
    /// back to a tokenizer that encodes every text as this one does.
    public func huggingFaceTokenizerJSON() -> Data {
        let tokenByID = modelTokensByID()
        let isSentencePiece = kind == .sentencePiece
        var out = "{\n"
        out += "  \"version\": \"1.0\",\n"
        out += "  \"truncation\": null,\n"
        out += "  \"padding\": null,\n"
        let added = addedTokens.map { t -> ExportJSON in
            .object([
                ("id", .int(Int(t.id))), ("content", .string(t.content)), ("single_word", .bool(false)),
                ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(false)),
                ("special", .bool(t.special)),
            ])
        }
        out += "  \"added_tokens\": [" + (added.isEmpty ? "" : "\n    " + added.map(\.text).joined(separator: ",\n    ") + "\n  ") + "],\n"
        let space = ExportJSON.string(" "), metaspace = ExportJSON.string("\u{2581}")
        let normalizerJSON: ExportJSON? = isSentencePiece ? .replace(space, by: metaspace)
            : normalizer.map { .object([("type", .string($0.rawValue))]) }
        out += "  \"normalizer\": \(normalizerJSON?.text ?? "null"),\n"
        let preTokenizerJSON: ExportJSON = switch kind {
        case .byteLevel(let p): p.huggingFaceJSON
        case .sentencePiece: .object([
            ("type", .string("Split")), ("pattern", .object([("String", space)])),
            ("behavior", .string("MergedWithPrevious")), ("invert", .bool(false)),
        ])
        }
        out += "  \"pre_tokenizer\": \(preTokenizerJSON.text),\n"
        out += "  \"post_processor\": \(postProcessorJSON().text),\n"
        let decoder: ExportJSON = isSentencePiece
            ? .object([("type", .string("Sequence")), ("decoders", .array([
                .replace(metaspace, by: space), .object([("type", .string("ByteFallback"))]), .object([("type", .string("Fuse"))]),
            ]))])
            : .byteLevel(addPrefixSpace: true, useRegex: true)
        out += "  \"decoder\": \(decoder.text),\n"
        out += "  \"model\": {\n"
        out += "    \"type\": \"BPE\",\n"
        out += "    \"dropout\": null,\n"
        let unk = unknownID.flatMap { token(Int($0)) }
        out += "    \"unk_token\": \(unk.map { ExportJSON.string($0) }?.text ?? "null"),\n"
        out += "    \"continuing_subword_prefix\": \(isSentencePiece ? "null" : "\"\""),\n"
        out += "    \"end_of_word_suffix\": \(isSentencePiece ? "null" : "\"\""),\n"
        out += "    \"fuse_unk\": \(sentencePiece?.fuseUnknown ?? false),\n"
        out += "    \"byte_fallback\": \(isSentencePiece),\n"
        out += "    \"ignore_merges\": \(ignoreMerges),\n"
        let vocab = tokenByID.enumerated().compactMap { id, token in
            token.map { "      \(ExportJSON.quote($0)): \(id)" }
        }
        out += "    \"vocab\": {\n" + vocab.joined(separator: ",\n") + "\n    },\n"
        let pairs = merges.pairsByRank().map { pair in
            "      [\(ExportJSON.quote(tokenByID[Int(pair.left)] ?? "")), \(ExportJSON.quote(tokenByID[Int(pair.right)] ?? ""))]"
        }
        out += "    \"merges\": [\n" + pairs.joined(separator: ",\n") + "\n    ]\n"
        out += "  }\n}\n"
        return Data(out.utf8)
    }

    /// The Hugging Face `tokenizer_config.json`: the special tokens by content (`bos_token`,
    /// `eos_token`, `unk_token`, `pad_token`; absent ones omitted), `add_bos_token` /
    /// `add_eos_token`, `added_tokens_decoder`, `chat_template`, `model_max_length` and
    /// `tokenizer_class`.
    ///
    /// The default class, `PreTrainedTokenizerFast` (transformers 5: `TokenizersBackend`), takes
    /// `tokenizer.json` as it is. SmolLM2's own `GPT2Tokenizer` does not in transformers 5: that
    /// class rebuilds the pre-tokenizer as a plain ByteLevel, dropping the digit splitting, so
    /// " 1 2  3" or " ½" would encode differently.
    public func huggingFaceTokenizerConfig(modelMaxLength: Int, tokenizerClass: String = "PreTrainedTokenizerFast") -> Data {
        func content(_ id: Int?) -> ExportJSON? { id.flatMap { token($0) }.map(ExportJSON.string) }
        let decoderEntries = addedTokens.map { t -> (String, ExportJSON) in
            (String(t.id), .object([
                ("content", .string(t.content)), ("lstrip", .bool(false)), ("normalized", .bool(false)),
                ("rstrip", .bool(false)), ("single_word", .bool(false)), ("special", .bool(t.special)),
            ]))
        }
        // Keys sorted, as transformers writes them.
        let entries: [(String, ExportJSON?)] = [
            ("add_bos_token", .bool(special.addBOS)),
            ("add_eos_token", .bool(special.addEOS)),
            ("add_prefix_space", .bool(false)),
            ("added_tokens_decoder", .object(decoderEntries)),
            ("bos_token", content(special.bos)),
            ("chat_template", (chatTemplateSource ?? defaultChatTemplate?.jinjaSource).map(ExportJSON.string)),
            ("clean_up_tokenization_spaces", .bool(false)),
            ("eos_token", content(special.eos)),
            ("model_max_length", .int(modelMaxLength)),
            ("pad_token", content(special.pad)),
            ("tokenizer_class", .string(tokenizerClass)),
            ("unk_token", content(special.unk)),
        ]
        let lines = entries.compactMap { key, value in value.map { "  \(ExportJSON.quote(key)): \($0.pretty(indent: 2))" } }
        return Data(("{\n" + lines.joined(separator: ",\n") + "\n}\n").utf8)
    }

    /// id → the vocabulary's (model's) spelling of the token; nil for ids only an added token has.
    private func modelTokensByID() -> [String?] {
        var byID = [String?](repeating: nil, count: vocabularySize)
        vocabulary.forEachSpelling { id, bytes in byID[Int(id)] = String(decoding: bytes, as: UTF8.self) }
        return byID
    }

    /// `TemplateProcessing` that adds BOS / EOS as `special` says (SmolLM2: neither, so `$A`).
    private func postProcessorJSON() -> ExportJSON {
        let bos = special.addBOS ? special.bos.flatMap { id in token(id).map { (content: $0, id: id) } } : nil
        let eos = special.addEOS ? special.eos.flatMap { id in token(id).map { (content: $0, id: id) } } : nil
        func item(_ kind: String, _ id: String, _ typeID: Int) -> ExportJSON {
            .object([(kind, .object([("id", .string(id)), ("type_id", .int(typeID))]))])
        }
        func sequence(_ id: String, _ typeID: Int) -> [ExportJSON] {
            [bos.map { item("SpecialToken", $0.content, typeID) }, item("Sequence", id, typeID),
             eos.map { item("SpecialToken", $0.content, typeID) }].compactMap { $0 }
        }
        var table: [(String, ExportJSON)] = []
        for t in [bos, eos].compactMap({ $0 }) where !table.contains(where: { $0.0 == t.content }) {
            table.append((t.content, .object([
                ("id", .string(t.content)), ("ids", .array([.int(t.id)])), ("tokens", .array([.string(t.content)])),
            ])))
        }
        return .object([
            ("type", .string("TemplateProcessing")),
            ("single", .array(sequence("A", 0))),
            ("pair", .array(sequence("A", 0) + sequence("B", 1))),
            ("special_tokens", .object(table)),
        ])
    }
}

extension PreTokenizer {
    /// The `pre_tokenizer` of `tokenizer.json` that `init(huggingFace:source:)` reads back as this case.
    fileprivate var huggingFaceJSON: ExportJSON {
        switch self {
        case .gpt2:
            return .byteLevel(addPrefixSpace: false, useRegex: true)
        case .smolLM:
            return .object([
                ("type", .string("Sequence")),
                ("pretokenizers", .array([
                    .object([("type", .string("Digits")), ("individual_digits", .bool(true))]),
                    .byteLevel(addPrefixSpace: false, useRegex: true),
                ])),
            ])
        case .llama3, .qwen2:
            return .object([
                ("type", .string("Sequence")),
                ("pretokenizers", .array([
                    .object([
                        ("type", .string("Split")), ("pattern", .object([("Regex", .string(splitRegex ?? ""))])),
                        ("behavior", .string("Isolated")), ("invert", .bool(false)),
                    ]),
                    .byteLevel(addPrefixSpace: false, useRegex: false),
                ])),
            ])
        }
    }
}

/// A JSON value whose objects keep their key order (`tokenizer.json` is read by people too).
private indirect enum ExportJSON {
    case bool(Bool)
    case int(Int)
    case string(String)
    case array([ExportJSON])
    case object([(String, ExportJSON)])

    /// tokenizers' `Replace` normalizer / decoder of a literal string.
    static func replace(_ pattern: ExportJSON, by content: ExportJSON) -> ExportJSON {
        .object([("type", .string("Replace")), ("pattern", .object([("String", pattern)])), ("content", content)])
    }

    static func byteLevel(addPrefixSpace: Bool, useRegex: Bool) -> ExportJSON {
        .object([
            ("type", .string("ByteLevel")), ("add_prefix_space", .bool(addPrefixSpace)),
            ("trim_offsets", .bool(true)), ("use_regex", .bool(useRegex)),
        ])
    }

    /// On one line, with `", "` and `": "` separators.
    var text: String {
        switch self {
        case .bool(let b): "\(b)"
        case .int(let i): "\(i)"
        case .string(let s): Self.quote(s)
        case .array(let items): "[" + items.map(\.text).joined(separator: ", ") + "]"
        case .object(let pairs): "{" + pairs.map { "\(Self.quote($0.0)): \($0.1.text)" }.joined(separator: ", ") + "}"
        }
    }

    /// Objects one key per line, nested `indent` spaces deeper; arrays and scalars on one line.
    func pretty(indent: Int) -> String {
        guard case .object(let pairs) = self, !pairs.isEmpty else { return text }
        let pad = String(repeating: " ", count: indent + 2)
        let body = pairs.map { "\(pad)\(Self.quote($0.0)): \($0.1.pretty(indent: indent + 2))" }
        return "{\n" + body.joined(separator: ",\n") + "\n" + String(repeating: " ", count: indent) + "}"
    }

    static func quote(_ text: String) -> String { JSONText.quote(text) }
}
