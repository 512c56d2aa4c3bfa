import Adapters
import Distributed
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// Each C kernel (`CPUKernels`) in its copy for each kernel level this CPU runs, on one thread, on
/// SmolLM2-135M's shapes (`pissa bench kernels`): the figures that decide whether the AVX-512
/// level uses a kernel's AVX-512 copy or keeps its AVX2 one (Sources/CKernels/dispatch.c).
/// Levels alternate call by call, so that a busy machine slows both alike.
public enum KernelBenchmark {
    public struct Result: Codable, Sendable {
        public var kernel: String
        /// What one call does, e.g. "1536×576 Q4_1 · x (1 row)".
        public var shape: String
        /// Median microseconds per call, by level ("avx2", "avx512").
        public var microseconds: [String: Double]
        /// avx2 time / avx512 time (> 1: AVX-512 faster); nil without AVX-512.
        public var avx512Speedup: Double?
    }

    public static func run(repeats: Int = 31) -> [Result] {
        var rng = SeededGenerator(seed: 5)
        func floats(_ n: Int, std: Float = 1) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
            for i in 0..<n { p[i] = rng.nextGaussian() * std }
            return p
        }
        func bytes(_ n: Int) -> UnsafeMutablePointer<UInt8> {
            let p = UnsafeMutablePointer<UInt8>.allocate(capacity: n)
            for i in 0..<n { p[i] = UInt8(truncatingIfNeeded: rng.next()) }
            return p
        }
        let (C, F, N, V) = (576, 1536, 1024, 49152)
        let x = floats(N * F), y = floats(N * F), z = floats(N * F), w = floats(F * C), out = floats(N * F)
        let weight = floats(C, std: 0.1), rstd = floats(N), codes = bytes(F * C / 2), absmax = floats(F * C / 64)
        let positions = UnsafeMutablePointer<Int32>.allocate(capacity: N)
        for i in 0..<N { positions[i] = Int32(i) }
        let cosTable = floats(N * 32), sinTable = floats(N * 32), head = floats(V * 2)
        let blocks = bytes(F * C / 32 * 34)
        for b in 0..<(F * C / 32) {   // float16 scales ≈ 0.01 at the front of each 32-value block (d, m; dmin)
            for o in [0, 2] { blocks[b * 34 + o] = 0x1F; blocks[b * 34 + o + 1] = 0x20 }
        }
        defer {
            for p in [x, y, z, w, out, weight, rstd, absmax, cosTable, sinTable, head] { p.deallocate() }
            codes.deallocate(); blocks.deallocate(); positions.deallocate()
        }

        var cases: [(String, String, () -> Void)] = []
        for format in BlockFormat.allCases {
            let cols = format.blockValues == 256 ? 512 : C   // K-quant rows: whole super-blocks
            let rowBytes = cols / format.blockValues * format.blockBytes
            if format.blockValues == 256 {   // d at 0 (Q4_K: dmin at 2) / at 208 (Q6_K), scales ≈ 0.01
                for b in 0..<(F * cols / 256) {
                    for o in format == .q6_K ? [208] : [0, 2] { blocks[b * format.blockBytes + o] = 0x1F; blocks[b * format.blockBytes + o + 1] = 0x20 }
                }
            }
            cases.append(("block product", "\(F)×\(cols) \(format) · x (1 row)", {
                BlockProducts.forward(format: format, w: blocks, rowBytes: rowBytes, rows: F, cols: cols, x: x, n: 1, ldx: cols,
                                      y: out, ldy: F, beta: 0)
            }))
        }
        cases += [
            ("RMSNorm forward", "\(N)×\(C)", { CPUKernels.rmsNormForward(x: x, weight: weight, y: out, rstd: rstd, rows: N, cols: C, eps: 1e-5) }),
            ("RMSNorm backward", "\(N)×\(C)", {
                CPUKernels.rmsNormBackward(dy: y, x: x, weight: weight, rstd: rstd, dx: out, rows: N, cols: C, accumulate: false)
            }),
            ("SwiGLU forward", "\(N)×\(F)", { CPUKernels.swiGLUForward(gate: x, up: y, out: out, count: N * F) }),
            ("SwiGLU backward", "\(N)×\(F)", { CPUKernels.swiGLUBackward(dh: z, gate: x, up: y, dGate: out, dUp: w, count: min(N * F, F * C)) }),
            ("GeGLU forward", "\(N)×\(F)", { CPUKernels.geGLUForward(gate: x, up: y, out: out, count: N * F) }),
            ("GeGLU backward", "\(N)×\(F)", { CPUKernels.geGLUBackward(dh: z, gate: x, up: y, dGate: out, dUp: w, count: min(N * F, F * C)) }),
            ("rotary", "\(N) rows × 9 heads × 64", {
                CPUKernels.rotary(out, rows: N, heads: 9, headDim: 64, positions: positions, cos: cosTable, sin: sinTable, inverse: false)
            }),
            ("softmax rows", "\(N) rows × 256", { for r in 0..<N { CPUKernels.softmaxRow(out + r * 256, count: 256) } }),
            ("softmax row (loss head)", "2 rows × \(V)", { for r in 0..<2 { CPUKernels.softmaxRow(head + r * V, count: V) } }),
            ("online softmax tiles (loss head)", "2 rows × \(V), tiles of 2048", {
                for r in 0..<2 {
                    var (m, s): (Float, Float) = (-.infinity, 0)
                    for t in stride(from: 0, to: V, by: 2048) {
                        CPUKernels.onlineSoftmaxTile(head + r * V + t, count: min(2048, V - t), max: &m, sum: &s)
                    }
                }
            }),
            ("softmax backward rows", "\(N) rows × 256", {
                for r in 0..<N { CPUKernels.softmaxBackwardRow(p: x + r * 256, dp: out + r * 256, count: 256, scale: 0.125) }
            }),
            ("SkinnyGemm W·X", "\(F)×\(C) · \(C)×16", {
                SkinnyGemm.gemm(transA: false, transB: false, m: F, n: 16, k: C, alpha: 1, a: w, lda: C, b: x, ldb: 16, beta: 0, c: out, ldc: 16)
            }),
            ("SkinnyGemm Wᵀ·X", "(\(F)×\(C))ᵀ · \(F)×16", {
                SkinnyGemm.gemm(transA: true, transB: false, m: C, n: 16, k: F, alpha: 1, a: w, lda: C, b: x, ldb: 16, beta: 0, c: out, ldc: 16)
            }),
            ("NF4 dequantise", "\(F)×\(C), blocks of 64", {
                NF4Matrix.codebook.withUnsafeBufferPointer {
                    CPUKernels.nf4Dequantize(packed: codes, absmax: absmax, blocks: F * C / 64, blockSize: 64, codebook: $0.baseAddress!, out: out)
                }
            }),
        ]
        let levels = CPUKernels.supported
        return cases.map { (kernel, shape, body) in
            var times = [KernelLevel: [Double]]()
            for level in levels { CPUKernels.withCompiledCopies(level) { body() } }   // warm-up
            for _ in 0..<max(1, repeats) {
                for level in levels {
                    CPUKernels.withCompiledCopies(level) {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        body()
                        times[level, default: []].append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e3)
                    }
                }
            }
            let us = Dictionary(uniqueKeysWithValues: times.map { ($0.key.description, $0.value.upperMedian) })
            let speedup = us["avx512"].flatMap { fast in us["avx2"].map { $0 / fast } }
            return Result(kernel: kernel, shape: shape, microseconds: us, avx512Speedup: speedup)
        }
    }
}
