@testable import Adapters
import Formats
import Foundation
import LinearAlgebra
import TestSupport
import XCTest

/// Malformed or unsupported PEFT adapter directories give a clear error naming the file and the problem.
final class PEFTAdapterReadingTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws { dir = try makeScratchDirectory("pissa-peft") }

    private let config = #"{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}"#

    private func writeConfig(_ text: String) throws { try Data(text.utf8).write(to: dir.appendingPathComponent("adapter_config.json")) }

    private func writeTensors(_ tensors: [(String, [Int])]) throws {
        try SafeTensorsWriter.write(url: dir.appendingPathComponent("adapter_model.safetensors"),
                                    tensors: tensors.map { (TensorSpec(name: $0.0, dtype: .f32, shape: $0.1), [Float](repeating: 0.5, count: $0.1.reduce(1, *))) })
    }

    private func assertError(_ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try PEFTAdapter.read(directory: dir), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(fragment), "\(error)", file: file, line: line)
        }
    }

    func testMissingDirectoryAndConfig() throws {
        XCTAssertThrowsError(try PEFTAdapter.read(directory: dir.appendingPathComponent("nope"))) {
            XCTAssertTrue("\($0)".contains("no such adapter directory"), "\($0)")
        }
        assertError("adapter_config.json: missing or unreadable")
        try writeConfig("{ not json")
        assertError("not a PEFT LoRA config")
    }

    func testABinOnlyAdapterIsNotSupported() throws {
        try writeConfig(config)
        try Data([0x80, 0x02]).write(to: dir.appendingPathComponent("adapter_model.bin"))
        assertError("adapter_model.bin: pickled .bin adapters are not supported")
    }

    func testUnsupportedKinds() throws {
        try writeConfig(#"{"peft_type": "IA3", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}"#)
        assertError("peft_type IA3")
    }

    /// DoRA adapters (use_dora, PEFT's `lora_magnitude_vector` [out]) round-trip; a magnitude
    /// without use_dora, use_dora without magnitudes and a magnitude of the wrong length are refused.
    func testDoRAMagnitudesRoundTripAndAreChecked() throws {
        let p = "base_model.model.model.layers.0.self_attn.q_proj"
        let factors = LoRAFactors(A: Matrix(rows: 2, cols: 8, repeating: 0.25), B: Matrix(rows: 4, cols: 2, repeating: 0.5),
                                  magnitude: [1, 2, 3, 4])
        let cfg = PEFTAdapterConfig(r: 2, loraAlpha: 4, targetModules: ["q_proj"], useRslora: false, taskType: nil, baseModelNameOrPath: nil)
        try PEFTAdapter.write(to: dir, modules: [("model.layers.0.self_attn.q_proj", factors)], config: cfg, role: .initial)
        let loaded = try PEFTAdapter.read(directory: dir)
        XCTAssertTrue(loaded.config.useDora, "write sets use_dora when the factors have magnitudes")
        XCTAssertEqual(loaded.modules[0].factors, factors)

        try writeConfig(config)
        try writeTensors([(p + ".lora_A.weight", [2, 8]), (p + ".lora_B.weight", [4, 2]), (p + ".lora_magnitude_vector", [4])])
        assertError("lora_magnitude_vector: a DoRA magnitude, but adapter_config.json has no use_dora: true")
        try writeConfig(#"{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"], "use_dora": true}"#)
        try writeTensors([(p + ".lora_A.weight", [2, 8]), (p + ".lora_B.weight", [4, 2])])
        assertError("use_dora is set but lora_magnitude_vector is missing")
        try writeTensors([(p + ".lora_A.weight", [2, 8]), (p + ".lora_B.weight", [4, 2]), (p + ".lora_magnitude_vector", [3])])
        assertError("lora_magnitude_vector [3] does not fit lora_B [4, 2]")
    }

    func testEveryTensorProblemIsListed() throws {
        try writeConfig(#"{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"], "rank_pattern": {"v_proj": 3}}"#)
        let p = "base_model.model.model.layers.0."
        try writeTensors([
            (p + "self_attn.q_proj.lora_A.weight", [2, 8]),                                  // no lora_B
            (p + "self_attn.k_proj.lora_B.weight", [4, 2]),                                  // no lora_A
            (p + "self_attn.v_proj.lora_A.weight", [2, 8]), (p + "self_attn.v_proj.lora_B.weight", [4, 2]),   // rank 2, pattern says 3
            (p + "self_attn.o_proj.lora_A.weight", [2, 8]), (p + "self_attn.o_proj.lora_B.weight", [4, 3]),   // do not fit
            ("base_model.model.lm_head.weight", [4, 8]),                                     // modules_to_save
        ])
        XCTAssertThrowsError(try PEFTAdapter.read(directory: dir)) { error in
            let text = "\(error)"
            for fragment in ["self_attn.q_proj: lora_B missing", "self_attn.k_proj: lora_A missing",
                             "self_attn.v_proj: rank 2 in the tensors, but the config gives 3",
                             "self_attn.o_proj: lora_A [2, 8] and lora_B [4, 3] do not fit together",
                             "lm_head.weight: not a LoRA factor"] {
                XCTAssertTrue(text.contains(fragment), "\(fragment) in \(text)")
            }
        }
    }

    func testPatternKeysMatchAsPEFTMatchesThem() {
        let keys = ["q_proj": 1, "layers\\.1\\.mlp\\.up_proj": 2, "down": 3]
        XCTAssertEqual(PEFTAdapter.patternKey(keys.keys, module: "model.layers.0.self_attn.q_proj"), "q_proj")
        XCTAssertEqual(PEFTAdapter.patternKey(keys.keys, module: "model.layers.1.mlp.up_proj"), "layers\\.1\\.mlp\\.up_proj")
        XCTAssertNil(PEFTAdapter.patternKey(keys.keys, module: "model.layers.0.mlp.up_proj"))
        XCTAssertNil(PEFTAdapter.patternKey(keys.keys, module: "model.layers.0.mlp.down_proj"), "a key matches whole name components")
    }
}
