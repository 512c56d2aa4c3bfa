import Foundation

/// AdamW (Loshchilov & Hutter), exactly as `torch.optim.AdamW` computes it with
/// `foreach=False, amsgrad=False, maximize=False` (`_single_tensor_adam` with
/// `decoupled_weight_decay=True`, torch 2.x), in PyTorch's float32 operation order.
///
/// For update t = 1, 2, … (`store.step` before the call is t − 1), with the learning rate γ the
/// caller passes for this update:
///
///     p ← p · (1 − γλ)                                  (only when λ ≠ 0; decoupled, first)
///     m ← lerp(m, g, 1 − β₁)  = m + (1 − β₁)(g − m)      (one fused multiply-add)
///     v ← v · β₂;  v ← v + ((1 − β₂) · g) · g            (the second line one fused multiply-add)
///     bc₁ = 1 − β₁ᵗ,  bc₂ = 1 − β₂ᵗ,  step = γ / bc₁      (Double, as Python floats)
///     denom = √v / √bc₂ + ε
///     p ← p + (−step · m) / denom
///
/// The scalars are computed in Double like PyTorch's Python floats (`1 - lr * wd`, `beta1 ** t`
/// via `pow`, `bc2 ** 0.5` via `pow`) and rounded to float32 once, as PyTorch's CPU kernels do
/// with a Python scalar. PyTorch's `lerp_` is `fma(w, g − m, m)` for w < 0.5 and
/// `fma(w − 1, g − m, g)` otherwise; its `addcmul_` is `fma(value · g, g, v)` (GCC contracts it);
/// its `addcdiv_` is `p + (value · m) / denom` (no fusion through a division).
///
/// Measured against torch 2.15 on x86-64 (see `OptimAdamWTests`): m, v and every scalar agree
/// bit for bit; p differs in the last bit for a few elements because PyTorch's `sqrt` on a
/// float32 CPU tensor goes through MKL VML (`vsSqrt`), which is not correctly rounded (≈ 20 % of
/// values 1 ulp off), while this uses the correctly rounded `vsqrtps`.
///
/// Defaults follow the PiSSA paper's setup: β = (0.9, 0.999), ε = 1e-8 and **weight decay 0**;
/// note that `torch.optim.AdamW` defaults to weight_decay = 0.01 (and transformers'
/// `TrainingArguments` to 0.0). The learning rate comes from the caller (`LRSchedule`).
/// Weight decay applies to every registered parameter (HF's Trainer exempts biases and norm
/// weights, which adapters do not train).
///
/// Parameter groups: when the store gives tensors learning-rate factors
/// (`ParameterStore.setLearningRateScale`, LoRA+'s `loraplus_lr_ratio` on every lora_B and
/// magnitude vector), each tensor is updated with γ times its factor, as a PyTorch param group
/// with that learning rate; the bias corrections are shared.
public struct AdamW: Codable, Sendable, Equatable {
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public var weightDecay: Double

    public init(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
    }

    enum CodingKeys: String, CodingKey {
        case beta1, beta2, eps, weightDecay = "weight_decay"
    }

    /// Checks the ranges PyTorch's constructor checks: 0 ≤ β < 1, ε ≥ 0, weight decay ≥ 0.
    public func validate() throws(OptimError) {
        guard (0..<1).contains(beta1) else { throw .invalidSetting("AdamW beta1 \(beta1) must be in [0, 1)") }
        guard (0..<1).contains(beta2) else { throw .invalidSetting("AdamW beta2 \(beta2) must be in [0, 1)") }
        guard eps >= 0 else { throw .invalidSetting("AdamW eps \(eps) must be ≥ 0") }
        guard weightDecay >= 0 else { throw .invalidSetting("AdamW weight decay \(weightDecay) must be ≥ 0") }
    }

    /// One update of every parameter in `store` with learning rate `learningRate`, using the
    /// gradients as they are (clip them first). Increments `store.step`. A learning rate of 0
    /// (the first update of a warmup in transformers) leaves the parameters unchanged but still
    /// advances the moments and the step, as PyTorch does.
    public func step(_ store: ParameterStore, learningRate lr: Double) {
        store.step += 1
        if store.hasLearningRateScales {
            // Parameter groups (LoRA+): each tensor with the learning rate times its own factor.
            for view in store.views {
                update(store, elements: view.range, learningRate: lr * store.learningRateScale(of: view))
            }
        } else {
            update(store, elements: 0..<store.count, learningRate: lr)
        }
    }

    /// The update of `elements` of the flat buffers with learning rate `lr` (`store.step` already
    /// counts this update).
    private func update(_ store: ParameterStore, elements: Range<Int>, learningRate lr: Double) {
        let t = Double(store.step)
        let biasCorrection1 = 1 - pow(beta1, t)
        let biasCorrection2 = 1 - pow(beta2, t)
        let stepSize = lr / biasCorrection1
        let biasCorrection2Sqrt = pow(biasCorrection2, 0.5)

        let decay = Float(1 - lr * weightDecay)
        let weight = Float(1 - beta1)
        // lerp(m, g, w) = fma(c, g − m, base): (w, m) when |w| < 0.5, else (w − 1, g).
        let lerpSmall = abs(weight) < 0.5
        let lerpCoefficient = lerpSmall ? weight : weight - 1
        let b2 = Float(beta2)
        let oneMinusB2 = Float(1 - beta2)
        let denomScale = Float(biasCorrection2Sqrt)
        let epsilon = Float(eps)
        let negativeStep = Float(-stepSize)
        let decays = weightDecay != 0

        let p = store.parameters, g = store.gradients, m = store.expAvg, v = store.expAvgSq
        let n = elements.upperBound
        var i = elements.lowerBound
        let cV = SIMD8<Float>(repeating: lerpCoefficient), decayV = SIMD8<Float>(repeating: decay)
        let b2V = SIMD8<Float>(repeating: b2), oneMinusB2V = SIMD8<Float>(repeating: oneMinusB2)
        let scaleV = SIMD8<Float>(repeating: denomScale), epsV = SIMD8<Float>(repeating: epsilon)
        let stepV = SIMD8<Float>(repeating: negativeStep)
        while i + 8 <= n {
            var pi = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            let gi = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD8<Float>.self)
            var mi = UnsafeRawPointer(m + i).loadUnaligned(as: SIMD8<Float>.self)
            var vi = UnsafeRawPointer(v + i).loadUnaligned(as: SIMD8<Float>.self)
            if decays { pi = pi * decayV }
            mi = (lerpSmall ? mi : gi).addingProduct(cV, gi - mi)
            vi = vi * b2V
            vi = vi.addingProduct(oneMinusB2V * gi, gi)
            let denom = vi.squareRoot() / scaleV + epsV
            pi = pi + (stepV * mi) / denom
            UnsafeMutableRawPointer(p + i).storeBytes(of: pi, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(m + i).storeBytes(of: mi, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(v + i).storeBytes(of: vi, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            var pi = p[i]
            let gi = g[i]
            if decays { pi = pi * decay }
            let mi = (lerpSmall ? m[i] : gi).addingProduct(lerpCoefficient, gi - m[i])
            var vi = v[i] * b2
            vi = vi.addingProduct(oneMinusB2 * gi, gi)
            let denom = vi.squareRoot() / denomScale + epsilon
            p[i] = pi + (negativeStep * mi) / denom
            m[i] = mi
            v[i] = vi
            i += 1
        }
    }

    /// One update with the schedule's learning rate for this update, `schedule.learningRate(at:
    /// store.step)` (update k, counted from 0, uses factor(k), as transformers' LambdaLR does).
    /// Returns the learning rate used.
    @discardableResult
    public func step(_ store: ParameterStore, schedule: LRSchedule) -> Double {
        let lr = schedule.learningRate(at: store.step)
        step(store, learningRate: lr)
        return lr
    }
}
