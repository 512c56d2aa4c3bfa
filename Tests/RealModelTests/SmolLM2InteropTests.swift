import Experiments
import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import TestSupport
import Training
import XCTest

/// On SmolLM2-135M: after a short high-learning-rate PiSSA run, the original model + the converted
/// LoRA computes the trained model's logits; the merged model computes model + adapter; the
/// GGUF-LoRA export names the base GGUF's tensors with llama.cpp's shapes.
final class SmolLM2InteropTests: XCTestCase {
    static func logits(_ model: DecoderModel, _ tokens: [Int32], adapters: ModelAdapters?) -> Matrix {
        let hidden = model.hiddenStates(tokens: tokens, adapters: adapters)
        let out = hidden.withUnsafeBufferPointer { model.logits(hidden: $0.baseAddress!, rows: tokens.count) }
        return Matrix(rows: tokens.count, cols: model.config.vocabSize, storage: out)
    }

    func testConvertMergeAndExportAfterShortTraining() throws {
        let gguf = try Assets.require(Assets.smolLM2GGUF)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pissa-interop-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let (train, _) = try MathGenerator.generate(train: 24, test: 1, seed: 0)
        let encoder = JSONEncoder()
        let lines = try train.map { String(decoding: try encoder.encode($0.record), as: UTF8.self) }
        let data = dir.appendingPathComponent("train.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: data, atomically: true, encoding: .utf8)
        var config = TrainConfig(model: gguf.path, data: data.path, output: dir.appendingPathComponent("run").path,
                                 adapter: AdapterSettings(rank: 8, alpha: 8, targets: ["all-linear"], initMethod: .pissaNiter(2)))
        config.learningRate = 1e-3   // high, so that B′A′ moves visibly away from B₀A₀
        config.schedule = .constant
        config.warmupSteps = 0
        config.batchSize = 2
        config.maxSeqLen = 96
        config.steps = 3
        let trainer = try Trainer(config: config)
        try trainer.fit()
        let run = URL(fileURLWithPath: config.output)
        let tokens = trainer.tokenizer.encode("Question: A farmer plants 10 rows of 5 plants. How many plants are there?\nAnswer:", addSpecialTokens: true)
            .map(Int32.init)
        let reference = Self.logits(trainer.model, tokens, adapters: try XCTUnwrap(trainer.trainable).adapters)   // residual + trained adapter

        // Conversion: original + converted LoRA.
        let report = try PiSSAConversion.convertDirectories(initial: run.appendingPathComponent("pissa_init"), adapter: run.appendingPathComponent("adapter"),
                                                           output: run.appendingPathComponent("lora_converted"))
        XCTAssertEqual(report.modules, 210)
        XCTAssertEqual(report.rank, 16)
        let original = try LanguageModel.load(path: gguf.path)
        let converted = try AdapterLoading.inference(path: report.output, model: original.model)
        let viaConversion = Self.logits(original.model, tokens, adapters: converted.adapters)
        let plain = Self.logits(original.model, tokens, adapters: nil)
        print("SmolLM2: original vs trained \(plain.relativeDifference(to: reference)); original + converted LoRA vs trained "
            + "\(viaConversion.relativeDifference(to: reference))")
        XCTAssertGreaterThan(plain.relativeDifference(to: reference), 0.02, "the run moved the model")
        assertRelativeClose(viaConversion, reference, tolerance: 1e-4, "original + converted LoRA")

        // Merge (from the GGUF): the merged directory alone gives original + converted LoRA.
        let mergedDir = dir.appendingPathComponent("merged")
        let loaded = try PEFTAdapter.read(directory: URL(fileURLWithPath: report.output))
        try AdapterMerge.write(modelPath: gguf.path, adapters: loaded.scaledModules, to: mergedDir)
        let merged = try LanguageModel.load(path: mergedDir.path)
        let viaMerge = Self.logits(merged.model, tokens, adapters: nil)
        print("SmolLM2: merged vs original + converted LoRA \(viaMerge.relativeDifference(to: viaConversion))")
        assertRelativeClose(viaMerge, viaConversion, tolerance: 1e-5, "merged")
        XCTAssertEqual(merged.tokenizer.encode("Hello, world!", addSpecialTokens: true), original.tokenizer.encode("Hello, world!", addSpecialTokens: true))

        // GGUF-LoRA: every tensor names a base GGUF tensor, with llama.cpp's ne.
        let url = dir.appendingPathComponent("lora.gguf")
        let summary = try GGUFLoRAExport.write(adapters: loaded.scaledModules, config: original.model.config, to: url)
        XCTAssertEqual(summary.alpha, 16)
        XCTAssertEqual(summary.foldedModules, 0)
        let file = try GGUFFile(url: url), base = try GGUFFile(url: gguf)
        XCTAssertEqual(file.tensors.count, 420)
        for t in file.tensors {
            let baseName = String(t.name.dropLast(".lora_a".count))
            let w = try XCTUnwrap(base.info(baseName), "\(t.name) names no base tensor")
            if t.name.hasSuffix(".lora_a") { XCTAssertEqual(t.dimensions, [w.dimensions[0], 16], t.name) }
            else { XCTAssertEqual(t.dimensions, [16, w.dimensions[1]], t.name) }
        }
    }
}
