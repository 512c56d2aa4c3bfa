import Distributed
import Foundation
import Model
import Tokenizer

/// Exact-match accuracy on held-out math problems: greedy answers, generated `batchSize` at a
/// time (`BatchedGeneration`), graded on the final number (`MathAnswer`).
extension Evaluation {
    public struct MathResult: Codable, Sendable {
        public var correct: Int
        public var total: Int
        /// Right or wrong, problem by problem in the records' order: what a paired test of two
        /// models on the same problems needs.
        public var outcomes: AnswerOutcomes
        /// A few answers the model got right and a few it got wrong (the first of each, in the
        /// records' order), for a look at what it does.
        public var samples: [Sample]
        public var generatedTokens: Int
        public var seconds: Double

        public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }
        /// The 95 % Wilson interval of the accuracy; nil with no problem.
        public var interval: Statistics.Interval? { total == 0 ? nil : Statistics.wilson(successes: correct, trials: total) }

        public struct Sample: Codable, Sendable, Equatable {
            /// The problem's index in the records.
            public var index: Int
            public var prompt: String
            public var generated: String
            public var reference: String
            public var correct: Bool
        }
    }

    /// How far an exact-match evaluation has got.
    public struct MathProgress: Sendable {
        public var done: Int
        public var total: Int
        public var correct: Int
        public var elapsed: Double
        public var accuracySoFar: Double { done == 0 ? 0 : Double(correct) / Double(done) }
        /// Seconds left at the rate so far.
        public var eta: Double { done == 0 ? .nan : elapsed / Double(done) * Double(total - done) }
    }

    /// `mathAccuracy` over the ranks of `group`: rank k answers the k-th contiguous part of the
    /// records, and every rank returns the whole result (outcomes in the records' order, counts
    /// and tokens summed, the slowest rank's time; the samples are rank 0's, from the first part).
    /// `progress` hears of this rank's part. Alone, the same as without a group.
    public static func mathAccuracy(model: DecoderModel, adapters: ModelAdapters?, tokenizer: BPETokenizer,
                                    records: [(prompt: String, completion: String)], maxTokens: Int = 128,
                                    batchSize: Int = BatchedGeneration.defaultBatchSize, samplesPerKind: Int = 3,
                                    group: any ProcessGroup, progress: (MathProgress) -> Void = { _ in }) throws -> MathResult {
        guard group.isDistributed else {
            return try mathAccuracy(model: model, adapters: adapters, tokenizer: tokenizer, records: records, maxTokens: maxTokens,
                                    batchSize: batchSize, samplesPerKind: samplesPerKind, progress: progress)
        }
        let part = group.part(of: records.count)
        let mine = try group.together("answering its records") {
            try mathAccuracy(model: model, adapters: adapters, tokenizer: tokenizer, records: Array(records[part]), maxTokens: maxTokens,
                             batchSize: batchSize, samplesPerKind: samplesPerKind, progress: progress)
        }
        // Parts differ in length by at most one: padded with −1 to the longest for the gather.
        let longest = (records.count + group.size - 1) / group.size
        var padded = mine.outcomes.correct.map { $0 ? 1.0 : 0.0 }
        padded += [Double](repeating: -1, count: longest - padded.count)
        let outcomes = group.allGather(padded).flatMap { $0.filter { $0 >= 0 }.map { $0 == 1 } }
        let tokens = Int(group.sumInRankOrder([Double(mine.generatedTokens)])[0])
        let seconds = group.allGather([mine.seconds]).map { $0[0] }.max() ?? mine.seconds
        let samples: [MathResult.Sample] = try group.broadcast(group.isRoot ? mine.samples : nil)
        return MathResult(correct: outcomes.filter { $0 }.count, total: records.count, outcomes: AnswerOutcomes(outcomes),
                          samples: samples, generatedTokens: tokens, seconds: seconds)
    }

    /// Greedy-generates an answer to each `{"prompt", "completion"}` record (at most `maxTokens`
    /// tokens, up to the tokenizer's EOS) and compares its final number (`#### N`, else the last
    /// number) with the completion's. Answers are decoded `batchSize` at a time; `progress` hears
    /// of each as it is graded. Keeps `samplesPerKind` right and as many wrong answers.
    public static func mathAccuracy(model: DecoderModel, adapters: ModelAdapters?, tokenizer: BPETokenizer,
                                    records: [(prompt: String, completion: String)], maxTokens: Int = 128,
                                    batchSize: Int = BatchedGeneration.defaultBatchSize, samplesPerKind: Int = 3,
                                    progress: (MathProgress) -> Void = { _ in }) throws(EvaluationError) -> MathResult {
        let t0 = Date()
        var stops = Set<Int>()
        if let eos = tokenizer.special.eos { stops.insert(eos) }
        let prompts = records.map { tokenizer.encode($0.prompt, addSpecialTokens: true) }
        // A prompt that leaves no position to answer in is refused before anything runs.
        for (i, prompt) in prompts.enumerated() {
            do { try Generation.check(promptTokens: prompt.count, positions: model.maxPositions) } catch {
                throw .record(index: i + 1, problem: error.description)
            }
        }
        var texts = [String](repeating: "", count: records.count), outcomes = [Bool](repeating: false, count: records.count)
        var done = 0, correct = 0
        let (_, stats) = BatchedGeneration.greedy(model: model, prompts: prompts, maxTokens: maxTokens, stopTokens: stops,
                                                  adapters: adapters, batchSize: batchSize) { index, tokens in
            texts[index] = tokenizer.decode(tokens, skipSpecialTokens: true)
            outcomes[index] = MathAnswer.isCorrect(generated: texts[index], reference: records[index].completion)
            done += 1
            if outcomes[index] { correct += 1 }
            progress(MathProgress(done: done, total: records.count, correct: correct, elapsed: Date().timeIntervalSince(t0)))
        }
        var samples: [MathResult.Sample] = []
        for kind in [true, false] {
            for i in outcomes.indices.filter({ outcomes[$0] == kind }).prefix(samplesPerKind) {
                samples.append(.init(index: i, prompt: records[i].prompt, generated: texts[i], reference: records[i].completion, correct: kind))
            }
        }
        return MathResult(correct: correct, total: records.count, outcomes: AnswerOutcomes(outcomes), samples: samples,
                          generatedTokens: stats.generatedTokens, seconds: Date().timeIntervalSince(t0))
    }
}

/// Right/wrong per problem. In JSON, one string of `1` (right) and `0` (wrong), problem by problem.
public struct AnswerOutcomes: Codable, Sendable, Equatable {
    public var correct: [Bool]

    public init(_ correct: [Bool]) { self.correct = correct }

    public var count: Int { correct.count }
    public var rightCount: Int { correct.filter { $0 }.count }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard text.allSatisfy({ $0 == "0" || $0 == "1" }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "expected a string of 0s and 1s"))
        }
        correct = text.map { $0 == "1" }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(String(correct.map { $0 ? "1" : "0" }))
    }
}
