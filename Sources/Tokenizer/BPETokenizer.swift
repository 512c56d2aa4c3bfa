import Synchronization

/// A BPE tokenizer of one of two kinds (`Kind`): byte-level BPE (GPT-2 family: SmolLM2, Llama 3,
/// Qwen) or SentencePiece-style BPE with byte fallback (Gemma). Both split added tokens off first
/// (leftmost-longest, as Hugging Face), turn the rest into symbols and apply merges, lowest rank
/// first. Decoding concatenates the tokens' bytes and repairs invalid UTF-8 as Hugging Face does.
///
/// Thread-safe: the only mutable state is a cache of merged words behind a mutex.
public final class BPETokenizer: Sendable {
    /// How the vocabulary spells text, and so how text becomes the symbols that merges combine.
    public enum Kind: Sendable, Equatable {
        /// Byte-level BPE: text → UTF-8 bytes → pre-tokens (`PreTokenizer`) → each pre-token's
        /// bytes spelled in GPT-2's byte alphabet ("Ġ" is the space, `ByteLevel`) → merges.
        case byteLevel(PreTokenizer)
        /// SentencePiece-style BPE with byte fallback: the text between added tokens, spaces
        /// written "▁", is one word of characters; characters without a token become `<0xXX>`
        /// byte tokens (`SentencePieceAlphabet`).
        case sentencePiece
    }

    public let kind: Kind
    /// Applied to the text between added tokens before byte-level pre-tokenisation (Qwen2's
    /// NFC); nil for none.
    public let normalizer: TextNormalizer?
    public let special: SpecialTokens
    /// The Jinja chat template shipped with the model, as text (`chatTemplate()` interprets it).
    public let chatTemplateSource: String?
    /// The template `chatTemplate()` gives when none ships (Gemma 3's GGUF has none): the model
    /// family's, named by whoever builds the tokenizer.
    public let defaultChatTemplate: ChatTemplate?

    /// The pre-tokenizer of a byte-level tokenizer (nil for SentencePiece).
    public var preTokenizer: PreTokenizer? { if case .byteLevel(let p) = kind { p } else { nil } }

    // Internal (not private) where `BPETokenizer+Export.swift` reads them back.

    /// id → the token as the vocabulary spells it (byte-level spelling; added tokens verbatim).
    private let tokens: [String]
    /// id → the bytes it decodes to: `tokenBytes[tokenOffsets[id] ..< tokenOffsets[id + 1]]`.
    private let tokenBytes: [UInt8]
    private let tokenOffsets: [Int32]
    let isSpecialToken: [Bool]
    /// The model's vocabulary by spelling, byte for byte (added tokens are looked up first).
    let vocabulary: TokenLookup
    /// Added tokens in id order, and their contents → index into `addedTokens`.
    let addedTokens: [AddedToken]
    private let addedLookup: TokenLookup
    /// Byte-level: byte → the id of its one-character token, or -1 when the vocabulary lacks it.
    private let byteIDs: [Int32]
    /// Emitted for a byte (byte-level) or character (SentencePiece) without a token; nil drops it
    /// (HF BPE without `unk_token`).
    let unknownID: Int32?
    let merges: MergeTable
    let ignoreMerges: Bool
    let sentencePiece: SentencePieceAlphabet?
    private let added: AddedTokenMatcher
    private let cache = Mutex(ChunkCache())

    /// Where merges come from: pairs in rank order, or derived from the vocabulary (`DerivedMerges`).
    enum MergeSource {
        case pairs([(String, String)])
        case derived(DerivedMerges.Order)
    }

    /// A byte-level tokenizer from GGUF-style arrays.
    /// - tokens: the vocabulary in id order; normal tokens in GPT-2's byte-level spelling ("Ġthe").
    /// - merges: "left right" in rank order (`tokenizer.ggml.merges`).
    /// - tokenTypes: `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined,
    ///   5 unused, 6 byte). Types 2, 3 and 4 are added tokens, matched verbatim in the text; 2 and 3
    ///   are also special (dropped by `decode(_:skipSpecialTokens: true)`). Nil: all normal.
    /// - preTokenizer: e.g. `try PreTokenizer(ggufPre: "smollm")`.
    public convenience init(
        tokens: [String], merges: [String], tokenTypes: [Int32]?, special: SpecialTokens,
        preTokenizer: PreTokenizer, chatTemplate: String?, defaultChatTemplate: ChatTemplate? = nil
    ) throws(TokenizerError) {
        try self.init(source: "GGUF tokenizer", tokens: tokens, merges: merges, tokenTypes: tokenTypes, special: special,
                      preTokenizer: preTokenizer, chatTemplate: chatTemplate, defaultChatTemplate: defaultChatTemplate)
    }

    /// The same, naming `source` (the GGUF file) in errors.
    convenience init(
        source: String, tokens: [String], merges: [String], tokenTypes: [Int32]?, special: SpecialTokens,
        preTokenizer: PreTokenizer, chatTemplate: String?, defaultChatTemplate: ChatTemplate?
    ) throws(TokenizerError) {
        let added = try AddedToken.fromTokenTypes(tokenTypes, tokens: tokens, source: source)
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(merges.count)
        for (index, merge) in merges.enumerated() {
            let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw .malformedMerge(source: "\(source): tokenizer.ggml.merges", index: index, merge: merge)
            }
            pairs.append((String(parts[0]), String(parts[1])))
        }
        try self.init(
            source: source, kind: .byteLevel(preTokenizer), vocabulary: tokens, added: added, merges: .pairs(pairs),
            special: special, ignoreMerges: preTokenizer.ignoresMerges, unknownID: nil,
            chatTemplate: chatTemplate, defaultChatTemplate: defaultChatTemplate)
    }

    /// The designated initializer: `vocabulary[id]` is the model's token (or "" for an unused id),
    /// `added` the tokens matched verbatim in the text.
    init(
        source: String, kind: Kind, vocabulary: [String], added: [AddedToken], merges mergeSource: MergeSource,
        special: SpecialTokens, ignoreMerges: Bool, unknownID: Int32?, fuseUnknown: Bool = false,
        normalizer: TextNormalizer? = nil, chatTemplate: String?, defaultChatTemplate: ChatTemplate?
    ) throws(TokenizerError) {
        var duplicates: [(token: String, first: Int, second: Int)] = []
        let lookup = TokenLookup(vocabulary, duplicates: &duplicates)
        if let d = duplicates.first { throw .duplicateToken(source: source, token: d.token, ids: [d.first, d.second]) }
        var tokens = vocabulary
        var isSpecial = [Bool](repeating: false, count: vocabulary.count)
        var isAdded = [Bool](repeating: false, count: vocabulary.count)
        let added = added.sorted { $0.id < $1.id }
        for a in added {
            guard a.id >= 0, Int(a.id) < tokens.count else {
                throw .tokenIDOutOfRange(source: source, key: "added token \(a.content.debugDescription)",
                                         id: Int(a.id), vocabularySize: tokens.count)
            }
            tokens[Int(a.id)] = a.content
            isSpecial[Int(a.id)] = a.special
            isAdded[Int(a.id)] = true
        }
        let addedLookup = TokenLookup(added.map(\.content), duplicates: &duplicates)
        if let d = duplicates.first {
            throw .duplicateToken(source: source, token: d.token, ids: [Int(added[d.first].id), Int(added[d.second].id)])
        }
        for (key, id) in [("bos", special.bos), ("eos", special.eos), ("unk", special.unk), ("pad", special.pad)] {
            if let id, !(0..<tokens.count).contains(id) {
                throw .tokenIDOutOfRange(source: source, key: key, id: id, vocabularySize: tokens.count)
            }
        }

        var bytes: [UInt8] = []
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(tokens.count + 1)
        for (id, token) in tokens.enumerated() {
            switch kind {
            case .byteLevel:
                bytes.append(contentsOf: isAdded[id] ? Array(token.utf8) : ByteLevel.decode(token) ?? Array(token.utf8))
            case .sentencePiece:
                bytes.append(contentsOf: SentencePieceAlphabet.decodedBytes(token))
            }
            offsets.append(Int32(bytes.count))
        }

        var mergeIDs: [(left: Int32, right: Int32, merged: Int32)] = []
        switch mergeSource {
        case .derived(let order):
            mergeIDs = DerivedMerges.derive(lookup, order: order)
        case .pairs(let pairs):
            mergeIDs.reserveCapacity(pairs.count)
            for (index, (a, b)) in pairs.enumerated() {
                guard let left = lookup.id(a) else { throw .unknownToken(source: source, key: "merge \(index)", token: a) }
                guard let right = lookup.id(b) else { throw .unknownToken(source: source, key: "merge \(index)", token: b) }
                guard let merged = lookup.id(a + b) else {
                    throw .unknownToken(source: source, key: "merge \(index)", token: a + b)
                }
                mergeIDs.append((left, right, merged))
            }
        }

        self.kind = kind
        self.normalizer = normalizer
        self.tokens = tokens
        self.tokenBytes = bytes
        self.tokenOffsets = offsets
        self.isSpecialToken = isSpecial
        self.vocabulary = lookup
        self.addedTokens = added
        self.addedLookup = addedLookup
        self.byteIDs = (0..<256).map { lookup.id(String(ByteLevel.scalar[$0])) ?? -1 }
        self.unknownID = unknownID
        self.merges = MergeTable(mergeIDs)
        self.ignoreMerges = ignoreMerges
        if case .sentencePiece = kind {
            self.sentencePiece = SentencePieceAlphabet(
                vocabulary: lookup, tokens: vocabulary, unknownID: unknownID, fuseUnknown: fuseUnknown)
        } else {
            self.sentencePiece = nil
        }
        self.added = AddedTokenMatcher(added.map { ($0.content, $0.id) })
        self.special = special
        self.chatTemplateSource = chatTemplate
        self.defaultChatTemplate = defaultChatTemplate
    }

    // MARK: - Vocabulary

    public var vocabularySize: Int { tokens.count }

    /// The token as the vocabulary spells it ("Ġthe", "▁the"), or nil for an id outside the vocabulary.
    public func token(_ id: Int) -> String? { tokens.indices.contains(id) ? tokens[id] : nil }

    /// The id of a token spelled as in the vocabulary (added tokens verbatim), compared byte for byte.
    public func id(_ token: String) -> Int? {
        if let index = addedLookup.id(token) { return Int(addedTokens[Int(index)].id) }
        return vocabulary.id(token).map(Int.init)
    }

    /// Whether `id` is a special token (skipped by `decode(_:skipSpecialTokens: true)`).
    public func isSpecial(_ id: Int) -> Bool { isSpecialToken.indices.contains(id) && isSpecialToken[id] }

    // MARK: - Encoding

    /// Token ids of `text`. Added and special tokens written in the text ("<|im_start|>") are
    /// single tokens, as in Hugging Face. `addSpecialTokens` adds BOS / EOS only where `special`
    /// says so (`addBOS`, `addEOS`).
    public func encode(_ text: String, addSpecialTokens: Bool = false) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(text.utf8.count / 3 + 2)
        if addSpecialTokens, special.addBOS, let bos = special.bos { out.append(bos) }
        var text = text
        text.withUTF8 { encode(utf8: $0, into: &out) }
        if addSpecialTokens, special.addEOS, let eos = special.eos { out.append(eos) }
        return out
    }

    /// Encodes valid UTF-8, appending to `out`. With `pieces`, also appends for each token the
    /// byte range of the pre-token (SentencePiece: the text between added tokens) or added token
    /// it comes from.
    func encode(utf8 bytes: UnsafeBufferPointer<UInt8>, into out: inout [Int], pieces: UnsafeMutablePointer<[Range<Int>]>? = nil) {
        var segmentStart = 0
        var i = 0
        if !added.isEmpty {
            while i < bytes.count {
                if let m = added.match(bytes, at: i) {
                    encodeSegment(bytes, segmentStart..<i, into: &out, pieces: pieces)
                    out.append(Int(m.id))
                    pieces?.pointee.append(i..<(i + m.length))
                    i += m.length
                    segmentStart = i
                } else {
                    i += 1
                }
            }
        }
        encodeSegment(bytes, segmentStart..<bytes.count, into: &out, pieces: pieces)
    }

    /// Encodes text free of added tokens, normalised first when the tokenizer has a normalizer
    /// (`pieces` then name the raw bytes each token's normalised pre-token came from).
    private func encodeSegment(
        _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into out: inout [Int],
        pieces: UnsafeMutablePointer<[Range<Int>]>?
    ) {
        guard !range.isEmpty else { return }
        guard let normalizer, let normalized = normalizer.normalize(UnsafeBufferPointer(rebasing: bytes[range])) else {
            return encodeNormalizedSegment(bytes, range, into: &out, pieces: pieces)
        }
        normalized.bytes.withUnsafeBufferPointer { text in
            guard let pieces else { return encodeNormalizedSegment(text, 0..<text.count, into: &out, pieces: nil) }
            var ids: [Int] = [], local: [Range<Int>] = []
            encodeNormalizedSegment(text, 0..<text.count, into: &ids, pieces: &local)
            out.append(contentsOf: ids)
            for raw in normalized.rawRanges(local) {
                pieces.pointee.append((range.lowerBound + raw.lowerBound)..<(range.lowerBound + raw.upperBound))
            }
        }
    }

    /// Encodes normalised text free of added tokens.
    private func encodeNormalizedSegment(
        _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into out: inout [Int],
        pieces: UnsafeMutablePointer<[Range<Int>]>?
    ) {
        guard !range.isEmpty else { return }
        switch kind {
        case .byteLevel(let preTokenizer):
            var splitter = PreTokenSplitter(bytes: bytes, range: range, kind: preTokenizer)
            while let piece = splitter.next() {
                if piece.count == 1 {
                    let id = byteIDs[Int(bytes[piece.lowerBound])]
                    if id >= 0 { out.append(Int(id)) } else if let m = unknownID { out.append(Int(m)) }
                } else {
                    mergeThroughCache(bytes, piece, into: &out)
                }
                if let pieces { while pieces.pointee.count < out.count { pieces.pointee.append(piece) } }
            }
        case .sentencePiece:
            mergeThroughCache(bytes, range, into: &out)
            if let pieces { while pieces.pointee.count < out.count { pieces.pointee.append(range) } }
        }
    }

    /// The longest word whose ids are cached (SentencePiece words run to the next added token).
    private static let maximumCachedWord = 256

    /// Merges one word (a pre-token, or SentencePiece text between added tokens), remembering short ones.
    private func mergeThroughCache(_ bytes: UnsafeBufferPointer<UInt8>, _ word: Range<Int>, into out: inout [Int]) {
        let key = UnsafeBufferPointer(rebasing: bytes[word])
        let cacheable = word.count <= Self.maximumCachedWord
        let hash = cacheable ? ChunkCache.hash(key) : 0
        if cacheable, cache.withLock({ $0.append(key, hash: hash, to: &out) }) { return }
        var symbols: [Int32] = []
        if let sentencePiece {
            sentencePiece.appendSymbols(bytes, word, to: &symbols)
            merges.apply(to: &symbols)
        } else {
            mergeByteLevel(key, into: &symbols)
        }
        for s in symbols { out.append(Int(s)) }
        if cacheable { cache.withLock { $0.insert(key, hash: hash, ids: symbols) } }
    }

    /// Byte-level BPE on one pre-token.
    private func mergeByteLevel(_ piece: UnsafeBufferPointer<UInt8>, into symbols: inout [Int32]) {
        if ignoreMerges, let id = ByteLevel.withSpelling(of: piece, { vocabulary.id($0) }) {
            symbols.append(id)
            return
        }
        for b in piece {
            let id = byteIDs[Int(b)]
            if id >= 0 { symbols.append(id) } else if let m = unknownID { symbols.append(m) }
        }
        merges.apply(to: &symbols)
    }

    // MARK: - Decoding

    /// The text of `ids`: the tokens' bytes concatenated (added tokens as written, SentencePiece's
    /// "▁" as a space), with Hugging Face's repair of invalid UTF-8: byte-level, U+FFFD per maximal
    /// ill-formed subsequence (Rust's `from_utf8_lossy`); SentencePiece, each run of byte tokens
    /// that is not valid UTF-8 as a whole becomes one U+FFFD per byte (the ByteFallback decoder).
    /// Ids outside the vocabulary decode to nothing.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        var run: [UInt8] = []
        for id in ids { appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &bytes, byteRun: &run) }
        SentencePieceAlphabet.flush(&run, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The bytes of one token (nothing for out-of-range ids or skipped special tokens). A
    /// SentencePiece byte token goes to `byteRun`, which any other token first flushes to `bytes`.
    func appendBytes(of id: Int, skipSpecialTokens: Bool, to bytes: inout [UInt8], byteRun: inout [UInt8]) {
        guard tokens.indices.contains(id), !(skipSpecialTokens && isSpecialToken[id]) else { return }
        if let sentencePiece {
            let b = sentencePiece.fallbackByte[id]
            if b >= 0 {
                byteRun.append(UInt8(b))
                return
            }
            SentencePieceAlphabet.flush(&byteRun, into: &bytes)
        }
        bytes.append(contentsOf: tokenBytes[Int(tokenOffsets[id])..<Int(tokenOffsets[id + 1])])
    }

    /// An incremental decoder for streaming generation.
    public func makeStreamingDecoder(skipSpecialTokens: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }

    // MARK: - Chat

    /// The rendered conversation's ids (no BOS / EOS beyond what the template writes), and for
    /// each id whether it belongs to an assistant turn (`RenderedChat.assistantUTF8Spans`): the
    /// tokens a fine-tuning loss is computed on. A token counts when its pre-token (SentencePiece:
    /// its text between added tokens) overlaps a span; the templates put an added token on both
    /// sides of each assistant message, so no token straddles a span's edge. `template` overrides
    /// the tokenizer's own (`chatTemplate()`).
    public func encodeChat(
        _ messages: [ChatMessage], addGenerationPrompt: Bool = false, template: ChatTemplate? = nil
    ) throws(TokenizerError) -> (ids: [Int], assistantMask: [Bool]) {
        let template = if let template { template } else { try chatTemplate() }
        var rendered = try template.render(messages, addGenerationPrompt: addGenerationPrompt)
        var ids: [Int] = []
        var pieces: [Range<Int>] = []
        rendered.text.withUTF8 { encode(utf8: $0, into: &ids, pieces: &pieces) }
        let spans = rendered.assistantUTF8Spans
        let mask = pieces.map { p in spans.contains { $0.overlaps(p) } }
        return (ids, mask)
    }

    /// The model's chat template: the shipped Jinja source, recognised (`.unknownChatTemplate`
    /// otherwise), else `defaultChatTemplate`, else `TokenizerError.noChatTemplate`.
    public func chatTemplate() throws(TokenizerError) -> ChatTemplate {
        if let source = chatTemplateSource { return try ChatTemplate(jinja: source) }
        if let defaultChatTemplate { return defaultChatTemplate }
        throw .noChatTemplate
    }
}
