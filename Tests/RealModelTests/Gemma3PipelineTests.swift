import Experiments
import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import TestSupport
import Tokenizer
import Training
import XCTest

/// Gemma 3 270M through every pipeline the commands run: tokenizer and chat template, `init`
/// from the GGUF (PiSSA and QPiSSA), training (PiSSA adapters on the GGUF, QPiSSA on the
/// NF4 residual, full fine-tuning with gradient checkpointing), conversion to a LoRA on the
/// original, merge, and the GGUF-LoRA and MLX exports.
final class Gemma3PipelineTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("pissa-gemma3-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    private func mathData(_ count: Int) throws -> URL {
        let (train, _) = try MathGenerator.generate(train: count, test: 1, seed: 0)
        let encoder = JSONEncoder()
        let lines = try train.map { String(decoding: try encoder.encode($0.record), as: UTF8.self) }
        let url = scratch.appendingPathComponent("train.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    private func config(model: String, data: URL, run: String, _ adapter: AdapterSettings) -> TrainConfig {
        var c = TrainConfig(model: model, data: data.path, output: scratch.appendingPathComponent(run).path, adapter: adapter)
        c.learningRate = 1e-3
        c.schedule = .constant
        c.warmupSteps = 0
        c.batchSize = 2
        c.maxSeqLen = 64
        c.steps = 2
        return c
    }

    func testChatTemplateAndTokenizerComeWithTheModel() throws {
        let lm = try LanguageModel.load(path: try Assets.require(Assets.gemma3GGUF).path)
        let chat = try lm.tokenizer.chatTemplate().render([ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: true)
        XCTAssertEqual(chat.text, "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n")
        XCTAssertEqual(lm.tokenizer.encode("The capital of France is", addSpecialTokens: true).first, 2, "<bos> first")
    }

    /// PiSSA on the GGUF: after two steps the original model plus the converted rank-2r LoRA
    /// computes the trained model; merging gives the same; the exports name Gemma's tensors.
    func testTrainConvertMergeExport() throws {
        let gguf = try Assets.require(Assets.gemma3GGUF)
        let data = try mathData(8)
        let c = config(model: gguf.path, data: data, run: "run", AdapterSettings(rank: 4, alpha: 4, targets: ["all-linear"],
                                                                                  initMethod: .pissaNiter(2)))
        let trainer = try Trainer(config: c)
        try trainer.fit()
        let run = URL(fileURLWithPath: c.output)
        let tokens = trainer.tokenizer.encode("Question: 3 + 4 = ?\nAnswer:", addSpecialTokens: true).map(Int32.init)
        let trained = SmolLM2InteropTests.logits(trainer.model, tokens, adapters: try XCTUnwrap(trainer.trainable).adapters)

        let report = try PiSSAConversion.convertDirectories(initial: run.appendingPathComponent("pissa_init"),
                                                           adapter: run.appendingPathComponent("adapter"),
                                                           output: scratch.appendingPathComponent("lora"))
        XCTAssertEqual(report.modules, 18 * 7)
        let original = try LanguageModel.load(path: gguf.path)
        let converted = try AdapterLoading.inference(path: report.output, model: original.model)
        let viaConversion = SmolLM2InteropTests.logits(original.model, tokens, adapters: converted.adapters)
        XCTAssertGreaterThan(SmolLM2InteropTests.logits(original.model, tokens, adapters: nil).relativeDifference(to: trained), 1e-3,
                             "the run moved the model")
        assertRelativeClose(viaConversion, trained, tolerance: 1e-4, "Gemma 3: original + converted LoRA")

        let loaded = try PEFTAdapter.read(directory: URL(fileURLWithPath: report.output))
        let mergedDir = scratch.appendingPathComponent("merged")
        try AdapterMerge.write(modelPath: gguf.path, adapters: loaded.scaledModules, to: mergedDir)
        let merged = try LanguageModel.load(path: mergedDir.path)
        XCTAssertEqual(merged.model.config.architecture, "gemma3")
        assertRelativeClose(SmolLM2InteropTests.logits(merged.model, tokens, adapters: nil), viaConversion, tolerance: 1e-5, "merged")
        XCTAssertEqual(try merged.tokenizer.chatTemplate(), .gemma, "the merged directory carries the template")

        let lora = try GGUFLoRAExport.write(adapters: loaded.scaledModules, config: original.model.config,
                                            to: scratch.appendingPathComponent("lora.gguf"))
        XCTAssertEqual(lora.modules, 18 * 7)
        let file = try GGUFFile(url: scratch.appendingPathComponent("lora.gguf")), base = try GGUFFile(url: gguf)
        XCTAssertEqual(file.architecture, "gemma3")
        for t in file.tensors { XCTAssertNotNil(base.info(String(t.name.dropLast(".lora_a".count))), t.name) }
    }

    /// QPiSSA: `init --quant nf4` from the GGUF writes an NF4 residual that trains.
    func testQPiSSAInitAndTraining() throws {
        let gguf = try Assets.require(Assets.gemma3GGUF)
        let out = scratch.appendingPathComponent("qpissa")
        let report = try ModelDecomposer.runOnGGUF(.init(model: gguf, output: out, settings: AdapterSettings(rank: 4, alpha: 4,
            targets: ["q_proj", "v_proj"], initMethod: .pissaNiter(2)), quant: QuantSettings()))
        XCTAssertEqual(report.modules.count, 36)
        XCTAssertLessThan(report.modules.compactMap(\.quantizationError).max() ?? 1, 0.2)
        var c = config(model: out.path, data: try mathData(4), run: "qrun", AdapterSettings(rank: 4, alpha: 4, targets: ["q_proj", "v_proj"]))
        c.adapterPath = out.appendingPathComponent("pissa_init").path
        let trainer = try Trainer(config: c)
        try trainer.fit()
        XCTAssertTrue(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("qrun/adapter/adapter_model.safetensors").path))
    }

    /// Full fine-tuning with gradient checkpointing writes a Hugging Face Gemma 3 directory that
    /// this package reads back.
    func testFullFineTuningWithCheckpointing() throws {
        var c = config(model: try Assets.require(Assets.gemma3GGUF).path, data: try mathData(4), run: "full", AdapterSettings())
        c.method = .full
        c.gradientCheckpointing = true
        c.steps = 1
        c.learningRate = 1e-5
        let trainer = try Trainer(config: c)
        try trainer.fit()
        let model = scratch.appendingPathComponent("full/model")
        let reread = try SafeTensorsWeightSource.readConfig(directory: model)
        XCTAssertEqual(reread.architecture, "gemma3")
        XCTAssertEqual(reread, trainer.model.config)
    }
}
