import Adapters
import Distributed
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// Times the decomposition work alone (what PEFT's `get_peft_model` does to weights already in
/// memory), for `pissa bench init` and BENCHMARKS.md: loading is timed separately.
public enum DecompositionBenchmark {
    public struct Weights: Sendable {
        public var modules: [String]
        public var matrices: [Matrix]
        public var loadSeconds: Double
    }

    public struct ModeResult: Codable, Sendable {
        public var mode: String
        public var oversample: Int
        public var lanes: Int
        public var seconds: [Double]
        public var medianSeconds: Double
        /// Per module ‖scale·B·A − P_r‖/‖P_r‖ against the exact best rank-r product: median and max.
        public var medianRankProductError: Double?
        public var maxRankProductError: Double?
        /// Per module ‖W − scale·B·A‖/‖W − P_r‖ − 1: how much more of W the residual keeps than the
        /// optimum (what matters for PiSSA: the adapter should hold the principal part).
        public var medianResidualExcess: Double?
        public var maxResidualExcess: Double?
    }

    /// Reads every target weight of `model` into float32 matrices.
    public static func load(model: URL, settings: AdapterSettings) throws -> Weights {
        let t0 = Date()
        let sharded = try ShardedSafeTensors(directory: model)
        let plan = try DecompositionPlan(model: sharded, settings: settings)
        let matrices = try plan.jobs.map { job in
            Matrix(rows: job.info.shape[0], cols: job.info.shape[1],
                   storage: try sharded.files[job.fileIndex].floats(job.info))
        }
        return Weights(modules: plan.jobs.map(\.module), matrices: matrices, loadSeconds: Date().timeIntervalSince(t0))
    }

    /// The exact best rank-r product of every matrix (the error reference), on `lanes` lanes.
    public static func exactProducts(_ weights: Weights, rank: Int, lanes: Int) throws -> [Matrix] {
        let slots = Slots<Matrix>(count: weights.matrices.count)
        try withBLASLanes(lanes) {
            try Parallel.forEach(weights.matrices.count, lanes: lanes) { i in
                slots[i] = try SVD(exact: weights.matrices[i]).reconstruct(rank: rank)
            }
        }
        return slots.values
    }

    /// Decomposes all matrices `repeats` times and reports the wall-clock seconds of each pass.
    public static func run(_ weights: Weights, settings: AdapterSettings, lanes: Int, repeats: Int,
                           reference: [Matrix]?) throws -> ModeResult {
        var times: [Double] = []
        let factors = Slots<LoRAFactors>(count: weights.matrices.count)
        try withBLASLanes(lanes) {
            for _ in 0..<max(1, repeats) {
                // Fresh copies outside the timed region: PEFT, too, overwrites the weight in place.
                var work = weights.matrices.map { Matrix(rows: $0.rows, cols: $0.cols, storage: Array($0.storage)) }
                try work.withUnsafeMutableBufferPointer { buffer in
                    let matrices = MatrixSlots(buffer)
                    let t0 = Date()
                    try Parallel.forEach(weights.matrices.count, lanes: lanes) { i in
                        var rng = SeededGenerator(seed: settings.seed, stream: UInt64(i))
                        factors[i] = try AdapterInitializer.initialize(&matrices.buffer[i], settings: settings, using: &rng)
                    }
                    times.append(Date().timeIntervalSince(t0))
                }
            }
        }
        var errors: [Double] = [], excess: [Double] = []
        if let reference {
            for (i, (f, best)) in zip(factors.values, reference).enumerated() {
                let delta = f.delta(scale: settings.scale)
                errors.append(delta.relativeDifference(to: best))
                let w = weights.matrices[i]
                excess.append(Double((w - delta).frobeniusNorm) / Double((w - best).frobeniusNorm) - 1)
            }
            errors.sort()
            excess.sort()
        }
        return ModeResult(
            mode: settings.initMethod.peftName, oversample: settings.oversample, lanes: lanes,
            seconds: times, medianSeconds: times.upperMedian,
            medianRankProductError: errors.isEmpty ? nil : errors[errors.count / 2],
            maxRankProductError: errors.last,
            medianResidualExcess: excess.isEmpty ? nil : excess[excess.count / 2], maxResidualExcess: excess.last)
    }

    private static func withBLASLanes(_ lanes: Int, _ body: () throws -> Void) rethrows {
        let saved = BLAS.threadCount
        BLAS.threadCount = lanes > 1 ? 1 : 2
        defer { BLAS.threadCount = saved }
        try body()
    }
}

/// Matrices that parallel lanes update in place, each index by exactly one lane.
struct MatrixSlots: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<Matrix>
    init(_ buffer: UnsafeMutableBufferPointer<Matrix>) { self.buffer = buffer }
}

