import Foundation
import LinearAlgebra
import Model

/// CorDA's statistics (PEFT's `calib_cov_distribution`): for every target layer, the mean over
/// calibration sequences of XᵀX, X (T, in) the layer's inputs over one sequence divided by
/// |max(X)| (PEFT's hook runs one sequence per forward pass and scales it so). Projections that
/// read the same input (q, k, v; gate, up) share one matrix.
final class CorDACovariance: ProjectionInputObserver {
    private struct Accumulator {
        var sum: Matrix
        var count = 0
    }

    /// Key "layer/first projection of its group" for every group with a target.
    private var accumulators: [String: Accumulator] = [:]
    private let targets: CalibrationTargets
    /// The sequence lengths of the batch being run.
    var lengths: [Int] = []
    /// Threads for XᵀX: the observer runs between the forward pass's parallel regions, with
    /// OpenBLAS on one thread.
    private let lanes: Int

    init(targets: CalibrationTargets, lanes: Int) {
        self.targets = targets
        self.lanes = max(1, lanes)
    }

    /// Through the last layer with a target.
    var layersNeeded: Int? { (targets.modules.map(\.layer).max() ?? -1) + 1 }

    static func key(layer: Int, group: [Projection]) -> String { "\(layer)/\(group[0])" }

    func observe(layer: Int, projections: [Projection], input: UnsafePointer<Float>, rows: Int, width: Int) {
        guard targets.modules.contains(where: { $0.layer == layer && projections.contains($0.projection) }) else { return }
        let key = Self.key(layer: layer, group: projections)
        var acc = accumulators[key] ?? Accumulator(sum: Matrix(rows: width, cols: width))
        var start = 0
        for n in lengths {
            defer { start += n }
            guard n > 0 else { continue }
            let x = input + start * width
            var largest = -Float.infinity
            for i in 0..<(n * width) { largest = max(largest, x[i]) }   // torch.max: the largest value, then its magnitude
            let m = abs(largest)
            guard m > 0, m.isFinite else { continue }
            var scaled = [Float](UnsafeBufferPointer(start: x, count: n * width))
            for i in scaled.indices { scaled[i] /= m }
            scaled.withUnsafeBufferPointer { sp in
                acc.sum.storage.withUnsafeMutableBufferPointer { cp in
                    // Rows `r` of XᵀX on each lane: X[:, r]ᵀ · X.
                    let p = ProductPointers(x: sp.baseAddress!, c: cp.baseAddress!)
                    Parallel.chunks(width, lanes: lanes, minimumChunk: 64) { r in
                        BLAS.gemm(transA: true, transB: false, m: r.count, n: width, k: n, alpha: 1, a: p.x + r.lowerBound,
                                  lda: width, b: p.x, ldb: width, beta: 1, c: p.c + r.lowerBound * width, ldc: width)
                    }
                }
            }
            acc.count += 1
        }
        accumulators[key] = acc
    }

    /// Each target module's covariance (the sum divided by the number of sequences).
    func covariances() throws -> [String: Matrix] {
        var out: [String: Matrix] = [:]
        for m in targets.modules {
            let group = DecoderModel.projectionGroup(of: m.projection)
            guard let acc = accumulators[Self.key(layer: m.layer, group: group)], acc.count > 0 else {
                throw AdapterError.calibration("\(m.path) saw no calibration input")
            }
            var c = acc.sum
            for i in c.storage.indices { c.storage[i] /= Float(acc.count) }
            out[m.path] = c
        }
        return out
    }
}

/// X and C of one XᵀX product, handed to the lanes.
private struct ProductPointers: @unchecked Sendable {
    let x: UnsafePointer<Float>
    let c: UnsafeMutablePointer<Float>
}

extension DecoderModel {
    /// The projections that read the same input as `p`, in the order forward runs them.
    public static func projectionGroup(of p: Projection) -> [Projection] {
        switch p {
        case .q, .k, .v: [.q, .k, .v]
        case .o: [.o]
        case .gate, .up: [.gate, .up]
        case .down: [.down]
        case .qkv, .gateUp, .router, .expert: [p]   // fused ones read their input alone; experts are not observed
        }
    }
}
