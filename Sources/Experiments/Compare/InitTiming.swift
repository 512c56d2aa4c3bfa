import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// The paper's Table 6 analogue: how long each SVD takes to initialise every target module, and
/// how good a start it gives.
///
/// Quality is the *residual excess* `‖W − s·B·A‖_F / ‖W − P_r‖_F − 1`, where `P_r` is the best
/// rank-r approximation (exact SVD): how much more of W the frozen residual keeps than the
/// optimum. It is 0 for the exact SVD.
public struct InitTiming: Codable, Sendable, Equatable {
    public var mode: String
    public var modules: Int
    /// Σ over modules of the decomposition time (lane-seconds).
    public var seconds: Double
    public var medianResidualExcess: Double
    public var maxResidualExcess: Double

    /// Times `modes` on the target projections of the model at `path` (weights loaded once,
    /// outside the timed region; matrices decomposed on `lanes` lanes, single-threaded BLAS each).
    public static func measure(modelPath: String, settings: AdapterSettings, modes: [InitMethod], lanes: Int,
                               progress: (String) -> Void = { _ in }) throws -> [InitTiming] {
        guard !modes.isEmpty else { return [] }
        let (source, _) = try openWeightSource(modelPath)
        var loaded: [Matrix] = []
        for (layer, p) in try TargetModules.projections(settings.targets, config: source.config) {
            let t = try source.tensor(source.config.modulePath(p, layer: layer) + ".weight")
            loaded.append(Matrix(rows: t.shape[0], cols: t.shape[1], storage: t.floats))
        }
        let matrices = loaded
        let saved = BLAS.threadCount
        BLAS.threadCount = 1
        defer { BLAS.threadCount = saved }
        progress("exact singular values of \(matrices.count) matrices")
        let r = settings.rank
        let tails = Slots<Double>(count: matrices.count)
        try Parallel.forEach(matrices.count, lanes: lanes) { i in
            let w = matrices[i]
            let top = try SVD.top(r, of: w).S.prefix(r).reduce(0.0) { $0 + Double($1) * Double($1) }
            tails[i] = max(0, squaredNorm(w) - top).squareRoot()
        }
        let tail = tails.values
        var out: [InitTiming] = []
        for mode in modes {
            progress("timing \(mode.peftName)")
            var modeSettings = settings
            modeSettings.initMethod = mode
            let s = modeSettings
            let seconds = Slots<Double>(count: matrices.count), excess = Slots<Double>(count: matrices.count)
            try Parallel.forEach(matrices.count, lanes: lanes) { i in
                var w = matrices[i]
                var rng = SeededGenerator(seed: s.seed, stream: UInt64(i))
                let t0 = Date()
                _ = try AdapterInitializer.initialize(&w, settings: s, using: &rng)
                seconds[i] = Date().timeIntervalSince(t0)
                excess[i] = tail[i] > 0 ? squaredNorm(w).squareRoot() / tail[i] - 1 : 0
            }
            let sorted = excess.values.sorted()
            out.append(InitTiming(mode: mode.peftName, modules: matrices.count, seconds: seconds.values.reduce(0, +),
                                  medianResidualExcess: sorted[sorted.count / 2], maxResidualExcess: sorted.last ?? 0))
        }
        return out
    }

    private static func squaredNorm(_ m: Matrix) -> Double {
        m.storage.reduce(0.0) { $0 + Double($1) * Double($1) }
    }
}
