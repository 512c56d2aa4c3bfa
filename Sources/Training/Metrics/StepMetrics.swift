import Foundation

/// One line of `metrics.jsonl`: what the trainer measured at an optimiser step.
///
/// A training record carries `loss`, `lr`, `grad_norm` and `tokens_per_s` (and usually
/// `supervised_tokens`); an evaluation may be logged in the same record (`eval_loss`) or alone,
/// e.g. the baseline before the first update at step 0, in which case the training fields are
/// absent. Absent (nil) fields are omitted from the line. Non-finite values (a diverged loss)
/// are written as the strings "NaN", "Infinity", "-Infinity", as JSON has no literal for them.
///
/// JSON keys (snake_case, for pandas / jq):
///
///     step               optimiser updates completed (1 after the first update)
///     loss               mean training loss over the update's supervised tokens
///     lr                 the learning rate that update used
///     grad_norm          global gradient L2 norm before clipping
///     tokens_per_s       tokens (all positions, not only supervised) processed per second
///     elapsed_s          seconds since the run started (wall clock, excluding time before a resume)
///     eval_loss          mean loss on the evaluation set
///     supervised_tokens  tokens contributing to the loss in this update
///     epoch              fractional epoch at the end of this update
///     ranks              processes of an `mpirun` job that trained together (absent alone)
///     allreduce_s        seconds this update spent summing the gradients over the ranks,
///                        waiting for the slowest included (absent alone)
public struct StepMetrics: Codable, Sendable, Equatable {
    public var step: Int
    public var loss: Double?
    public var learningRate: Double?
    public var gradNorm: Double?
    public var tokensPerSecond: Double?
    public var elapsedSeconds: Double
    public var evalLoss: Double?
    public var supervisedTokens: Int?
    public var epoch: Double?
    public var ranks: Int?
    public var allReduceSeconds: Double?

    public init(
        step: Int, loss: Double? = nil, learningRate: Double? = nil, gradNorm: Double? = nil,
        tokensPerSecond: Double? = nil, elapsedSeconds: Double, evalLoss: Double? = nil,
        supervisedTokens: Int? = nil, epoch: Double? = nil
    ) {
        self.step = step
        self.loss = loss
        self.learningRate = learningRate
        self.gradNorm = gradNorm
        self.tokensPerSecond = tokensPerSecond
        self.elapsedSeconds = elapsedSeconds
        self.evalLoss = evalLoss
        self.supervisedTokens = supervisedTokens
        self.epoch = epoch
    }

    enum CodingKeys: String, CodingKey {
        case step, loss, learningRate = "lr", gradNorm = "grad_norm", tokensPerSecond = "tokens_per_s"
        case elapsedSeconds = "elapsed_s", evalLoss = "eval_loss", supervisedTokens = "supervised_tokens", epoch
        case ranks, allReduceSeconds = "allreduce_s"
    }

    /// NaN stays NaN through a round trip, so `==` treats two NaN fields as equal.
    public static func == (a: StepMetrics, b: StepMetrics) -> Bool {
        func same(_ x: Double?, _ y: Double?) -> Bool {
            switch (x, y) {
            case (nil, nil): true
            case let (x?, y?): x == y || (x.isNaN && y.isNaN)
            default: false
            }
        }
        return a.step == b.step && same(a.loss, b.loss) && same(a.learningRate, b.learningRate)
            && same(a.gradNorm, b.gradNorm) && same(a.tokensPerSecond, b.tokensPerSecond)
            && same(a.elapsedSeconds, b.elapsedSeconds) && same(a.evalLoss, b.evalLoss)
            && a.supervisedTokens == b.supervisedTokens && same(a.epoch, b.epoch)
            && a.ranks == b.ranks && same(a.allReduceSeconds, b.allReduceSeconds)
    }

    static let nonFiniteEncoding = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(
        positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    static let nonFiniteDecoding = JSONDecoder.NonConformingFloatDecodingStrategy.convertFromString(
        positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
}
