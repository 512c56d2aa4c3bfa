import Adapters
import COpenBLAS
import Distributed
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// `SkinnyGemm` against OpenBLAS's `cblas_sgemm` on the same single-threaded narrow products
/// (`pissa bench narrow`, BENCHMARKS.md): W·X and Wᵀ·X with X 16 columns wide, as the randomized
/// SVD runs them on each of its lanes.
public enum NarrowProductBenchmark {
    public struct Result: Codable, Sendable {
        /// W is rows × cols; X has `width` columns.
        public var rows: Int
        public var cols: Int
        public var width: Int
        public var openBLASGflops: Double
        public var skinnyGflops: Double
        public var openBLASTransposedGflops: Double
        public var skinnyTransposedGflops: Double
    }

    public static func run(rows m: Int, cols k: Int, width n: Int = 16, repeats: Int = 50) -> Result {
        let saved = BLAS.threadCount
        BLAS.threadCount = 1
        defer { BLAS.threadCount = saved }
        var rng = SeededGenerator(seed: 1)
        let w = Matrix.gaussian(rows: m, cols: k, using: &rng)
        let x = Matrix.gaussian(rows: k, cols: n, using: &rng), xt = Matrix.gaussian(rows: m, cols: n, using: &rng)
        var y = Matrix(rows: m, cols: n), z = Matrix(rows: k, cols: n)
        func gflops(_ flops: Double, _ body: () -> Void) -> Double {
            body()
            var times: [Double] = []
            for _ in 0..<max(1, repeats) {
                let t0 = Date()
                body()
                times.append(Date().timeIntervalSince(t0))
            }
            return flops / times.upperMedian / 1e9
        }
        let flops = 2 * Double(m * k * n)
        return w.storage.withUnsafeBufferPointer { pw in
            x.storage.withUnsafeBufferPointer { px in
                xt.storage.withUnsafeBufferPointer { pxt in
                    y.storage.withUnsafeMutableBufferPointer { py in
                        z.storage.withUnsafeMutableBufferPointer { pz in
                            let (w, x, xt, y, z) = (pw.baseAddress!, px.baseAddress!, pxt.baseAddress!, py.baseAddress!, pz.baseAddress!)
                            return Result(
                                rows: m, cols: k, width: n,
                                openBLASGflops: gflops(flops) {
                                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, w, Int32(k), x, Int32(n), 0, y, Int32(n))
                                },
                                skinnyGflops: gflops(flops) {
                                    SkinnyGemm.gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: w, lda: k, b: x, ldb: n, beta: 0, c: y, ldc: n)
                                },
                                openBLASTransposedGflops: gflops(flops) {
                                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(k), Int32(n), Int32(m), 1, w, Int32(k), xt, Int32(n), 0, z, Int32(n))
                                },
                                skinnyTransposedGflops: gflops(flops) {
                                    SkinnyGemm.gemm(transA: true, transB: false, m: k, n: n, k: m, alpha: 1, a: w, lda: k, b: xt, ldb: n, beta: 0, c: z, ldc: n)
                                })
                        }
                    }
                }
            }
        }
    }
}
