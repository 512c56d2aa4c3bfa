import LinearAlgebra

/// A linear weight W (out, in) as the projections use it: only its two products, never the
/// weight itself, so that a quantised weight can stay quantised.
///
/// - `forward`:  y (n, out) = β·y + x (n, in) · Wᵀ
/// - `backward`: dx (n, in) = β·dx + dy (n, out) · W
///
/// Both split their work across `lanes` threads (OpenBLAS single-threaded inside each lane).
/// Implementations: `Matrix` (dense float32, frozen), `NF4Matrix` (4-bit NormalFloat, frozen,
/// dequantised a tile of rows at a time inside the products) and `WeightBuffer` (dense float32 in
/// the trainer's store, trained in full fine-tuning: `gradient` receives dW). The LoRA path
/// (`DecoderModel.project` / `projectBackward`) is written once over this protocol.
public protocol LinearWeight: Sendable {
    /// Output features (the weight's rows).
    var rows: Int { get }
    /// Input features (the weight's columns).
    var cols: Int { get }

    /// y (n, out) = β·y + x (n, in) · Wᵀ.
    func forward(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, beta: Float, lanes: Int)

    /// Output columns `outputs` of the same product, y[:, outputs] = β·y[:, outputs] + x · W[outputs]ᵀ
    /// (y is (n, out)), on the calling thread: a lane's share when a few rows of x (decoding) go
    /// through a group of projections in one parallel region.
    func forward(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, beta: Float, outputs: Range<Int>)

    /// dx (n, in) = β·dx + dy (n, out) · W.
    func backward(_ dy: UnsafePointer<Float>, rows n: Int, into dx: UnsafeMutablePointer<Float>, beta: Float, lanes: Int)

    /// W in float32 (out, in): the exact values the products use.
    func dequantized() -> Matrix

    /// Bytes held by the weight.
    var byteCount: Int { get }

    /// dL/dW (out, in), into which backward adds; nil for a frozen weight.
    var gradient: UnsafeMutablePointer<Float>? { get }
}

/// The dense products on a row-major (out, in) float32 weight in memory, for `Matrix` and
/// `WeightBuffer` alike.
enum DenseLinear {
    /// Below this many output columns a few-row product (decoding) stays on one lane: handing a
    /// sub-millisecond product to two threads costs more than it saves (docs/PLATFORM.md).
    static let decodeSplitColumns = 64

    /// Output columns per product of a wide many-row product (the output head's prefill, outF ≥
    /// 4 × wideColumnTile). The lanes take whole tiles of W's rows with all of x, so each packs
    /// only its share of W (a row split made every lane pack all 671 MB of Gemma 3's head), and
    /// a tile's C (n × 2048) stays in cache while OpenBLAS first scales it by β and then adds into
    /// it once per block of the inner dimension (one C of 512 × 262 144 took three passes
    /// through memory).
    static let wideColumnTile = 2048

    /// Training and prefill (n ≥ 32) split x's rows across lanes, or a wide W's rows in tiles;
    /// decoding splits W's rows.
    static func forward(_ w: UnsafePointer<Float>, outF: Int, inF: Int, x: UnsafePointer<Float>, rows n: Int,
                        into y: UnsafeMutablePointer<Float>, beta: Float, lanes: Int) {
        let p = Pointers(x: x, y: y, xa: nil), wp = ConstPointer(w)
        if n >= 32, outF >= 4 * wideColumnTile {
            let tiles = (outF + wideColumnTile - 1) / wideColumnTile
            try? Parallel.forEach(tiles, lanes: lanes) { t, _ in
                let c0 = t * wideColumnTile, cols = min(wideColumnTile, outF - c0)
                BLAS.gemm(transA: false, transB: true, m: n, n: cols, k: inF, alpha: 1, a: p.x, lda: inF,
                          b: wp.pointer + c0 * inF, ldb: inF, beta: beta, c: p.y + c0, ldc: outF)
            }
        } else if n >= 32 {
            Parallel.chunks(n, lanes: lanes, minimumChunk: 16) { r in
                BLAS.gemm(transA: false, transB: true, m: r.count, n: outF, k: inF, alpha: 1, a: p.x + r.lowerBound * inF, lda: inF,
                          b: wp.pointer, ldb: inF, beta: beta, c: p.y + r.lowerBound * outF, ldc: outF)
            }
        } else {
            Parallel.chunks(outF, lanes: lanes, minimumChunk: decodeSplitColumns) { cols in
                forward(wp.pointer, outF: outF, inF: inF, x: p.x, rows: n, into: p.y, beta: beta, outputs: cols)
            }
        }
    }

    /// Output columns `outputs` only, on the calling thread.
    static func forward(_ w: UnsafePointer<Float>, outF: Int, inF: Int, x: UnsafePointer<Float>, rows n: Int,
                        into y: UnsafeMutablePointer<Float>, beta: Float, outputs cols: Range<Int>) {
        BLAS.gemm(transA: false, transB: true, m: n, n: cols.count, k: inF, alpha: 1, a: x, lda: inF, b: w + cols.lowerBound * inF,
                  ldb: inF, beta: beta, c: y + cols.lowerBound, ldc: outF)
    }

    /// Split by rows of dy / dx.
    static func backward(_ w: UnsafePointer<Float>, outF: Int, inF: Int, dy: UnsafePointer<Float>, rows n: Int,
                         into dx: UnsafeMutablePointer<Float>, beta: Float, lanes: Int) {
        let p = Pointers(x: dy, y: dx, xa: nil), wp = ConstPointer(w)
        Parallel.chunks(n, lanes: lanes, minimumChunk: 16) { r in
            BLAS.gemm(transA: false, transB: false, m: r.count, n: inF, k: outF, alpha: 1, a: p.x + r.lowerBound * outF, lda: outF,
                      b: wp.pointer, ldb: inF, beta: beta, c: p.y + r.lowerBound * inF, ldc: inF)
        }
    }
}

/// The dense float32 frozen base: OpenBLAS on the stored matrix.
extension Matrix: LinearWeight {
    public func forward(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, beta: Float, lanes: Int) {
        storage.withUnsafeBufferPointer {
            DenseLinear.forward($0.baseAddress!, outF: rows, inF: cols, x: x, rows: n, into: y, beta: beta, lanes: lanes)
        }
    }

    public func forward(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, beta: Float, outputs: Range<Int>) {
        storage.withUnsafeBufferPointer {
            DenseLinear.forward($0.baseAddress!, outF: rows, inF: cols, x: x, rows: n, into: y, beta: beta, outputs: outputs)
        }
    }

    public func backward(_ dy: UnsafePointer<Float>, rows n: Int, into dx: UnsafeMutablePointer<Float>, beta: Float, lanes: Int) {
        storage.withUnsafeBufferPointer {
            DenseLinear.backward($0.baseAddress!, outF: rows, inF: cols, dy: dy, rows: n, into: dx, beta: beta, lanes: lanes)
        }
    }

    public func dequantized() -> Matrix { self }

    public var byteCount: Int { count * MemoryLayout<Float>.size }
}

/// A weight in the trainer's store (full fine-tuning): the same dense products on its values.
extension WeightBuffer: LinearWeight {
    public func forward(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, beta: Float, lanes: Int) {
        DenseLinear.forward(values, outF: rows, inF: cols, x: x, rows: n, into: y, beta: beta, lanes: lanes)
    }

    public func forward(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, beta: Float, outputs: Range<Int>) {
        DenseLinear.forward(values, outF: rows, inF: cols, x: x, rows: n, into: y, beta: beta, outputs: outputs)
    }

    public func backward(_ dy: UnsafePointer<Float>, rows n: Int, into dx: UnsafeMutablePointer<Float>, beta: Float, lanes: Int) {
        DenseLinear.backward(values, outF: rows, inF: cols, dy: dy, rows: n, into: dx, beta: beta, lanes: lanes)
    }

    public func dequantized() -> Matrix {
        Matrix(rows: rows, cols: cols, storage: Array(UnsafeBufferPointer(start: values, count: rows * cols)))
    }

    public var byteCount: Int { rows * cols * MemoryLayout<Float>.size }
}

/// How a model's frozen projection weights are held.
public enum FrozenQuantization: Sendable, Equatable {
    /// float32 `Matrix`.
    case none
    /// `NF4Matrix` with this block size, its absmax values 8-bit quantised too when `doubleQuant`.
    case nf4(blockSize: Int, doubleQuant: Bool)

    /// The weight in this representation (`w` itself when `.none`).
    public func apply(_ w: Matrix) -> any LinearWeight {
        switch self {
        case .none: w
        case let .nf4(blockSize, doubleQuant): NF4Matrix(quantizing: w, blockSize: blockSize, doubleQuant: doubleQuant)
        }
    }
}

extension ModelWeights {
    /// Bytes held by the projections of every layer (embedding, head, norms and biases excluded).
    public var projectionBytes: Int {
        layers.reduce(0) { sum, layer in layer.projections.reduce(sum) { $0 + $1.byteCount } }
    }

    /// Replaces every dense projection weight by its `quantization`, one at a time (so that at
    /// most one extra float32 matrix is alive beside the quantised ones).
    public mutating func quantizeProjections(_ quantization: FrozenQuantization) {
        guard quantization != .none else { return }
        for l in layers.indices {
            for slot in layers[l].projections.indices {
                guard let w = layers[l].projections[slot] as? Matrix else { continue }
                layers[l].projections[slot] = quantization.apply(w)   // w's storage is freed at the end of this iteration
            }
        }
    }

    /// The same model with every projection in float32 (dequantised where quantised).
    public func dequantized() -> ModelWeights {
        var out = self
        for l in out.layers.indices {
            for slot in out.layers[l].projections.indices where !(out.layers[l].projections[slot] is Matrix) {
                out.layers[l].projections[slot] = out.layers[l].projections[slot].dequantized()
            }
        }
        return out
    }
}
