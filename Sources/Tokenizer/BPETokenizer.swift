import Synchronization

/// Byte-level BPE (GPT-2 family: SmolLM2, Llama 3, …): text → UTF-8 bytes → added tokens split off
/// → pre-tokens (`PreTokenizer`) → each pre-token's bytes spelled in GPT-2's byte alphabet → BPE
/// merges. Decoding concatenates the tokens' bytes and repairs invalid UTF-8 with U+FFFD.
///
/// Thread-safe: the only mutable state is a cache of merged words behind a mutex.
public final class BPETokenizer: Sendable {
    public let special: SpecialTokens
    public let preTokenizer: PreTokenizer
    /// The Jinja chat template shipped with the model, as text (`chatTemplate()` interprets it).
    public let chatTemplateSource: String?

    // Internal (not private) where `BPETokenizer+Export.swift` reads them back.

    /// id → the token as the vocabulary spells it (byte-level spelling; added tokens verbatim).
    private let tokens: [String]
    /// id → the bytes it decodes to: `tokenBytes[tokenOffsets[id] ..< tokenOffsets[id + 1]]`.
    private let tokenBytes: [UInt8]
    private let tokenOffsets: [Int32]
    let isSpecialToken: [Bool]
    /// Vocabulary (model) tokens by spelling; added tokens by content (they win, as in HF).
    let modelIDs: [String: Int32]
    let addedIDs: [String: Int32]
    /// byte → the id of its one-character token, or -1 when the vocabulary lacks it.
    private let byteIDs: [Int32]
    /// Emitted for a byte without a token; nil drops the byte (HF BPE without `unk_token`).
    let missingByteID: Int32?
    let merges: MergeTable
    let ignoreMerges: Bool
    private let added: AddedTokenMatcher
    private let cache = Mutex(ChunkCache())

    /// A tokenizer from GGUF-style arrays.
    /// - tokens: the vocabulary in id order; normal tokens in GPT-2's byte-level spelling ("Ġthe").
    /// - merges: "left right" in rank order (`tokenizer.ggml.merges`).
    /// - tokenTypes: `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined,
    ///   5 unused, 6 byte). Types 2, 3 and 4 are added tokens, matched verbatim in the text; 2 and 3
    ///   are also special (dropped by `decode(_:skipSpecialTokens: true)`). Nil: all normal.
    /// - preTokenizer: e.g. `try PreTokenizer(ggufPre: "smollm")`.
    public convenience init(
        tokens: [String], merges: [String], tokenTypes: [Int32]?, special: SpecialTokens,
        preTokenizer: PreTokenizer, chatTemplate: String?
    ) throws(TokenizerError) {
        let source = "GGUF tokenizer"
        if let types = tokenTypes, types.count != tokens.count {
            throw .unsupported(source: source, key: "tokenizer.ggml.token_type",
                               value: "\(types.count) entries for \(tokens.count) tokens")
        }
        var added: [(content: String, id: Int32, special: Bool)] = []
        for (id, type) in (tokenTypes ?? []).enumerated() where type == 2 || type == 3 || type == 4 {
            added.append((tokens[id], Int32(id), type != 4))
        }
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(merges.count)
        for (index, merge) in merges.enumerated() {
            let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw .malformedMerge(source: "tokenizer.ggml.merges", index: index, merge: merge)
            }
            pairs.append((String(parts[0]), String(parts[1])))
        }
        try self.init(
            source: source, vocabulary: tokens, added: added, merges: pairs, special: special,
            preTokenizer: preTokenizer, ignoreMerges: preTokenizer.ignoresMerges, missingByteID: nil,
            chatTemplate: chatTemplate)
    }

    /// The designated initializer: `vocabulary[id]` is the model's token (or "" for an unused id),
    /// `added` the tokens matched verbatim, `merges` the pairs in rank order.
    init(
        source: String, vocabulary: [String], added: [(content: String, id: Int32, special: Bool)],
        merges: [(String, String)], special: SpecialTokens, preTokenizer: PreTokenizer, ignoreMerges: Bool,
        missingByteID: Int32?, chatTemplate: String?
    ) throws(TokenizerError) {
        var tokens = vocabulary
        var modelIDs: [String: Int32] = [:]
        modelIDs.reserveCapacity(vocabulary.count)
        for (id, token) in vocabulary.enumerated() where !token.isEmpty {
            if let other = modelIDs.updateValue(Int32(id), forKey: token) {
                throw .duplicateToken(source: source, token: token, ids: [Int(other), id])
            }
        }
        var addedIDs: [String: Int32] = [:]
        var isSpecial = [Bool](repeating: false, count: vocabulary.count)
        for a in added {
            guard a.id >= 0, Int(a.id) < tokens.count else {
                throw .tokenIDOutOfRange(source: source, key: "added token \(a.content.debugDescription)",
                                         id: Int(a.id), vocabularySize: tokens.count)
            }
            tokens[Int(a.id)] = a.content
            addedIDs[a.content] = a.id
            isSpecial[Int(a.id)] = a.special
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
            if addedIDs[token] == Int32(id) {
                bytes.append(contentsOf: token.utf8)
            } else {
                bytes.append(contentsOf: ByteLevel.decode(token) ?? Array(token.utf8))
            }
            offsets.append(Int32(bytes.count))
        }

        var mergeIDs: [(left: Int32, right: Int32, merged: Int32)] = []
        mergeIDs.reserveCapacity(merges.count)
        for (index, (a, b)) in merges.enumerated() {
            guard let left = modelIDs[a] else { throw .unknownToken(source: source, key: "merge \(index)", token: a) }
            guard let right = modelIDs[b] else { throw .unknownToken(source: source, key: "merge \(index)", token: b) }
            guard let merged = modelIDs[a + b] else {
                throw .unknownToken(source: source, key: "merge \(index)", token: a + b)
            }
            mergeIDs.append((left, right, merged))
        }

        self.tokens = tokens
        self.tokenBytes = bytes
        self.tokenOffsets = offsets
        self.isSpecialToken = isSpecial
        self.modelIDs = modelIDs
        self.addedIDs = addedIDs
        self.byteIDs = (0..<256).map { modelIDs[String(ByteLevel.scalar[$0])] ?? -1 }
        self.missingByteID = missingByteID
        self.merges = MergeTable(mergeIDs)
        self.ignoreMerges = ignoreMerges
        self.added = AddedTokenMatcher(added.map { ($0.content, $0.id) })
        self.special = special
        self.preTokenizer = preTokenizer
        self.chatTemplateSource = chatTemplate
    }

    // MARK: - Vocabulary

    public var vocabularySize: Int { tokens.count }

    /// The token as the vocabulary spells it ("Ġthe"), or nil for an id outside the vocabulary.
    public func token(_ id: Int) -> String? { tokens.indices.contains(id) ? tokens[id] : nil }

    /// The id of a token spelled as in the vocabulary (added tokens verbatim).
    public func id(_ token: String) -> Int? { (addedIDs[token] ?? modelIDs[token]).map(Int.init) }

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
    /// byte range of the pre-token (or added token) it comes from.
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

    /// Pre-tokenises text free of added tokens, then merges each piece (through the cache).
    private func encodeSegment(
        _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into out: inout [Int],
        pieces: UnsafeMutablePointer<[Range<Int>]>?
    ) {
        var splitter = PreTokenSplitter(bytes: bytes, range: range, kind: preTokenizer)
        var symbols: [Int32] = []
        while let piece = splitter.next() {
            defer {
                if let pieces { while pieces.pointee.count < out.count { pieces.pointee.append(piece) } }
            }
            if piece.count == 1 {
                let id = byteIDs[Int(bytes[piece.lowerBound])]
                if id >= 0 { out.append(Int(id)) } else if let m = missingByteID { out.append(Int(m)) }
                continue
            }
            let key = UnsafeBufferPointer(rebasing: bytes[piece])
            let hash = ChunkCache.hash(key)
            if cache.withLock({ $0.append(key, hash: hash, to: &out) }) { continue }
            symbols.removeAll(keepingCapacity: true)
            merge(key, into: &symbols)
            for s in symbols { out.append(Int(s)) }
            cache.withLock { $0.insert(key, hash: hash, ids: symbols) }
        }
    }

    @inline(__always)
    private func appendByte(_ byte: UInt8, to symbols: inout [Int32]) {
        let id = byteIDs[Int(byte)]
        if id >= 0 { symbols.append(id) } else if let m = missingByteID { symbols.append(m) }
    }

    /// BPE on one pre-token.
    private func merge(_ piece: UnsafeBufferPointer<UInt8>, into symbols: inout [Int32]) {
        if ignoreMerges, let id = modelIDs[ByteLevel.encode(piece)] {
            symbols.append(id)
            return
        }
        for b in piece { appendByte(b, to: &symbols) }
        merges.apply(to: &symbols)
    }

    // MARK: - Decoding

    /// The text of `ids`: the tokens' bytes concatenated (added tokens as written), invalid UTF-8
    /// replaced by U+FFFD per maximal ill-formed subsequence (as Rust's `from_utf8_lossy`, which
    /// Hugging Face uses). Ids outside the vocabulary decode to nothing.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids { appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The bytes of one token (nothing for out-of-range ids or skipped special tokens).
    func appendBytes(of id: Int, skipSpecialTokens: Bool, to bytes: inout [UInt8]) {
        guard tokens.indices.contains(id), !(skipSpecialTokens && isSpecialToken[id]) else { return }
        bytes.append(contentsOf: tokenBytes[Int(tokenOffsets[id])..<Int(tokenOffsets[id + 1])])
    }

    /// An incremental decoder for streaming generation.
    public func makeStreamingDecoder(skipSpecialTokens: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }

    /// The rendered conversation's ids (no BOS / EOS beyond what the template writes), and for
    /// each id whether it belongs to an assistant turn (`RenderedChat.assistantUTF8Spans`): the
    /// tokens a fine-tuning loss is computed on. A token counts when its pre-token overlaps a span.
    public func encodeChat(
        _ messages: [ChatMessage], addGenerationPrompt: Bool = false
    ) throws(TokenizerError) -> (ids: [Int], assistantMask: [Bool]) {
        var rendered = try chatTemplate().render(messages, addGenerationPrompt: addGenerationPrompt)
        var ids: [Int] = []
        var pieces: [Range<Int>] = []
        rendered.text.withUTF8 { encode(utf8: $0, into: &ids, pieces: &pieces) }
        let spans = rendered.assistantUTF8Spans
        let mask = pieces.map { p in spans.contains { $0.overlaps(p) } }
        return (ids, mask)
    }

    /// The model's chat template, recognised (`TokenizerError.noChatTemplate` or
    /// `.unknownChatTemplate` otherwise).
    public func chatTemplate() throws(TokenizerError) -> ChatTemplate {
        guard let source = chatTemplateSource else { throw .noChatTemplate }
        return try ChatTemplate(jinja: source)
    }
}
