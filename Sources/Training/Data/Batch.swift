/// Examples stacked for one forward pass: B = batch, T = time (the longest example's length).
///
/// Rows are right-padded with `padID`. With causal attention, padding after a row's end does
/// not change any earlier position, and padding is never a target, so no attention mask is
/// needed beyond the causal one.
public struct Batch: Sendable, Equatable {
    /// (B, T) row-major token ids, right-padded.
    public var tokens: [Int32]
    /// (B, T) the id the output at each position should predict, ready for a shifted
    /// cross-entropy: `targets[b, t] = tokens[b, t + 1]` when the example supervises token
    /// t + 1, else `Batch.ignored` (prompt tokens, a row's last token, padding).
    public var targets: [Int32]
    /// B
    public var batch: Int
    /// T
    public var time: Int
    /// (B) each row's length before padding.
    public var lengths: [Int]
    /// Targets that are not `ignored`: the number of loss terms (the loss is their mean).
    public var supervisedCount: Int

    /// The target of positions without a loss term.
    public static let ignored: Int32 = -1

    /// Stacks `examples` (at least one), padding to the longest.
    public init(examples: some Collection<Example>, padID: Int32) {
        precondition(!examples.isEmpty, "Batch of no examples")
        let B = examples.count
        let T = examples.map(\.count).max()!
        var tokens = [Int32](repeating: padID, count: B * T)
        var targets = [Int32](repeating: Self.ignored, count: B * T)
        var lengths: [Int] = []
        var supervisedCount = 0
        for (b, example) in examples.enumerated() {
            let row = b * T
            for t in 0..<example.count {
                tokens[row + t] = example.tokens[t]
                if t + 1 < example.count, example.supervised[t + 1] {
                    targets[row + t] = example.tokens[t + 1]
                    supervisedCount += 1
                }
            }
            lengths.append(example.count)
        }
        self.tokens = tokens
        self.targets = targets
        self.batch = B
        self.time = T
        self.lengths = lengths
        self.supervisedCount = supervisedCount
    }
}
