@testable import Experiments
import Foundation
import XCTest
@testable import Training

/// The GSM8K-style generator: determinism, exact arithmetic, disjoint splits, loadable output.
final class MathGeneratorTests: XCTestCase {
    static let generated = try! MathGenerator.generate(train: 1500, test: 500, seed: 1)

    func testDeterministicForASeed() throws {
        let again = try MathGenerator.generate(train: 1500, test: 500, seed: 1)
        XCTAssertEqual(again.train, Self.generated.train)
        XCTAssertEqual(again.test, Self.generated.test)
        let other = try MathGenerator.generate(train: 50, test: 10, seed: 2)
        XCTAssertNotEqual(other.train, Array(Self.generated.train.prefix(50)))
        // A smaller request is a prefix of a larger one with the same seed.
        let small = try MathGenerator.generate(train: 100, test: 20, seed: 1)
        XCTAssertEqual(small.train, Array(Self.generated.train.prefix(100)))
        XCTAssertEqual(small.test, Array(Self.generated.test.prefix(20)))
    }

    func testEveryTemplateIsUsed() {
        let all = Self.generated.train + Self.generated.test
        XCTAssertGreaterThanOrEqual(MathGenerator.templateNames.count, 10)
        XCTAssertEqual(Set(all.map(\.template)), Set(MathGenerator.templateNames))
        XCTAssertEqual(Set(Self.generated.test.map(\.template)), Set(MathGenerator.templateNames))
        XCTAssertTrue(all.allSatisfy { $0.steps.count >= 2 }, "multi-step")
    }

    /// Every `a op b … = c` in the steps is exact integer arithmetic, its operands come from the
    /// question, earlier results or the constants 1, 2, 60, 100, and the last result is the answer.
    func testWorkedStepsAreCorrect() throws {
        for p in Self.generated.train + Self.generated.test {
            var known = Set(Self.integers(in: p.question) + [1, 2, 60, 100])
            var last: Int?
            for step in p.steps {
                let equations = Self.equations(in: step)
                XCTAssertFalse(equations.isEmpty, "no arithmetic in step '\(step)' of \(p.template)")
                for (expression, result) in equations {
                    let value = try XCTUnwrap(Self.evaluate(expression), "'\(expression)' in \(p.template) is not exact")
                    XCTAssertEqual(value, result, "\(p.template): \(step)")
                    XCTAssertGreaterThanOrEqual(result, 0)
                    for operand in Self.integers(in: expression) {
                        XCTAssertTrue(known.contains(operand), "\(p.template): \(operand) in '\(step)' comes from nowhere\n\(p.question)")
                    }
                    known.insert(result)
                    last = result
                }
            }
            XCTAssertEqual(last, p.answer, "\(p.template): \(p.steps)")
            XCTAssertTrue(p.completion.hasSuffix("\n#### \(p.answer)"))
            XCTAssertEqual(MathAnswer.extract(from: p.completion), String(p.answer))
            XCTAssertEqual(p.prompt, "Question: \(p.question)\nAnswer:")
            XCTAssertTrue(p.completion.hasPrefix(" "))
        }
    }

    func testTrainAndTestAreDisjoint() throws {
        let (train, test) = Self.generated
        XCTAssertEqual(train.count, 1500)
        XCTAssertEqual(test.count, 500)
        XCTAssertEqual(Set(train.map(\.key)).count, train.count, "no repeats")
        XCTAssertTrue(Set(train.map(\.key)).isDisjoint(with: test.map(\.key)))
        XCTAssertTrue(Set(train.map(\.question)).isDisjoint(with: test.map(\.question)))
        XCTAssertTrue(train.allSatisfy { MathGenerator.split(ofKey: $0.key) == .train })
        XCTAssertTrue(test.allSatisfy { MathGenerator.split(ofKey: $0.key) == .test })
        // Whatever the seeds: another seed's train set meets none of these test problems.
        let other = try MathGenerator.generate(train: 1500, test: 0, seed: 2)
        XCTAssertTrue(Set(other.train.map(\.key)).isDisjoint(with: test.map(\.key)))
    }

    func testTemplatesCanBeChosenAndRunOut() throws {
        let only = try MathGenerator.generate(train: 30, test: 10, seed: 5, templates: ["classroom", "discount"])
        XCTAssertEqual(Set((only.train + only.test).map(\.template)), ["classroom", "discount"])
        // classroom has 10 class sizes × 17 percentages = 170 problems.
        do throws(MathDataError) {
            _ = try MathGenerator.generate(train: 1000, test: 0, seed: 0, templates: ["classroom"])
            XCTFail("expected exhaustion")
        } catch {
            guard case let .exhausted(_, generated, _) = error else { return XCTFail("\(error)") }
            XCTAssertLessThanOrEqual(generated.train, 170)
            XCTAssertGreaterThan(generated.train, 100)
            XCTAssertTrue(error.description.contains("ask for fewer"))
        }
        do throws(MathDataError) {
            _ = try MathGenerator.generate(train: 1, test: 1, seed: 0, templates: ["nope"])
            XCTFail("unknown template accepted")
        } catch {
            XCTAssertEqual(error, .unknownTemplate("nope"))
        }
    }

    func testRecordsLoadAsCompletionData() throws {
        let lines = Self.generated.test.prefix(20).map { p -> String in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return String(decoding: try! encoder.encode(p.record), as: UTF8.self)
        }
        XCTAssertTrue(lines[0].hasPrefix(#"{"answer":""#), lines[0])
        let url = try DataFixtures.file(lines.joined(separator: "\n") + "\n", name: "test.jsonl")
        let data = try DatasetLoader(tokenizer: DataFixtures.smolLM2, maxSeqLen: 512).load(path: url.path)
        XCTAssertEqual(data.report.formats, [.completion: 20])
        XCTAssertEqual(data.report.truncated, 0)
        for (example, p) in zip(data.examples, Self.generated.test) {
            let target = zip(example.tokens, example.supervised).filter(\.1).map { Int($0.0) }
            XCTAssertEqual(DataFixtures.smolLM2.decode(target), p.completion + "<|im_end|>")
        }
        XCTAssertLessThan(data.report.longest, 256, "short enough for a small context")
    }

    // MARK: - Arithmetic checking

    static func integers(in text: String) -> [Int] {
        let regex = try! NSRegularExpression(pattern: "[0-9]+")
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map {
            Int(text[Range($0.range, in: text)!])!
        }
    }

    /// `(expression, result)` for each `n op n … = n` in the text.
    static func equations(in text: String) -> [(String, Int)] {
        let regex = try! NSRegularExpression(pattern: #"([0-9]+(?: [-+*/] [0-9]+)+) = ([0-9]+)"#)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map {
            (String(text[Range($0.range(at: 1), in: text)!]), Int(text[Range($0.range(at: 2), in: text)!])!)
        }
    }

    /// The value of `a op b op …` with * and / before + and -, or nil for an inexact division.
    static func evaluate(_ expression: String) -> Int? {
        let parts = expression.split(separator: " ").map(String.init)
        var terms: [Int] = [Int(parts[0])!]
        var signs: [Int] = [1]
        var i = 1
        while i < parts.count {
            let op = parts[i], n = Int(parts[i + 1])!
            switch op {
            case "*": terms[terms.count - 1] *= n
            case "/":
                guard terms[terms.count - 1] % n == 0 else { return nil }
                terms[terms.count - 1] /= n
            case "+": terms.append(n); signs.append(1)
            default: terms.append(n); signs.append(-1)
            }
            i += 2
        }
        return zip(terms, signs).map { $0 * $1 }.reduce(0, +)
    }

    func testEvaluatorItself() {
        XCTAssertEqual(Self.evaluate("2 + 3 * 4"), 14)
        XCTAssertEqual(Self.evaluate("60 * 25 / 100"), 15)
        XCTAssertNil(Self.evaluate("7 / 2"))
        XCTAssertEqual(Self.equations(in: "He pays 3 * 4 = 12 dollars and 12 - 2 = 10.").map(\.1), [12, 10])
    }
}
