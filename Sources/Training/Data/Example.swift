/// One training sequence: token ids and, for each token, whether the loss is computed on it.
///
/// Next-token prediction: the model's output at position t − 1 predicts `tokens[t]`, so
/// `supervised[t]` says whether that prediction is a loss term. Nothing predicts `tokens[0]`,
/// so `supervised[0]` is always false (the initialiser enforces it), and `supervisedCount` is
/// exactly the number of loss terms the sequence contributes. `Batch` turns this into shifted
/// targets: the target at position t is `tokens[t + 1]` when `supervised[t + 1]`, else −1.
public struct Example: Sendable, Equatable {
    /// Token ids, `count` ≥ 1.
    public var tokens: [Int32]
    /// `supervised[t]`: whether predicting `tokens[t]` (from `tokens[..<t]`) counts; same count
    /// as `tokens`, first entry false.
    public var supervised: [Bool]

    /// - Precondition: `tokens.count == supervised.count`.
    public init(tokens: [Int32], supervised: [Bool]) {
        precondition(tokens.count == supervised.count, "Example: \(tokens.count) tokens but \(supervised.count) mask entries")
        self.tokens = tokens
        self.supervised = supervised
        if !self.supervised.isEmpty { self.supervised[0] = false }
    }

    /// An example from `Int` ids (the tokenizer's type).
    public init(ids: [Int], supervised: [Bool]) {
        self.init(tokens: ids.map { Int32(truncatingIfNeeded: $0) }, supervised: supervised)
    }

    public var count: Int { tokens.count }

    /// The number of loss terms (supervised tokens after the first).
    public var supervisedCount: Int { supervised.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// The first `length` tokens (right truncation, as Hugging Face's `truncation=True`).
    public func truncated(to length: Int) -> Example {
        Example(tokens: Array(tokens.prefix(length)), supervised: Array(supervised.prefix(length)))
    }
}

/// The JSONL record formats, recognised per line from its keys (see `Record`).
public enum DataFormat: String, Codable, Sendable, CaseIterable, Comparable {
    /// `{"messages": [{"role": …, "content": …}, …]}`: the tokenizer's chat template; loss on
    /// assistant turns (their content and closing end-of-turn token).
    case chat
    /// `{"prompt": …, "completion": …}`: loss on the completion and the EOS after it.
    case completion
    /// `{"instruction": …, "input": …, "output": …}`: the PiSSA reference code's Alpaca
    /// template; loss on the output, newline and EOS.
    case alpaca
    /// `{"text": …}` (and plain `.txt` files): causal LM, loss on every token.
    case text

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}
