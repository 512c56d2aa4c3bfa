import Foundation

/// Token-by-token generation with a KV cache.
public enum Generation {
    public struct Statistics: Sendable, Codable {
        public var promptTokens: Int
        public var generatedTokens: Int
        public var prefillSeconds: Double
        public var decodeSeconds: Double
        public var prefillTokensPerSecond: Double { Double(promptTokens) / max(prefillSeconds, 1e-9) }
        public var decodeTokensPerSecond: Double { Double(generatedTokens) / max(decodeSeconds, 1e-9) }
    }

    public enum Control { case proceed, stop }

    /// Prefills `prompt`, then samples up to `maxTokens` tokens, stopping after any of
    /// `stopTokens` or at the model's last position. `onToken` sees each new token as it is
    /// chosen and may stop the loop. A prompt that leaves no position to generate into is
    /// refused, not truncated: transformers does not truncate a prompt unless asked either.
    public static func run(model: DecoderModel, prompt: [Int], maxTokens: Int, sampling: SamplingSettings,
                           stopTokens: Set<Int>, adapters: ModelAdapters? = nil,
                           onToken: (Int) -> Control = { _ in .proceed }) throws(GenerationError) -> (tokens: [Int], statistics: Statistics) {
        try check(promptTokens: prompt.count, positions: model.maxPositions)
        let capacity = min(model.maxPositions, prompt.count + max(1, maxTokens))
        let cache = KVCache(config: model.config, capacity: capacity)
        var sampler = Sampler(sampling)
        let C = model.config.hiddenSize
        var generated: [Int] = []

        func nextToken(_ hidden: [Float]) -> Int {
            let rows = hidden.count / C
            let logits = hidden.withUnsafeBufferPointer { model.logits(hidden: $0.baseAddress! + (rows - 1) * C, rows: 1) }
            return logits.withUnsafeBufferPointer { sampler.next(logits: $0) }
        }

        let t0 = Date()
        var token = nextToken(model.hiddenStates(tokens: prompt.map(Int32.init), cache: cache, adapters: adapters))
        let t1 = Date()
        while generated.count < maxTokens {
            generated.append(token)
            if stopTokens.contains(token) || onToken(token) == .stop || cache.length >= capacity { break }
            if generated.count == maxTokens { break }
            token = nextToken(model.hiddenStates(tokens: [Int32(token)], cache: cache, adapters: adapters))
        }
        let stats = Statistics(promptTokens: prompt.count, generatedTokens: generated.count,
                               prefillSeconds: t1.timeIntervalSince(t0), decodeSeconds: Date().timeIntervalSince(t1))
        return (generated, stats)
    }

    /// Throws unless a prompt of `promptTokens` leaves at least one of `positions` to generate into.
    public static func check(promptTokens: Int, positions: Int) throws(GenerationError) {
        guard promptTokens > 0 else { throw .emptyPrompt }
        guard promptTokens < positions else { throw .promptTooLong(tokens: promptTokens, positions: positions) }
    }
}

/// Why generation cannot start.
public enum GenerationError: Error, CustomStringConvertible, Equatable, Sendable {
    case emptyPrompt
    /// The prompt fills the model's positions (`max_position_embeddings`, at most 8192 here).
    case promptTooLong(tokens: Int, positions: Int)

    public var description: String {
        switch self {
        case .emptyPrompt: "the prompt encodes to no tokens"
        case let .promptTooLong(tokens, positions):
            "the prompt is \(tokens) tokens, but the model handles \(positions) positions, one of which the first new token needs; "
                + "shorten the prompt to at most \(positions - 1) tokens (it is not truncated, as transformers does not truncate one unless asked)"
        }
    }
}
