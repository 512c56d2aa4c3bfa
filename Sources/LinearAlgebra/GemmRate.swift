import Foundation

/// The sgemm rate this machine gives right now, measured the way the model runs its training and
/// prefill products: `lanes` threads, each an OpenBLAS single-threaded y = x·Wᵀ on its own rows
/// of x against one shared W. Benchmarks report their achieved GFLOP/s against this figure
/// measured in the same run, so that the distance to the hardware limit is visible on a machine
/// whose speed drifts.
public enum GemmRate {
    /// Median GFLOP/s of `repeats` products x (rows, k) · Wᵀ (k, n), x's rows split over `lanes`.
    /// The default shape is SmolLM2's gate projection on a 4 × 256 batch.
    public static func measure(rows: Int = 1024, n: Int = 1536, k: Int = 576, lanes: Int = 2, repeats: Int = 10) -> Double {
        let saved = BLAS.threadCount
        BLAS.threadCount = 1
        defer { BLAS.threadCount = saved }
        var rng = SeededGenerator(seed: 2)
        let buffers = Buffers(x: Matrix.gaussian(rows: rows, cols: k, using: &rng),
                              w: Matrix.gaussian(rows: n, cols: k, using: &rng), outputs: rows * n)
        func product() {
            Parallel.chunks(rows, lanes: lanes, minimumChunk: 16) { r in
                buffers.x.storage.withUnsafeBufferPointer { x in
                    buffers.w.storage.withUnsafeBufferPointer { w in
                        BLAS.gemm(transA: false, transB: true, m: r.count, n: n, k: k, alpha: 1,
                                  a: x.baseAddress! + r.lowerBound * k, lda: k, b: w.baseAddress!, ldb: k,
                                  beta: 0, c: buffers.y + r.lowerBound * n, ldc: n)
                    }
                }
            }
        }
        product()   // warm-up: pages of y touched, OpenBLAS buffers allocated
        var times: [Double] = []
        for _ in 0..<max(1, repeats) {
            let t0 = Date()
            product()
            times.append(Date().timeIntervalSince(t0))
        }
        return 2 * Double(rows * n * k) / times.upperMedian / 1e9
    }

    /// Operands shared by the lanes; each lane writes its own rows of y.
    private final class Buffers: @unchecked Sendable {
        let x: Matrix, w: Matrix
        let y: UnsafeMutablePointer<Float>
        init(x: Matrix, w: Matrix, outputs: Int) {
            (self.x, self.w) = (x, w)
            y = .allocate(capacity: outputs)
        }
        deinit { y.deallocate() }
    }
}
