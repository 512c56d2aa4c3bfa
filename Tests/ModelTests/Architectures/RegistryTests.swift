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
        for (type, need) in [("qwen2", "q/k/v projection biases"), ("qwen3", "q/k RMSNorm"), ("phi3", "fused qkv_proj"),
                             ("bert", "an encoder"), ("mixtral", "mixture of experts"), ("mamba", nil)] {
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
        for (extra, feature) in [(#""rope_scaling": {"rope_type": "llama3", "factor": 8.0}"#, "rope_scaling type 'llama3'"),
                                 (#""rope_scaling": {"type": "linear", "factor": 2.0}"#, "rope_scaling type 'linear'"),
                                 (#""rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0}"#, "rope_scaling type 'yarn'"),
                                 (#""attention_bias": true"#, "attention_bias: true"),
                                 (#""mlp_bias": true"#, "mlp_bias: true"),
                                 (#""hidden_act": "gelu""#, "hidden_act 'gelu'")] {
            let message = refusal("{\"model_type\": \"llama\", \(sizes), \(extra)}")
            XCTAssertTrue(message.contains("llama with \(feature) is not supported yet"), message)
        }
        // A null rope_scaling is the default.
        XCTAssertNoThrow(try ArchitectureRegistry.config(huggingFace: Data("{\"model_type\": \"llama\", \(sizes), \"rope_scaling\": null}".utf8),
                                                          path: "config.json"))
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
