import Adapters
import Distributed
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// Times the frozen products (`LinearWeight.forward` / `backward`) of a dense float32 weight and
/// of its NF4 copy, alternating the two so that a busy machine slows both alike.
public enum FrozenLinearBenchmark {
    public struct Result: Codable, Sendable {
        public var shape: [Int]          // (out, in)
        public var rows: Int             // n
        public var denseForwardMs: Double
        public var nf4ForwardMs: Double
        public var denseBackwardMs: Double
        public var nf4BackwardMs: Double
        /// Dequantising the whole weight once (`dequantizeRows`).
        public var dequantizeMs: Double
    }

    /// Medians over `repeats` of each product on a Gaussian (out, in) weight and x (n, in).
    public static func run(out outF: Int, in inF: Int, rows n: Int, repeats: Int, lanes: Int = 2) -> Result {
        BLAS.threadCount = 1
        var rng = SeededGenerator(seed: 1)
        let dense = Matrix.gaussian(rows: outF, cols: inF, std: 0.02, using: &rng)
        let nf4 = NF4Matrix(quantizing: dense)
        let x = Matrix.gaussian(rows: n, cols: max(inF, outF), std: 1, using: &rng)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: n * max(inF, outF))   // (n, out) or (n, in)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: outF * inF)
        defer { y.deallocate(); scratch.deallocate() }
        var t: [[Double]] = Array(repeating: [], count: 5)
        func time(_ i: Int, _ body: () -> Void) {
            let t0 = Date()
            body()
            t[i].append(Date().timeIntervalSince(t0) * 1000)
        }
        x.storage.withUnsafeBufferPointer { xp in
            let x = xp.baseAddress!
            for _ in 0..<(repeats + 1) {
                time(0) { dense.forward(x, rows: n, into: y, beta: 0, lanes: lanes) }
                time(1) { nf4.forward(x, rows: n, into: y, beta: 0, lanes: lanes) }
                time(2) { dense.backward(x, rows: n, into: y, beta: 0, lanes: lanes) }
                time(3) { nf4.backward(x, rows: n, into: y, beta: 0, lanes: lanes) }
                time(4) { nf4.dequantizeRows(0..<outF, into: scratch) }
            }
        }
        func median(_ v: [Double]) -> Double { Array(v.dropFirst()).upperMedian }   // the first is a warm-up
        return Result(shape: [outF, inF], rows: n, denseForwardMs: median(t[0]), nf4ForwardMs: median(t[1]),
                      denseBackwardMs: median(t[2]), nf4BackwardMs: median(t[3]), dequantizeMs: median(t[4]))
    }
}
