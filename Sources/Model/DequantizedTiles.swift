import Foundation
import LinearAlgebra

/// The products of a quantised frozen weight W (out, in) that is never whole in float32: each
/// lane dequantises a tile of W's rows into a per-lane scratch buffer and runs the gemm on that
/// tile (`NF4Matrix`, and `GGMLBlockMatrix` beyond a few rows of x).
///
/// - forward, y = x·Wᵀ: the tiles are ranges of output columns (= weight rows); each tile is
///   dequantised once and its block of y's columns computed, tiles spread over the lanes;
/// - backward, dx = dy·W: the tiles are ranges of k (= weight rows), accumulated into dx
///   (dx = β·dx + dy[:, t₀]·W[t₀] + dy[:, t₁]·W[t₁] + …); lanes split dy's rows and each
///   dequantises every tile itself (dequantisation is ≈ 1 % of the products at 1024 rows).
///
/// Results equal the dense products on the dequantised weight up to the gemm's summation order.
enum DequantizedTiles {
    /// Largest tile of weight rows in the forward product (its tile count is a multiple of the
    /// lanes so that they get equal work).
    static let forwardTileRows = 128
    /// Tile of weight rows (k) in the backward product.
    static let backwardTileRows = 256

    /// Writes weight rows `range` in float32 ((range.count, in), row-major) to the pointer.
    typealias Dequantize = @Sendable (_ range: Range<Int>, _ into: UnsafeMutablePointer<Float>) -> Void

    /// y (n, out) = β·y + x (n, in) · Wᵀ.
    static func forward(outF: Int, inF: Int, x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>,
                        beta: Float, lanes: Int, dequantize: Dequantize) {
        guard outF > 0, n > 0 else { return }
        let lanes = max(1, lanes)
        let tiles = min(outF, lanes * ((outF + lanes * forwardTileRows - 1) / (lanes * forwardTileRows)))
        let p = Pointers(x: x, y: y, xa: nil)
        Parallel.chunks(tiles, lanes: lanes) { lane in
            let widest = (outF + tiles - 1) / tiles
            TileScratch.shared.withBuffer(capacity: widest * inF) { w in   // (tile, in)
                for t in lane {
                    let r = (outF * t / tiles)..<(outF * (t + 1) / tiles)
                    dequantize(r, w)
                    BLAS.gemm(transA: false, transB: true, m: n, n: r.count, k: inF, alpha: 1, a: p.x, lda: inF,
                              b: w, ldb: inF, beta: beta, c: p.y + r.lowerBound, ldc: outF)
                }
            }
        }
    }

    /// Output columns `outputs` of y = β·y + x·Wᵀ on the calling thread, one tile at a time.
    static func forward(outF: Int, inF: Int, x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>,
                        beta: Float, outputs: Range<Int>, dequantize: Dequantize) {
        guard !outputs.isEmpty, n > 0 else { return }
        TileScratch.shared.withBuffer(capacity: min(forwardTileRows, outputs.count) * inF) { w in
            for start in stride(from: outputs.lowerBound, to: outputs.upperBound, by: forwardTileRows) {
                let r = start..<min(outputs.upperBound, start + forwardTileRows)
                dequantize(r, w)
                BLAS.gemm(transA: false, transB: true, m: n, n: r.count, k: inF, alpha: 1, a: x, lda: inF,
                          b: w, ldb: inF, beta: beta, c: y + r.lowerBound, ldc: outF)
            }
        }
    }

    /// dx (n, in) = β·dx + dy (n, out) · W.
    static func backward(outF: Int, inF: Int, dy: UnsafePointer<Float>, rows n: Int, into dx: UnsafeMutablePointer<Float>,
                         beta: Float, lanes: Int, dequantize: Dequantize) {
        guard n > 0 else { return }
        let p = Pointers(x: dy, y: dx, xa: nil)
        if outF == 0 {   // dx = β·dx
            for i in 0..<(n * inF) { dx[i] = beta == 0 ? 0 : beta * dx[i] }
            return
        }
        let tile = backwardTileRows
        Parallel.chunks(n, lanes: lanes, minimumChunk: 16) { rr in
            let dy0 = p.x + rr.lowerBound * outF, dx0 = p.y + rr.lowerBound * inF
            TileScratch.shared.withBuffer(capacity: min(tile, outF) * inF) { w in   // (tile, in)
                for start in stride(from: 0, to: outF, by: tile) {
                    let r = start..<min(outF, start + tile)
                    dequantize(r, w)
                    BLAS.gemm(transA: false, transB: false, m: rr.count, n: inF, k: r.count, alpha: 1, a: dy0 + start, lda: outF,
                              b: w, ldb: inF, beta: start == 0 ? beta : 1, c: dx0, ldc: inF)
                }
            }
        }
    }
}

/// Float32 scratch buffers for dequantised tiles, handed out one per running lane and kept for
/// reuse (at most one buffer per concurrently running lane stays allocated, each as large as the
/// largest tile asked for): allocating them per product would page-fault on every call.
final class TileScratch: @unchecked Sendable {
    static let shared = TileScratch()

    private let lock = NSLock()
    private var free: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)] = []

    func withBuffer<R>(capacity: Int, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        var buffer = take()
        if buffer == nil || buffer!.capacity < capacity {
            buffer?.pointer.deallocate()
            buffer = (.allocate(capacity: max(1, capacity)), max(1, capacity))
        }
        defer { give(buffer!) }
        return body(buffer!.pointer)
    }

    private func take() -> (pointer: UnsafeMutablePointer<Float>, capacity: Int)? {
        lock.lock(); defer { lock.unlock() }
        return free.popLast()
    }

    private func give(_ b: (pointer: UnsafeMutablePointer<Float>, capacity: Int)) {
        lock.lock(); defer { lock.unlock() }
        free.append(b)
    }
}
