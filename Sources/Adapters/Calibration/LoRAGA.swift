import Foundation
import LinearAlgebra

/// LoRA-GA (Wang et al., arXiv 2407.05000; PEFT's `lora_ga_init` with its `LoraGAConfig`), one
/// layer. With G the gradient of the loss with respect to W (out, in), averaged over the
/// calibration batches (`GradientStatistics`), and U, S, Vh its top 2r singular triplets:
///
///     ArB2r (default): A = Vh[:r],   B = U[:, r:2r]·diag(S[r:2r])
///     A2rBr:           A = Vh[r:2r], B = U[:, :r]·diag(S[:r])
///     ArBr:            A = Vh[1:2r:2], B = U[:, 0:2r:2]·diag(S[0:2r:2])
///     random:          r of the 2r indices for both
///     stable (default): B ×= out^¼ / √γ;  weight_svd: B ×= σ₁(W) / S_B[0];  gd_scale: A, B /= scale
///     W_res = W − scale·B·A
///
/// so that the first step of the adapted layer moves W along the best rank-2r approximation of
/// full fine-tuning's first step (the paper's gradient alignment). The SVD here is exact; PEFT's is
/// `torch.svd_lowrank(G, q = min(4r, min(out, in)), niter = 4)`, which equals it up to the sign of
/// each triplet when q reaches min(out, in) and approximates it otherwise. Since A and B come from
/// different triplets, each triplet's sign changes B·A: any choice is an equally valid start.
public enum LoRAGA {
    public static func initialize(_ w: inout Matrix, gradient g: Matrix, settings: AdapterSettings,
                                  using rng: inout SeededGenerator) throws -> LoRAFactors {
        precondition(g.shape == w.shape, "LoRA-GA: gradient \(g.shape) for a weight \(w.shape)")
        let r = settings.rank, s = settings.loraGA
        guard 2 * r <= min(w.rows, w.cols) else {
            throw AdapterError.calibration("LoRA-GA takes 2r = \(2 * r) singular triplets of the gradient, more than min(\(w.rows), \(w.cols)) of its \(w.rows)×\(w.cols) weight")
        }
        let svd = try SVD.top(2 * r, of: g)
        let (aIndices, bIndices): ([Int], [Int])
        switch s.direction {
        case .ArB2r: (aIndices, bIndices) = (Array(0..<r), Array(r..<(2 * r)))
        case .A2rBr: (aIndices, bIndices) = (Array(r..<(2 * r)), Array(0..<r))
        case .ArBr: (aIndices, bIndices) = (stride(from: 1, to: 2 * r, by: 2).map { $0 }, stride(from: 0, to: 2 * r, by: 2).map { $0 })
        case .random:
            var all = Array(0..<(2 * r))
            all.shuffle(using: &rng)
            let picked = Array(all.prefix(r))
            (aIndices, bIndices) = (picked, picked)
        }
        var a = Matrix(rows: r, cols: w.cols), b = Matrix(rows: w.rows, cols: r)
        for (i, c) in aIndices.enumerated() {
            for j in 0..<a.cols { a[i, j] = svd.Vh[c, j] }
        }
        for (i, c) in bIndices.enumerated() {
            for j in 0..<b.rows { b[j, i] = svd.U[j, c] * svd.S[c] }
        }
        let scale = settings.scale
        switch s.scale {
        case .stable:
            b.storage = b.storage.map { $0 * Float(pow(Double(w.rows), 0.25) / s.stableGamma.squareRoot()) }
        case .weightSVD:
            let top = try SVD.top(1, of: w).S[0], sb = svd.S[bIndices[0]]
            if sb > 0 { b.storage = b.storage.map { $0 * (top / sb) } }
        case .gdScale:
            a.storage = a.storage.map { $0 / scale }
            b.storage = b.storage.map { $0 / scale }
        case .unit:
            break
        }
        AdapterInitializer.subtract(b, a, scale: scale, from: &w)
        return LoRAFactors(A: a, B: b)
    }
}
