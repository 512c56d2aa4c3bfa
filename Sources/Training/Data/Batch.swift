/// Examples packed back to back for one forward pass: N = Σ lengths rows, no padding.
///
/// The model runs each example's rows as its own causal sequence (attention never crosses from
/// one example into another), so packing gives every example the loss it would have alone or
/// right-padded in a B × T batch, without computing the padding.
public struct Batch: Sendable, Equatable {
    /// (N) token ids, the examples one after another.
    public var tokens: [Int32]
    /// (N) the id the output at each row should predict, ready for a shifted cross-entropy:
    /// `targets[n] = tokens[n + 1]` when the example supervises that next token, else
    /// `Batch.ignored` (prompt tokens, each example's last token).
    public var targets: [Int32]
    /// B, the number of examples.
    public var batch: Int
    /// (B) each example's length: its rows in `tokens`.
    public var lengths: [Int]
    /// Targets that are not `ignored`: the number of loss terms (the loss is their mean).
    public var supervisedCount: Int

    /// The target of positions without a loss term.
    public static let ignored: Int32 = -1

    /// Packs `examples` (at least one).
    public init(examples: some Collection<Example>) {
        precondition(!examples.isEmpty, "Batch of no examples")
        var tokens: [Int32] = [], targets: [Int32] = []
        var lengths: [Int] = []
        var supervisedCount = 0
        for example in examples {
            for t in 0..<example.count {
                tokens.append(example.tokens[t])
                if t + 1 < example.count, example.supervised[t + 1] {
                    targets.append(example.tokens[t + 1])
                    supervisedCount += 1
                } else {
                    targets.append(Self.ignored)
                }
            }
            lengths.append(example.count)
        }
        self.tokens = tokens
        self.targets = targets
        self.batch = examples.count
        self.lengths = lengths
        self.supervisedCount = supervisedCount
    }
}
