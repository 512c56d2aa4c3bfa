import Adapters
import Foundation
import Training
import XCTest

/// `TrainConfig.quant`: absent from configs written before it existed (and from float32 runs),
/// so that old `config.json` files load and resume unchanged; NF4 round-trips with its block size.
final class TrainConfigQuantTests: XCTestCase {
    private func config() -> TrainConfig {
        TrainConfig(model: "m.gguf", data: "d.jsonl", output: "run", adapter: AdapterSettings(rank: 4, alpha: 4, targets: ["q_proj"]))
    }

    func testFloat32ConfigHasNoQuantKeyAndOldConfigsDecode() throws {
        let json = try JSONEncoder().encode(config())
        XCTAssertFalse(String(decoding: json, as: UTF8.self).contains("quant"), "float32 runs write config.json as before")
        let decoded = try JSONDecoder().decode(TrainConfig.self, from: json)
        XCTAssertNil(decoded.quant)
        XCTAssertEqual(decoded.quantization, QuantSettings(kind: .none))
        XCTAssertEqual(decoded, config())
    }

    func testNF4RoundTripsAndIsPartOfResumability() throws {
        var c = config()
        c.quantization = QuantSettings(kind: .nf4, blockSize: 32)
        let decoded = try JSONDecoder().decode(TrainConfig.self, from: try JSONEncoder().encode(c))
        XCTAssertEqual(decoded.quantization, QuantSettings(kind: .nf4, blockSize: 32))
        XCTAssertFalse(decoded.isResumable(as: config()), "a run cannot resume on a different base")
        XCTAssertNil(decoded.quantization.problem)
        XCTAssertNotNil(QuantSettings(kind: .nf4, blockSize: 7).problem)
    }
}
