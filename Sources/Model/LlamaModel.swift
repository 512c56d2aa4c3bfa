import Foundation
import Formats
import LinearAlgebra

/// A Llama-family causal language model on CPU, float32.
///
/// Shape letters: B batch, T time (new positions), N = B·T rows, C hidden, H query heads,
/// KV key/value heads, D head dim, F MLP width, V vocabulary. Activations are row-major (N, ·).
///
/// Threading: OpenBLAS runs single-threaded and the model splits work across `lanes` itself
/// (products by rows, attention by heads), so that both cores never fight OpenBLAS's spinning
/// worker threads (PLATFORM.md).
public final class LlamaModel: @unchecked Sendable {
    public let weights: LlamaWeights
    public var config: HFLlamaConfig { weights.config }
    public let lanes: Int
    let rotary: RotaryTable

    public init(weights: LlamaWeights, lanes: Int = 2, maxPositions: Int? = nil) {
        self.weights = weights
        self.lanes = max(1, lanes)
        let c = weights.config
        rotary = RotaryTable(headDim: c.headDim, maxPositions: maxPositions ?? min(c.maxPositionEmbeddings, 8192),
                             theta: c.ropeParameters?.ropeTheta ?? c.ropeTheta)
    }

    public var maxPositions: Int { rotary.maxPositions }

    // MARK: - Forward

    /// Runs the decoder over `tokens` (B sequences of T, row-major, right-padded) and returns the
    /// final-normed hidden states (N, C). With a `cache` (B = 1) the tokens continue the cached
    /// sequence and their keys/values are appended.
    public func hiddenStates(tokens: [Int32], batch: Int = 1, cache: KVCache? = nil) -> [Float] {
        let c = config
        let N = tokens.count, T = N / batch, C = c.hiddenSize
        precondition(N == batch * T && (cache == nil || batch == 1), "tokens must be B×T; a cache serves B = 1")
        let start = cache?.length ?? 0
        precondition(start + T <= maxPositions, "sequence of \(start + T) positions exceeds \(maxPositions)")
        BLAS.threadCount = 1
        let positions = (0..<N).map { Int32(start + $0 % T) }

        var x = [Float](repeating: 0, count: N * C)             // (N, C) residual stream
        weights.embedding.storage.withUnsafeBufferPointer { e in
            x.withUnsafeMutableBufferPointer { xp in
                for n in 0..<N {
                    (xp.baseAddress! + n * C).update(from: e.baseAddress! + Int(tokens[n]) * C, count: C)
                }
            }
        }
        var work = Workspace(rows: N, config: c)
        for (i, layer) in weights.layers.enumerated() {
            forwardLayer(layer, x: &x, work: &work, batch: batch, positions: positions, cache: cache?.layers[i])
        }
        cache?.length = start + T
        var out = [Float](repeating: 0, count: N * C)
        x.withUnsafeBufferPointer { xp in
            weights.finalNorm.withUnsafeBufferPointer { w in
                out.withUnsafeMutableBufferPointer { o in
                    RMSNorm.forward(x: xp.baseAddress!, weight: w.baseAddress!, y: o.baseAddress!, rstd: nil,
                                    rows: N, cols: C, eps: Float(c.rmsNormEps))
                }
            }
        }
        return out
    }

    /// Logits (rows, V) of `rows` hidden rows (each C wide).
    public func logits(hidden: UnsafePointer<Float>, rows: Int) -> [Float] {
        let V = config.vocabSize, C = config.hiddenSize
        var out = [Float](repeating: 0, count: rows * V)
        out.withUnsafeMutableBufferPointer { o in
            linear(hidden, weights.outputHead, o.baseAddress!, rows: rows)
        }
        return out
    }

    /// `y = x·Wᵀ` (+ y when `accumulate`) for x (rows, in), W (out, in), split across lanes by
    /// rows, or by output columns when there are too few rows (decoding).
    func linear(_ x: UnsafePointer<Float>, _ w: Matrix, _ y: UnsafeMutablePointer<Float>, rows: Int, accumulate: Bool = false) {
        let (outF, inF) = (w.rows, w.cols)
        let beta: Float = accumulate ? 1 : 0
        let p = GemmPointers(x: x, y: y)
        w.storage.withUnsafeBufferPointer { wp in
            let wBase = SendableConstPointer(wp.baseAddress!)
            if rows >= 32 {
                Parallel.chunks(rows, lanes: lanes, minimumChunk: 16) { r in
                    BLAS.gemm(transA: false, transB: true, m: r.count, n: outF, k: inF, alpha: 1,
                              a: p.x + r.lowerBound * inF, lda: inF, b: wBase.pointer, ldb: inF,
                              beta: beta, c: p.y + r.lowerBound * outF, ldc: outF)
                }
            } else {
                Parallel.chunks(outF, lanes: lanes, minimumChunk: 256) { cols in
                    BLAS.gemm(transA: false, transB: true, m: rows, n: cols.count, k: inF, alpha: 1,
                              a: p.x, lda: inF, b: wBase.pointer + cols.lowerBound * inF, ldb: inF,
                              beta: beta, c: p.y + cols.lowerBound, ldc: outF)
                }
            }
        }
    }
}

struct GemmPointers: @unchecked Sendable {
    var x: UnsafePointer<Float>
    var y: UnsafeMutablePointer<Float>
}

struct SendableConstPointer: @unchecked Sendable {
    var pointer: UnsafePointer<Float>
    init(_ p: UnsafePointer<Float>) { pointer = p }
}
