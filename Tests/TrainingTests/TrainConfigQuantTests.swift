import Adapters
import Foundation
@testable import Training
import XCTest

/// `TrainConfig.quant`: absent from configs written before it existed (and from float32 runs),
/// so that old `config.json` files load and resume unchanged; NF4 settings round-trip.
final class TrainConfigQuantTests: XCTestCase {
    private func config() -> TrainConfig {
        TrainConfig(model: "m.gguf", data: "d.jsonl", output: "run", adapter: AdapterSettings(rank: 4, alpha: 4, targets: ["q_proj"]))
    }

    func testFloat32ConfigHasNoQuantKeyAndOldConfigsDecode() throws {
        let json = try JSONEncoder().encode(config())
        XCTAssertFalse(String(decoding: json, as: UTF8.self).contains("quant"), "float32 runs write config.json as before")
        let decoded = try JSONDecoder().decode(TrainConfig.self, from: json)
        XCTAssertNil(decoded.quant)
        XCTAssertEqual(decoded, config())
        XCTAssertEqual(try Trainer.frozenQuantization(decoded.quant), .none)
    }

    func testNF4RoundTripsAndIsPartOfResumability() throws {
        var c = config()
        c.quant = QuantSettings(iterations: 5, doubleQuant: true, blockSize: 32)
        let decoded = try JSONDecoder().decode(TrainConfig.self, from: try JSONEncoder().encode(c))
        XCTAssertEqual(decoded.quant, QuantSettings(iterations: 5, doubleQuant: true, blockSize: 32))
        XCTAssertFalse(decoded.isResumable(as: config()), "a run cannot resume on a different base")
        XCTAssertEqual(try Trainer.frozenQuantization(decoded.quant), .nf4(blockSize: 32, doubleQuant: true))
        XCTAssertThrowsError(try Trainer.frozenQuantization(QuantSettings(blockSize: 7)))
        XCTAssertThrowsError(try Trainer.frozenQuantization(QuantSettings(iterations: 0)))
    }
}
