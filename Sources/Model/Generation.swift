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
    /// `stopTokens`. `onToken` sees each new token as it is chosen and may stop the loop.
    public static func run(model: DecoderModel, prompt: [Int], maxTokens: Int, sampling: SamplingSettings,
                           stopTokens: Set<Int>, adapters: ModelAdapters? = nil,
                           onToken: (Int) -> Control = { _ in .proceed }) -> (tokens: [Int], statistics: Statistics) {
        precondition(!prompt.isEmpty, "generation needs at least one prompt token")
        let capacity = min(model.maxPositions, prompt.count + maxTokens)
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
}
