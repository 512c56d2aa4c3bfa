import Foundation
@testable import Model
import XCTest

/// The registry maps a config to its family, and refuses, naming the family or feature and
/// listing what is supported, every model it cannot run exactly; nothing runs as Llama by default.
final class RegistryTests: XCTestCase {
    private func refusal(_ json: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let config = try ArchitectureRegistry.config(huggingFace: Data(json.utf8), path: "config.json")
            XCTFail("accepted as \(config.architecture)", file: file, line: line)
            return ""
        } catch {
            let message = "\(error)"
            XCTAssertFalse(message.contains("\n"), "one line: \(message)", file: file, line: line)
            XCTAssertTrue(message.hasPrefix("config.json: "), message, file: file, line: line)
            return message
        }
    }

    private let sizes = #""hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100"#

    func testEveryFamilyIsRegisteredOnce() {
        let names = ArchitectureRegistry.all.map { $0.name }
        XCTAssertEqual(Set(names).count, names.count)
        let types = ArchitectureRegistry.all.flatMap { $0.modelTypes }
        XCTAssertEqual(Set(types).count, types.count, "a model_type maps to one family")
        XCTAssertTrue(ArchitectureRegistry.architecture(named: "gemma3") == Gemma3Architecture.self)
        XCTAssertTrue(ArchitectureRegistry.supportedList.contains("llama"))
        XCTAssertTrue(ArchitectureRegistry.supportedList.contains("gemma3_text"))
    }

    func testUnknownFamiliesAreRefusedByName() {
        for (type, need) in [("qwen2_moe", "shared experts"), ("deepseek_v2", "shared experts"),
                             ("bert", "an encoder"), ("mamba", nil)] {
            let message = refusal("{\"model_type\": \"\(type)\", \(sizes)}")
            XCTAssertTrue(message.contains("model_type '\(type)' is not supported"), message)
            if let need { XCTAssertTrue(message.contains(need), message) }
            XCTAssertTrue(message.contains("supported: " + ArchitectureRegistry.supportedList), message)
        }
    }

    func testAConfigWithoutModelTypeIsNotGuessed() {
        let message = refusal("{\"architectures\": [\"BertModel\"], \(sizes)}")
        XCTAssertTrue(message.contains("has no model_type"), message)
        // Without model_type, a Llama class name still identifies the family (older configs).
        XCTAssertEqual(try ArchitectureRegistry.config(huggingFace: Data("{\"architectures\": [\"LlamaForCausalLM\"], \(sizes)}".utf8),
                                                        path: "config.json").architecture, "llama")
    }

    func testLlamaFeaturesNotImplementedAreRefused() {
        for (extra, feature) in [(#""rope_scaling": {"rope_type": "yarn", "factor": 4.0}"#, "rope_scaling type 'yarn'"),
                                 (#""rope_scaling": {"type": "longrope", "factor": 2.0}"#, "rope_scaling type 'longrope'"),
                                 (#""rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 2.0}"#, "rope_scaling type 'yarn'"),
                                 (#""hidden_act": "gelu""#, "hidden_act 'gelu'"),
                                 (#""attn_logit_softcapping": 50.0"#, "attn_logit_softcapping 50.0 (attention soft-capping is Gemma 2's)"),
                                 (#""final_logit_softcapping": 30.0"#, "final_logit_softcapping 30.0"),
                                 (#""partial_rotary_factor": 0.5"#, "partial_rotary_factor 0.5"),
                                 (#""sliding_window": 4096"#, "sliding_window 4096 (use model_type mistral)")] {
            let message = refusal("{\"model_type\": \"llama\", \(sizes), \(extra)}")
            XCTAssertTrue(message.contains("llama with \(feature)"), message)
            XCTAssertTrue(message.contains("is not supported yet"), message)
            XCTAssertTrue(message.contains("supported: " + ArchitectureRegistry.supportedList), message)
        }
        // A null rope_scaling is the default.
        XCTAssertNoThrow(try ArchitectureRegistry.config(huggingFace: Data("{\"model_type\": \"llama\", \(sizes), \"rope_scaling\": null}".utf8),
                                                          path: "config.json"))
        // A scaling type needs its fields, named.
        XCTAssertEqual(refusal("{\"model_type\": \"llama\", \(sizes), \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}}"),
                       "config.json: rope_scaling type 'llama3' needs 'low_freq_factor'")
    }

    /// Soft-capping and shared experts are refused in every Llama-like family, by name.
    func testPart2FamiliesRefuseWhatTheyDoNotImplement() {
        for type in ["qwen2", "qwen3", "mistral"] {
            let message = refusal("{\"model_type\": \"\(type)\", \(sizes), \"attn_logit_softcapping\": 50.0}")
            XCTAssertTrue(message.contains("\(type) with attn_logit_softcapping 50.0 (attention soft-capping is Gemma 2's)"), message)
            let experts = refusal("{\"model_type\": \"\(type)\", \(sizes), \"num_local_experts\": 8}")
            XCTAssertTrue(experts.contains("\(type) with num_local_experts 8"), experts)
        }
        XCTAssertTrue(refusal("{\"model_type\": \"qwen2\", \(sizes), \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}}")
            .contains("qwen2 with rope_scaling type 'yarn' (supported: default, linear, dynamic, llama3)"))
        XCTAssertTrue(refusal("{\"model_type\": \"qwen3\", \(sizes), \"layer_types\": [\"sliding_attention\", \"full_attention\"]}")
            .contains("layer_types has sliding layers but sliding_window is null"))
    }

    func testGemma3FeaturesNotImplementedAreRefused() {
        for (extra, feature) in [(#""final_logit_softcapping": 30.0"#, "final_logit_softcapping 30.0"),
                                 (#""attn_logit_softcapping": 50.0"#, "attn_logit_softcapping 50.0"),
                                 (#""rope_scaling": {"rope_type": "linear", "factor": 8.0}"#, "rope_scaling type 'linear'"),
                                 (#""use_bidirectional_attention": true"#, "use_bidirectional_attention: true"),
                                 (#""hidden_activation": "gelu""#, "hidden_activation 'gelu'"),
                                 (#""text_config": {}, "vision_config": {}"#, "a vision tower")] {
            let message = refusal("{\"model_type\": \"gemma3_text\", \(sizes), \(extra)}")
            XCTAssertTrue(message.contains("gemma3 with \(feature)"), message)
        }
    }

    func testMalformedConfigsGetOneLine() {
        XCTAssertEqual(refusal("not json"), "config.json: is not valid JSON")
        XCTAssertEqual(refusal(#"{"model_type": "llama", "hidden_size": "big"}"#), "config.json: 'hidden_size' is not an integer")
        XCTAssertEqual(refusal("{\"model_type\": \"llama\", \(sizes), \"num_key_value_heads\": 3}"),
                       "config.json: num_key_value_heads 3 does not divide num_attention_heads 4")
        XCTAssertEqual(refusal(#"{"model_type": "gemma3_text", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100, "layer_types": ["full_attention"]}"#),
                       "config.json: layer_types has 1 entries for 2 layers")
    }
}
