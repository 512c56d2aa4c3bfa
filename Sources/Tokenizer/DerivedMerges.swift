/// BPE merges recovered from a vocabulary that ships none, exactly as transformers recovers them,
/// so that the ids equal those of the `tokenizer.json` transformers writes:
///
/// - a SentencePiece GGUF (Gemma): `generate_merges` (tokenization_utils_base.py) as
///   `integrations/gguf/gguf_tokenizer_mapping.py` calls it for Gemma, ranking by the token's
///   position in the file (Gemma's scores do not follow its merge order, transformers notes);
/// - tiktoken ranks (Qwen): `TikTokenConverter.extract_vocab_merges_from_model`
///   (convert_slow_tokenizer.py).
///
/// Both walk the tokens in id order and, for each token `t`, emit every split `t = l + r` (at each
/// character boundary) where `l` and `r` are tokens too; the merges of one token are ordered
/// `.longerLeftFirst` (generate_merges: sorted by score, then `len(l)`, then `len(r)`, descending)
/// or `.lowerIDsFirst` (TikTokenConverter: sorted by the ranks of `l`, then `r`). The rank of a
/// merge is its index in the list. llama.cpp instead merges, among adjacent symbols whose
/// concatenation is a token, the one with the best score; for Gemma's normal tokens the score
/// falls strictly with the id, so both orders agree there.
enum DerivedMerges {
    enum Order {
        case longerLeftFirst
        case lowerIDsFirst
    }

    static func derive(_ vocabulary: TokenLookup, order: Order) -> [(left: Int32, right: Int32, merged: Int32)] {
        var merges: [(left: Int32, right: Int32, merged: Int32)] = []
        var local: [(left: Int32, right: Int32, merged: Int32)] = []
        vocabulary.forEachSpelling { id, bytes in
            guard bytes.count > 1 else { return }
            local.removeAll(keepingCapacity: true)
            var k = bytes.count - 1
            while k > 0 {   // split points from the last character boundary to the first
                if bytes[k] & 0xC0 != 0x80,
                   let l = vocabulary.id(UnsafeBufferPointer(rebasing: bytes[..<k])),
                   let r = vocabulary.id(UnsafeBufferPointer(rebasing: bytes[k...])) {
                    local.append((l, r, id))
                }
                k -= 1
            }
            if order == .lowerIDsFirst { local.sort { ($0.left, $0.right) < ($1.left, $1.right) } }
            merges.append(contentsOf: local)
        }
        return merges
    }
}
