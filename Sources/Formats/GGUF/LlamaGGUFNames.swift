/// The one place where llama.cpp's GGUF names for a Llama model meet the Hugging Face ones, and
/// the inverse of llama.cpp's q/k row permutation.
///
/// Names (convert_hf_to_gguf.py / gguf-py `tensor_mapping.py`, transformers' GGUF loader):
/// `token_embd` ↔ `model.embed_tokens`, `output_norm` ↔ `model.norm`, `output` ↔ `lm_head`, and per
/// layer `blk.N.<gguf>` ↔ `model.layers.N.<hf>` from `layerTensorNames`; the `.weight` / `.bias`
/// suffix carries over unchanged.
public enum LlamaGGUF {
    /// Tensors outside the layers: (GGUF, Hugging Face), without the `.weight` suffix.
    public static let globalTensorNames: [(gguf: String, huggingFace: String)] = [
        ("token_embd", "model.embed_tokens"),
        ("output_norm", "model.norm"),
        ("output", "lm_head"),
    ]

    /// Tensors of layer N: `blk.N.<gguf>` ↔ `model.layers.N.<huggingFace>`.
    public static let layerTensorNames: [(gguf: String, huggingFace: String)] = [
        ("attn_norm", "input_layernorm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("ffn_norm", "post_attention_layernorm"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ]

    private static let layerPrefixGGUF = "blk."
    private static let layerPrefixHF = "model.layers."
    private static let suffixes = [".weight", ".bias"]

    /// `blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`; nil for names outside the table.
    public static func huggingFaceName(forGGUF name: String) -> String? {
        translate(name, fromPrefix: layerPrefixGGUF, toPrefix: layerPrefixHF, global: globalTensorNames.map { ($0.gguf, $0.huggingFace) },
                  layer: layerTensorNames.map { ($0.gguf, $0.huggingFace) })
    }

    /// `model.layers.3.self_attn.q_proj.weight` → `blk.3.attn_q.weight`; nil for names outside the table.
    public static func ggufName(forHuggingFace name: String) -> String? {
        translate(name, fromPrefix: layerPrefixHF, toPrefix: layerPrefixGGUF, global: globalTensorNames.map { ($0.huggingFace, $0.gguf) },
                  layer: layerTensorNames.map { ($0.huggingFace, $0.gguf) })
    }

    private static func translate(
        _ name: String, fromPrefix: String, toPrefix: String, global: [(String, String)], layer: [(String, String)]
    ) -> String? {
        guard let suffix = suffixes.first(where: { name.hasSuffix($0) }) else { return nil }
        let stem = String(name.dropLast(suffix.count))
        if let match = global.first(where: { $0.0 == stem }) { return match.1 + suffix }
        guard stem.hasPrefix(fromPrefix) else { return nil }
        let rest = stem.dropFirst(fromPrefix.count)
        guard let dot = rest.firstIndex(of: ".") else { return nil }
        let number = rest[..<dot], module = String(rest[rest.index(after: dot)...])
        // Canonical decimal only ("3", not "03" or "+3"), so the mapping is one-to-one.
        guard let index = Int(number), index >= 0, String(index) == number,
              let match = layer.first(where: { $0.0 == module }) else { return nil }
        return "\(toPrefix)\(index).\(match.1)\(suffix)"
    }

    /// Whether the GGUF tensor `name` is a q or k projection, whose rows llama.cpp permutes.
    static func rotaryKind(ofGGUF name: String) -> RotaryKind? {
        if name.hasSuffix(".attn_q.weight") || name.hasSuffix(".attn_q.bias") { return .query }
        if name.hasSuffix(".attn_k.weight") || name.hasSuffix(".attn_k.bias") { return .key }
        return nil
    }

    enum RotaryKind { case query, key }

    // MARK: The q/k row permutation

    /// Undoes llama.cpp's row permutation of a q or k projection (rows × cols, row-major, as read
    /// from GGUF), giving the Hugging Face layout:
    ///
    ///     HF = W.reshape(heads, rows / heads / 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)
    ///
    /// i.e. within each head, GGUF row 2i + t becomes HF row t·(rows/heads/2) + i. This is
    /// transformers' `reverse_permute_weights`; `heads` is the number of attention heads for q and
    /// of key/value heads for k. `rows` must be a multiple of 2·heads and `data.count` rows·cols.
    public static func unpermuteRows(_ data: inout [Float], rows: Int, cols: Int, heads: Int) {
        reorderRows(&data, rows: rows, cols: cols, heads: heads, toHuggingFace: true)
    }

    /// The permutation llama.cpp's converter applies (HF → GGUF), the inverse of `unpermuteRows`:
    /// `W.reshape(heads, 2, rows / heads / 2, cols).swapaxes(1, 2).reshape(rows, cols)`.
    public static func permuteRows(_ data: inout [Float], rows: Int, cols: Int, heads: Int) {
        reorderRows(&data, rows: rows, cols: cols, heads: heads, toHuggingFace: false)
    }

    private static func reorderRows(_ data: inout [Float], rows: Int, cols: Int, heads: Int, toHuggingFace: Bool) {
        precondition(heads > 0 && rows % (2 * heads) == 0 && data.count == rows * cols,
                     "q/k permutation: \(rows)×\(cols) with \(heads) heads (\(data.count) values)")
        let source = data
        source.withUnsafeBufferPointer { src in
            data.withUnsafeMutableBufferPointer { dst in
                for hf in 0..<rows {
                    let gguf = ggufRow(ofHuggingFaceRow: hf, rows: rows, heads: heads)
                    let (from, to) = toHuggingFace ? (gguf, hf) : (hf, gguf)
                    (dst.baseAddress! + to * cols).update(from: src.baseAddress! + from * cols, count: cols)
                }
            }
        }
    }

    /// The GGUF row that holds Hugging Face row `hf` of a q or k projection of `rows` rows over
    /// `heads` heads: within head h, HF row t·half + i is GGUF row 2i + t (half = rows/heads/2).
    public static func ggufRow(ofHuggingFaceRow hf: Int, rows: Int, heads: Int) -> Int {
        let half = rows / heads / 2
        let (h, t, i) = (hf / (2 * half), (hf / half) % 2, hf % half)
        return (h * half + i) * 2 + t
    }
}
