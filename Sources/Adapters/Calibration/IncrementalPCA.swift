import Foundation
import LinearAlgebra

/// Incremental PCA as PEFT's `peft.utils.incremental_pca.IncrementalPCA` (sklearn's algorithm,
/// Ross et al. 2008), the engine of EVA: each batch X (n, d) updates the column mean and
/// variance, and the SVD of
///
///     [ diag(S)·components ;  X − mean(X) ;  √(n_seen·n / n_total)·(mean_seen − mean(X)) ]
///
/// (X − mean alone on the first batch) gives the new components (its top right singular
/// vectors, signs fixed as `svd_flip` fixes them: each one's largest entry positive), singular
/// values and explained variance ratios S² / Σ(var·n_total). Everything is in Double, as PEFT's
/// is from the second batch on. The SVD is exact when 2·components ≥ min of the stacked matrix's
/// dimensions (PEFT's `svd_lowrank` with q = 2·components is exact then too), else randomized
/// with q = 2·components and 4 subspace iterations, as PEFT's.
struct IncrementalPCA {
    let components: Int
    let features: Int
    /// (components, features), row-major, or nil before the first batch.
    private(set) var vectors: [Double]?
    private(set) var singularValues: [Double] = []
    private(set) var explainedVarianceRatio: [Double] = []
    private var mean: [Double] = []
    private var variance: [Double] = []
    private var seen = 0

    init(components: Int, features: Int) {
        precondition(components >= 1 && components <= features, "IncrementalPCA: \(components) components of \(features) features")
        self.components = components
        self.features = features
    }

    /// Row `i` of the components.
    func component(_ i: Int) -> ArraySlice<Double> { vectors![(i * features)..<((i + 1) * features)] }

    /// Updates with the rows of `x` (n, features), n ≥ components.
    mutating func partialFit(_ x: [Float], rows n: Int, using rng: inout SeededGenerator) throws {
        let d = features
        precondition(x.count == n * d && n >= components)
        // Incremental mean and variance (sklearn's `_incremental_mean_and_var`).
        var newSum = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { newSum[j] += Double(x[i * d + j]) } }
        let total = seen + n
        let lastSum = seen > 0 ? mean.map { $0 * Double(seen) } : [Double](repeating: 0, count: d)
        let updatedMean = (0..<d).map { (lastSum[$0] + newSum[$0]) / Double(total) }
        var newUnnormalized = [Double](repeating: 0, count: d), correction = [Double](repeating: 0, count: d)
        for i in 0..<n {
            for j in 0..<d {
                let t = Double(x[i * d + j]) - newSum[j] / Double(n)
                correction[j] += t
                newUnnormalized[j] += t * t
            }
        }
        for j in 0..<d { newUnnormalized[j] -= correction[j] * correction[j] / Double(n) }
        let updatedVariance: [Double]
        if seen == 0 {
            updatedVariance = newUnnormalized.map { $0 / Double(total) }
        } else {
            let ratio = Double(seen) / Double(n)
            updatedVariance = (0..<d).map { j in
                let lastUnnormalized = variance[j] * Double(seen), gap = lastSum[j] / ratio - newSum[j]
                return (lastUnnormalized + newUnnormalized[j] + ratio / Double(total) * gap * gap) / Double(total)
            }
        }

        // The matrix whose SVD updates the components.
        var stacked: [Double]
        var rows: Int
        if let vectors {
            let batchMean = (0..<d).map { Float(newSum[$0] / Double(n)) }   // torch.mean of a float32 batch
            let factor = (Double(seen) / Double(total) * Double(n)).squareRoot()
            stacked = []
            stacked.reserveCapacity((components + n + 1) * d)
            for i in 0..<components { for j in 0..<d { stacked.append(singularValues[i] * vectors[i * d + j]) } }
            for i in 0..<n { for j in 0..<d { stacked.append(Double(x[i * d + j] - batchMean[j])) } }
            for j in 0..<d { stacked.append(factor * (mean[j] - Double(batchMean[j]))) }
            rows = components + n + 1
        } else {
            stacked = (0..<(n * d)).map { Double(x[$0]) - updatedMean[$0 % d] }
            rows = n
        }
        let (s, vt) = try Self.topSVD(stacked, rows: rows, cols: d, count: components, using: &rng)
        let totalVariance = updatedVariance.reduce(0) { $0 + $1 * Double(total) }
        singularValues = s
        vectors = vt
        explainedVarianceRatio = s.map { $0 * $0 / totalVariance }
        mean = updatedMean
        variance = updatedVariance
        seen = total
    }

    /// The top `count` singular values and right singular vectors (count, cols) of `a`, each vector's
    /// largest-magnitude entry made positive (`svd_flip(u_based_decision=False)`).
    static func topSVD(_ a: [Double], rows: Int, cols: Int, count: Int, using rng: inout SeededGenerator) throws -> ([Double], [Double]) {
        var s: [Double], vt: [Double]
        if 2 * count >= min(rows, cols) {
            let svd = try DoubleSVD(a, rows: rows, cols: cols)
            s = Array(svd.S.prefix(count))
            vt = Array(svd.Vh.prefix(count * cols))
        } else {
            let m = Matrix(rows: rows, cols: cols, storage: a.map { Float($0) })
            let svd = try RandomizedSVD.compute(m, rank: count, niter: 4, oversample: count, using: &rng)
            s = svd.S.prefix(count).map(Double.init)
            vt = svd.Vh.topRows(count).storage.map(Double.init)
        }
        for i in 0..<count {
            let row = vt[(i * cols)..<((i + 1) * cols)]
            let largest = row.indices.max { abs(row[$0]) < abs(row[$1]) || (abs(row[$0]) == abs(row[$1]) && $0 > $1) }!
            if row[largest] < 0 { for j in 0..<cols { vt[i * cols + j] = -vt[i * cols + j] } }
        }
        if s.count < count { s += [Double](repeating: 0, count: count - s.count) }
        return (s, vt)
    }
}
