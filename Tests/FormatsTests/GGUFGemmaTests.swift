import Formats
import Foundation
import TestSupport
import XCTest

/// The Gemma 3 270M Q4_K_M GGUF (`scripts/assets/fetch.sh`, Gemma licence): K-quants, Q5_0, Q6_K,
/// Q8_0 in a real file. `gemma3_reference.json` holds gguf-py's dequantisation of the smallest
/// tensor of each type.
final class GGUFGemmaTests: XCTestCase {

    private struct Reference: Decodable {
        struct Tensor: Decodable {
            var type: String
            var dimensions: [Int]
            var first: [Float]
            var sum: Double
            var sum_of_squares: Double
        }

        var tensor_count: Int
        var tensors: [String: Tensor]
    }

    /// The smallest tensor of each type equals gguf-py's values.
    func testMatchesGGUFPy() throws {
        let file = try GGUFFile(url: try Assets.require(Assets.gemma3GGUF))
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: try ggufFixture("gemma3_reference.json")))
        XCTAssertEqual(file.architecture, "gemma3")
        XCTAssertEqual(file.tensors.count, reference.tensor_count)
        XCTAssertEqual(Set(reference.tensors.values.map(\.type)), ["F32", "Q4_K", "Q5_0", "Q6_K", "Q8_0"])
        XCTAssertEqual(file.metadata["tokenizer.ggml.tokens"]?.array?.count, 262_144)
        for (name, want) in reference.tensors.sorted(by: { $0.key < $1.key }) {
            let info = try XCTUnwrap(file.info(name), name)
            XCTAssertEqual(info.type.name, want.type, name)
            XCTAssertEqual(info.dimensions, want.dimensions, name)
            let values = try file.floats(info)
            assertValuesEqual(Array(values.prefix(want.first.count)), want.first, relative: 0, "\(name) (\(want.type))")
            let sum = values.reduce(0.0) { $0 + Double($1) }
            let squares = values.reduce(0.0) { $0 + Double($1) * Double($1) }
            XCTAssertEqual(sum, want.sum, accuracy: 1e-9 * max(1, abs(want.sum)) + 1e-9 * squares, name)
            XCTAssertEqual(squares, want.sum_of_squares, accuracy: 1e-9 * want.sum_of_squares, name)
        }
    }

    /// Release builds only (268 M values): every tensor dequantises to finite values.
    func testEveryTensorIsFinite() throws {
        #if DEBUG
        throw XCTSkip("268 M values: run with `swift test -c release`")
        #else
        let file = try GGUFFile(url: try Assets.require(Assets.gemma3GGUF))
        for info in file.tensors {
            XCTAssertTrue(info.type.isDequantizable, "\(info.name) is \(info.type)")
            let values = try file.floats(info)
            XCTAssertEqual(values.count, info.elementCount)
            XCTAssertTrue(values.allSatisfy(\.isFinite), info.name)
            file.release(info)
        }
        #endif
    }
}
