import Foundation

/// A learning-rate schedule with linear warmup, exactly as transformers' schedulers compute it
/// (`get_constant_schedule_with_warmup`, `get_linear_schedule_with_warmup`,
/// `get_cosine_schedule_with_warmup` with `num_cycles = 0.5`), in Double like their Python floats.
///
/// `learningRate(at: k) = baseLearningRate · factor(k)`, where k counts optimiser updates from 0:
/// update k uses factor(k). transformers wraps the factor in `LambdaLR`, whose constructor already
/// evaluates it at `last_epoch = 0`, and the Trainer calls `scheduler.step()` after each
/// `optimizer.step()`; so its first update uses factor(0), which is **0 whenever warmup > 0: the
/// first update has learning rate 0** (the moments and step count still advance). With W warmup
/// steps and T total steps:
///
///     warmup (k < W):  k / max(1, W)
///     constant:        1
///     linear:          max(0, (T − k) / max(1, T − W))
///     cosine:          max(0, ½ (1 + cos(π · c · 2 · (k − W) / max(1, T − W))))   with c = 0.5
///
/// Past T, linear stays 0 and cosine rises again (transformers does not clamp either).
/// (Note that transformers *logs* `get_last_lr()` after `scheduler.step()`, i.e. factor(k + 1)
/// next to the loss of update k.)
public struct LRSchedule: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case constant, linear, cosine
    }

    /// Warmup length, as a number of updates or as a fraction of the total.
    public enum Warmup: Sendable, Equatable, Codable {
        case steps(Int)
        /// Resolved as `TrainingArguments.get_warmup_steps` does, `ceil(T · ratio)` in Double:
        /// note that binary rounding can add a step (100 · 0.07 = 7.000000000000001 → 8).
        case ratio(Double)

        /// The number of warmup updates for `totalSteps` updates.
        public func steps(totalSteps: Int) -> Int {
            switch self {
            case .steps(let steps): steps
            case .ratio(let ratio): Int((Double(totalSteps) * ratio).rounded(.up))
            }
        }

        enum CodingKeys: String, CodingKey { case steps, ratio }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            if let steps = try container.decodeIfPresent(Int.self, forKey: .steps) {
                self = .steps(steps)
            } else {
                self = .ratio(try container.decode(Double.self, forKey: .ratio))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .steps(let steps): try container.encode(steps, forKey: .steps)
            case .ratio(let ratio): try container.encode(ratio, forKey: .ratio)
            }
        }
    }

    public var kind: Kind
    /// The peak learning rate (transformers' `learning_rate`).
    public var baseLearningRate: Double
    /// T, the number of optimiser updates of the run.
    public var totalSteps: Int
    public var warmup: Warmup
    /// Cosine only: the number of half-waves is 2·c; transformers' default c = 0.5 decays once to 0.
    public var numCycles: Double

    public init(kind: Kind, baseLearningRate: Double, totalSteps: Int, warmup: Warmup = .steps(0), numCycles: Double = 0.5) {
        self.kind = kind
        self.baseLearningRate = baseLearningRate
        self.totalSteps = totalSteps
        self.warmup = warmup
        self.numCycles = numCycles
    }

    enum CodingKeys: String, CodingKey {
        case kind, baseLearningRate = "base_lr", totalSteps = "total_steps", warmup, numCycles = "num_cycles"
    }

    /// W, the number of warmup updates.
    public var warmupSteps: Int { warmup.steps(totalSteps: totalSteps) }

    /// Rejects a negative or non-finite learning rate, fewer than one update, a warmup ratio
    /// outside [0, 1] or negative warmup steps.
    public func validate() throws(OptimError) {
        guard baseLearningRate.isFinite, baseLearningRate >= 0 else {
            throw .invalidSetting("learning rate \(baseLearningRate) must be finite and ≥ 0")
        }
        guard totalSteps >= 1 else { throw .invalidSetting("the schedule needs at least 1 step, not \(totalSteps)") }
        switch warmup {
        case .steps(let steps) where steps < 0:
            throw .invalidSetting("warmup steps \(steps) must be ≥ 0")
        case .ratio(let ratio) where !(0...1).contains(ratio):
            throw .invalidSetting("warmup ratio \(ratio) must be in [0, 1]")
        default: break
        }
    }

    /// The multiplier of update `step` (0-based), transformers' lr lambda.
    public func factor(at step: Int) -> Double {
        let w = warmupSteps
        if step < w {
            // get_constant_schedule_with_warmup divides by max(1.0, W); the others by max(1, W): same value.
            return Double(step) / Double(max(1, w))
        }
        switch kind {
        case .constant:
            return 1
        case .linear:
            return max(0, Double(totalSteps - step) / Double(max(1, totalSteps - w)))
        case .cosine:
            let progress = Double(step - w) / Double(max(1, totalSteps - w))
            return max(0, 0.5 * (1.0 + cos(Double.pi * numCycles * 2.0 * progress)))
        }
    }

    /// The learning rate of update `step` (0-based): `baseLearningRate · factor(at: step)`.
    public func learningRate(at step: Int) -> Double {
        baseLearningRate * factor(at: step)
    }
}
