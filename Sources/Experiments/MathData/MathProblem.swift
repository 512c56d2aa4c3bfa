import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// A generated GSM8K-style word problem: question, worked steps with the arithmetic written out
/// as `a op b = c` (integers only), and the final answer.
///
/// As training data it is a completion record (`MathRecord`):
/// ```
/// prompt:     "Question: <question>\nAnswer:"
/// completion: " <step 1>\n<step 2>\n…\n#### <answer>"
/// ```
/// A fixed two-word scaffold a small model picks up in a few steps; the answer follows GSM8K's
/// `#### N` line, which `MathAnswer.extract` reads back, and the EOS that the completion format
/// appends teaches the model to stop there.
public struct MathProblem: Sendable, Equatable, Codable {
    /// The template's name ("shopping", "ages", …).
    public var template: String
    public var question: String
    public var steps: [String]
    public var answer: Int
    /// The template and the numbers drawn for it: what identifies the problem for de-duplication
    /// and the train/test split (names and items do not change the arithmetic).
    public var key: String

    public var prompt: String { "Question: \(question)\nAnswer:" }
    public var completion: String { " " + steps.joined(separator: "\n") + "\n#### \(answer)" }

    public var record: MathRecord {
        MathRecord(prompt: prompt, completion: completion, answer: String(answer), template: template)
    }
}

/// One line of `train.jsonl` / `test.jsonl`: a completion record (the extra keys are ignored by
/// `DatasetLoader`), with the normalised answer for grading.
public struct MathRecord: Codable, Sendable, Equatable {
    public var prompt: String
    public var completion: String
    public var answer: String
    public var template: String

    public init(prompt: String, completion: String, answer: String, template: String) {
        self.prompt = prompt
        self.completion = completion
        self.answer = answer
        self.template = template
    }
}

/// A person in a problem, with the pronouns the text needs.
struct Person {
    var name: String
    var he: String
    var him: String
    var his: String
    var He: String { he.prefix(1).uppercased() + he.dropFirst() }
}

/// Draws the numbers and names of one problem and records the numbers for its key.
struct ProblemBuilder {
    var rng: SeededGenerator
    private(set) var numbers: [Int] = []

    init(rng: SeededGenerator) { self.rng = rng }

    /// A uniform integer in `range`, recorded in the key.
    mutating func int(_ range: ClosedRange<Int>) -> Int {
        let v = range.lowerBound + BatchSampler.uniform(below: range.count, using: &rng)
        numbers.append(v)
        return v
    }

    /// `step` × a uniform integer in `range`.
    mutating func multiple(of step: Int, _ range: ClosedRange<Int>) -> Int { step * int(range) }

    /// One of `values`, recorded in the key.
    mutating func choice(_ values: [Int]) -> Int {
        let v = values[BatchSampler.uniform(below: values.count, using: &rng)]
        numbers.append(v)
        return v
    }

    /// A word for the text (not part of the key).
    mutating func pick(_ words: [String]) -> String { words[BatchSampler.uniform(below: words.count, using: &rng)] }

    /// `count` different people.
    mutating func people(_ count: Int) -> [Person] {
        var chosen: [Person] = []
        while chosen.count < count {
            let i = BatchSampler.uniform(below: Self.names.count, using: &rng)
            let (name, female) = Self.names[i]
            if chosen.contains(where: { $0.name == name }) { continue }
            chosen.append(female ? Person(name: name, he: "she", him: "her", his: "her")
                                 : Person(name: name, he: "he", him: "him", his: "his"))
        }
        return chosen
    }

    mutating func person() -> Person { people(1)[0] }

    func problem(_ template: String, _ question: String, _ steps: [String], answer: Int) -> MathProblem {
        MathProblem(template: template, question: question, steps: steps, answer: answer,
                    key: template + ":" + numbers.map(String.init).joined(separator: ","))
    }

    static let names: [(String, Bool)] = [
        ("Maria", true), ("James", false), ("Aisha", true), ("Tom", false), ("Sofia", true), ("Liam", false),
        ("Emma", true), ("Noah", false), ("Priya", true), ("Lucas", false), ("Mei", true), ("Omar", false),
        ("Chloe", true), ("Diego", false), ("Hannah", true), ("Kenji", false), ("Zara", true), ("Ben", false),
        ("Nora", true), ("Samuel", false), ("Lena", true), ("Felix", false), ("Grace", true), ("Ravi", false),
    ]
}
