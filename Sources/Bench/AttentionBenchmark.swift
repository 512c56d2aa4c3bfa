import Adapters
import Distributed
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// Times causal attention alone (`Attention.forward` and `.backward`) on packed sequences, the
/// part of a training step whose products are only head-dim deep (K = 64 for SmolLM2), and
/// reports its useful rate next to the sgemm rate measured in the same run, so that work on the
/// attention kernels can be judged without the noise of a whole step.
public enum AttentionBenchmark {
    public struct Result: Codable, Sendable {
        public var sequences: Int, length: Int, heads: Int, kvHeads: Int, headDim: Int, lanes: Int
        /// Medians over the repeats.
        public var forwardMs: Double, backwardMs: Double
        /// Useful FLOPs per second: `Attention.causalProductFLOPs` for two products forward and
        /// four backward, as `StepFLOPs` counts them.
        public var forwardGFLOPs: Double, backwardGFLOPs: Double
        /// `GemmRate.measure()` in the same run, on the same lanes.
        public var sgemmGFLOPs: Double
    }

    public static func run(sequences: Int = 4, length: Int = 256, heads: Int = 9, kvHeads: Int = 3, headDim: Int = 64,
                           lanes: Int = 2, repeats: Int = 20) -> Result {
        precondition(sequences >= 1 && length >= 1 && kvHeads >= 1 && heads % kvHeads == 0 && headDim >= 1 && repeats >= 1)
        BLAS.threadCount = 1
        let rows = sequences * length, qWidth = heads * headDim, kvWidth = kvHeads * headDim
        var rng = SeededGenerator(seed: 3)
        let q = Matrix.gaussian(rows: rows, cols: qWidth, using: &rng), dOut = Matrix.gaussian(rows: rows, cols: qWidth, using: &rng)
        let k = Matrix.gaussian(rows: rows, cols: kvWidth, using: &rng), v = Matrix.gaussian(rows: rows, cols: kvWidth, using: &rng)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: rows * qWidth), dq = UnsafeMutablePointer<Float>.allocate(capacity: rows * qWidth)
        let dk = UnsafeMutablePointer<Float>.allocate(capacity: rows * kvWidth), dv = UnsafeMutablePointer<Float>.allocate(capacity: rows * kvWidth)
        defer { out.deallocate(); dq.deallocate(); dk.deallocate(); dv.deallocate() }
        let lengths = Array(repeating: length, count: sequences)
        let shape = Attention.Shape.packed(lengths: lengths, heads: heads, kvHeads: kvHeads, headDim: headDim)
        var forward: [Double] = [], backward: [Double] = []
        q.storage.withUnsafeBufferPointer { q in
            k.storage.withUnsafeBufferPointer { k in
                v.storage.withUnsafeBufferPointer { v in
                    dOut.storage.withUnsafeBufferPointer { dOut in
                        for _ in 0..<(repeats + 1) {   // the first of each is a warm-up
                            var t0 = Date()
                            Attention.forward(q: q.baseAddress!, k: k.baseAddress!, v: v.baseAddress!, out: out, shape: shape, lanes: lanes)
                            forward.append(Date().timeIntervalSince(t0))
                            t0 = Date()
                            Attention.backward(dOut: dOut.baseAddress!, q: q.baseAddress!, k: k.baseAddress!, v: v.baseAddress!,
                                               dq: dq, dk: dk, dv: dv, shape: shape, lanes: lanes)
                            backward.append(Date().timeIntervalSince(t0))
                        }
                    }
                }
            }
        }
        let product = Attention.causalProductFLOPs(lengths: lengths, heads: heads, headDim: headDim)
        let (f, b) = (Array(forward.dropFirst()).upperMedian, Array(backward.dropFirst()).upperMedian)
        return Result(sequences: sequences, length: length, heads: heads, kvHeads: kvHeads, headDim: headDim, lanes: lanes,
                      forwardMs: f * 1000, backwardMs: b * 1000,
                      forwardGFLOPs: 2 * product / f / 1e9, backwardGFLOPs: 4 * product / b / 1e9,
                      sgemmGFLOPs: GemmRate.measure(lanes: lanes))
    }
}
