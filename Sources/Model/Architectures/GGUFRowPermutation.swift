/// llama.cpp's row permutation of q and k projections for its interleaved rotary layout, and its
/// inverse. Families whose GGUF copies are permuted say so in `Architecture.ggufPermutedHeads`.
public enum GGUFRowPermutation {
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
