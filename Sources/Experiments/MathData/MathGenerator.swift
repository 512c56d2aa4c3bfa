import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// Seeded GSM8K-style word problems (`MathTemplates`: shopping, rates, ages, fractions,
/// percentages, time, sharing, …) with disjoint train and test sets.
///
/// Candidate i of a seed comes from `SeededGenerator(seed: seed, stream: i)`: a template chosen
/// uniformly, then its numbers (so a request for fewer problems gives a prefix of a larger one). Which set a problem may join depends on its `key` alone (the
/// template and its numbers; a 64-bit FNV-1a hash, 1 key in `testShare` goes to test), so no test
/// problem, nor the same arithmetic under other names, can appear in any train set this
/// generator writes, whatever the seeds. Repeated keys are skipped within a run.
public enum MathGenerator {
    /// One problem key in this many belongs to the test side.
    public static let testShare: UInt64 = 4

    public enum Split: String, Sendable, Codable { case train, test }

    /// The names of the templates.
    public static var templateNames: [String] { MathTemplates.all.map(\.name) }

    /// The side of the split that a problem with `key` belongs to.
    public static func split(ofKey key: String) -> Split {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in key.utf8 {
            h ^= UInt64(byte)
            h &*= 0x0000_0100_0000_01B3
        }
        // SplitMix64's finaliser, so that the low bits depend on every byte.
        h = (h ^ (h >> 30)) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (h >> 27)) &* 0x94D0_49BB_1331_11EB
        h ^= h >> 31
        return h % testShare == 0 ? .test : .train
    }

    /// Candidate `index` of `seed`, from `templates` (indices into `templateNames`; all by default).
    public static func candidate(seed: UInt64, index: Int, templates: [Int]? = nil) -> MathProblem {
        var builder = ProblemBuilder(rng: SeededGenerator(seed: seed, stream: UInt64(index)))
        let choices = templates ?? Array(MathTemplates.all.indices)
        let template = MathTemplates.all[choices[BatchSampler.uniform(below: choices.count, using: &builder.rng)]]
        return template.make(&builder)
    }

    /// Candidates in a row that may bring no new problem before the templates count as exhausted.
    static let stallLimit = 20_000

    /// `train` and `test` distinct problems, each on its side of the split, in generation order,
    /// from the named templates (all by default).
    public static func generate(
        train: Int, test: Int, seed: UInt64, templates names: [String]? = nil
    ) throws(MathDataError) -> (train: [MathProblem], test: [MathProblem]) {
        precondition(train >= 0 && test >= 0, "negative problem counts")
        var templates: [Int]?
        if let names {
            templates = []
            for name in names {
                guard let i = templateNames.firstIndex(of: name) else { throw .unknownTemplate(name) }
                templates?.append(i)
            }
        }
        var trainSet: [MathProblem] = []
        var testSet: [MathProblem] = []
        var seen: Set<String> = []
        var index = 0
        var lastNew = 0
        while trainSet.count < train || testSet.count < test {
            guard index - lastNew < stallLimit else {
                throw .exhausted(requested: (train, test), generated: (trainSet.count, testSet.count), candidates: index)
            }
            let problem = candidate(seed: seed, index: index, templates: templates)
            index += 1
            guard seen.insert(problem.key).inserted else { continue }
            switch split(ofKey: problem.key) {
            case .train where trainSet.count < train:
                trainSet.append(problem)
                lastNew = index
            case .test where testSet.count < test:
                testSet.append(problem)
                lastNew = index
            default: break
            }
        }
        return (trainSet, testSet)
    }
}

public enum MathDataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The templates ran out of distinct problems before the requested counts.
    case exhausted(requested: (train: Int, test: Int), generated: (train: Int, test: Int), candidates: Int)
    case unknownTemplate(String)

    public var description: String {
        switch self {
        case let .exhausted(requested, generated, candidates):
            return "the templates ran out of new problems after \(candidates) candidates: \(generated.train) train and "
                + "\(generated.test) test problems are distinct, \(requested.train) and \(requested.test) were asked for; ask for fewer"
        case let .unknownTemplate(name):
            return "no math template is named '\(name)' (templates: \(MathGenerator.templateNames.joined(separator: ", ")))"
        }
    }

    public static func == (a: Self, b: Self) -> Bool {
        switch (a, b) {
        case let (.exhausted(r1, g1, n1), .exhausted(r2, g2, n2)):
            return r1 == r2 && g1 == g2 && n1 == n2
        case let (.unknownTemplate(x), .unknownTemplate(y)):
            return x == y
        default:
            return false
        }
    }
}
