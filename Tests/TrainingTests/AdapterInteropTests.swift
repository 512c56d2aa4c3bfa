import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import TestSupport
import Training
import XCTest

/// Adapters across the ecosystem on the tiny fixture model: PEFT-made adapters reproduce PEFT's
/// logits; a trained PiSSA adapter converted to a LoRA on the original model, a merged model, and
/// the GGUF-LoRA and mlx exports all carry exactly the update s·B·A.
final class AdapterInteropTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let tinyModel = repository.appendingPathComponent("Tests/Fixtures/tiny_trainable")
    static var peftMade: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("peft_made") }

    private var scratch: URL!
    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-interop") }

    /// Logits (B·T, V) of `tokens` (B rows of T).
    static func logits(_ model: DecoderModel, _ tokens: [Int32], batch: Int, adapters: ModelAdapters?) -> Matrix {
        let hidden = model.hiddenStates(tokens: tokens, lengths: Array(repeating: tokens.count / batch, count: batch), adapters: adapters)
        let rows = tokens.count
        let out = hidden.withUnsafeBufferPointer { model.logits(hidden: $0.baseAddress!, rows: rows) }
        return Matrix(rows: rows, cols: model.config.vocabSize, storage: out)
    }

    static let tokens: [Int32] = (0..<24).map { Int32(($0 * 37 + 11) % 320) }

    func testPEFTMadeAdaptersGivePEFTsLogits() throws {
        let lm = try LanguageModel.load(path: Self.tinyModel.path)
        let reference = try SafeTensorsFile(url: Self.peftMade.appendingPathComponent("logits.safetensors"))
        let tokens = try reference.integers("tokens").map(Int32.init)
        for (dir, key) in [("f32", "logits_f32"), ("bf16", "logits_f32"), ("rslora_f16", "logits_rslora")] {
            let adapters = try AdapterLoading.inference(path: Self.peftMade.appendingPathComponent(dir).path, model: lm.model)
            let expected = Matrix(rows: tokens.count, cols: 320, storage: try reference.floats(try XCTUnwrap(reference.info(key))))
            let got = Self.logits(lm.model, tokens, batch: 2, adapters: adapters.adapters)
            assertRelativeClose(got, expected, tolerance: 1e-5, dir)
            XCTAssertGreaterThan(Self.logits(lm.model, tokens, batch: 2, adapters: nil).relativeDifference(to: expected), 0.05,
                                 "\(dir): the adapter changes the logits")
        }
        let loaded = try PEFTAdapter.read(directory: Self.peftMade.appendingPathComponent("f32"))
        XCTAssertEqual(loaded.modules.first { $0.path.hasSuffix("q_proj") }?.factors.rank, 2, "rank_pattern q_proj: 2")
        XCTAssertEqual(loaded.scale(rank: 4, module: "model.layers.0.mlp.down_proj"), 0.75, "alpha_pattern down_proj: 3")
    }

    func testAnAdapterThatDoesNotFitTheModelNamesTheModule() throws {
        let lm = try LanguageModel.load(path: Self.tinyModel.path)
        let bad = scratch.appendingPathComponent("bad")
        try PEFTAdapter.write(to: bad, modules: [("model.layers.1.self_attn.v_proj", LoRAFactors(A: Matrix(rows: 2, cols: 32), B: Matrix(rows: 32, cols: 2))),
                                                 ("model.layers.7.mlp.up_proj", LoRAFactors(A: Matrix(rows: 2, cols: 32), B: Matrix(rows: 48, cols: 2)))],
                              config: PEFTAdapterConfig(r: 2, loraAlpha: 2, targetModules: ["v_proj"], useRslora: false, taskType: nil, baseModelNameOrPath: nil), role: .trained)
        XCTAssertThrowsError(try AdapterLoading.inference(path: bad.path, model: lm.model)) { error in
            XCTAssertTrue("\(error)".contains("model.layers.1.self_attn.v_proj: adapter 32×32 does not fit the weight 16×32"), "\(error)")
            XCTAssertTrue("\(error)".contains("model.layers.7.mlp.up_proj: not a projection of this model"), "\(error)")
        }
    }

    /// A few high-learning-rate PiSSA steps, then: original + converted LoRA = residual + trained adapter.
    func testConvertedLoRAOnTheOriginalGivesTheTrainedModel() throws {
        var config = TrainConfig(model: Self.tinyModel.path, data: Self.tinyModel.appendingPathComponent("train.jsonl").path,
                                 output: scratch.appendingPathComponent("run").path,
                                 adapter: AdapterSettings(rank: 4, alpha: 8, targets: ["all-linear"], initMethod: .pissa))
        config.learningRate = 0.02
        config.steps = 4
        config.batchSize = 2
        config.lanes = 1
        let trainer = try Trainer(config: config)
        try trainer.fit()
        let run = URL(fileURLWithPath: config.output)
        let report = try PiSSAConversion.convertDirectories(initial: run.appendingPathComponent("pissa_init"), adapter: run.appendingPathComponent("adapter"),
                                                           output: run.appendingPathComponent("lora_converted"))
        XCTAssertEqual(report.rank, 8)
        XCTAssertEqual(report.loraAlpha, 16)
        let reference = Self.logits(trainer.model, Self.tokens, batch: 2, adapters: try XCTUnwrap(trainer.trainable).adapters)
        let original = try LanguageModel.load(path: Self.tinyModel.path, lanes: 1).model
        let converted = try AdapterLoading.inference(path: report.output, model: original)
        let got = Self.logits(original, Self.tokens, batch: 2, adapters: converted.adapters)
        assertRelativeClose(got, reference, tolerance: 1e-4, "original + converted LoRA")
        print("converted: relative difference \(got.relativeDifference(to: reference))")
        let unconverted = try AdapterLoading.inference(path: run.appendingPathComponent("adapter").path, model: original)
        XCTAssertGreaterThan(Self.logits(original, Self.tokens, batch: 2, adapters: unconverted.adapters).relativeDifference(to: reference), 0.05,
                             "the trained adapter alone on the original model is wrong (why conversion exists)")
        XCTAssertGreaterThan(Self.logits(original, Self.tokens, batch: 2, adapters: nil).relativeDifference(to: reference), 0.01,
                             "training moved the model")
    }

    func testMergedModelGivesModelPlusAdapter() throws {
        let lm = try LanguageModel.load(path: Self.tinyModel.path)
        let dir = Self.peftMade.appendingPathComponent("f32")
        let loaded = try PEFTAdapter.read(directory: dir)
        let adapters = try AdapterLoading.inference(path: dir.path, model: lm.model)
        let expected = Self.logits(lm.model, Self.tokens, batch: 2, adapters: adapters.adapters)
        var f32: SafeTensorsFile?
        for dtype in [DType.f32, .bf16] {
            let out = scratch.appendingPathComponent("merged-\(dtype.rawValue)")
            let summary = try AdapterMerge.write(modelPath: Self.tinyModel.path, adapters: loaded.scaledModules, to: out, dtype: dtype)
            XCTAssertEqual(summary.mergedModules, 14)
            XCTAssertEqual(summary.files, ["model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"])
            let file = try SafeTensorsFile(url: out.appendingPathComponent("model.safetensors"))
            XCTAssertTrue(file.tensors.allSatisfy { $0.dtype == dtype })
            if dtype == .f32 {
                f32 = file
                let merged = try LanguageModel.load(path: out.path)
                assertRelativeClose(Self.logits(merged.model, Self.tokens, batch: 2, adapters: nil), expected, tolerance: 1e-5, "merged f32")
            } else {
                // bf16 keeps 8 significant bits: every tensor is the float32 merge rounded (≤ 2⁻⁹ relative).
                for info in file.tensors {
                    let reference = try XCTUnwrap(f32?.info(info.name))
                    assertRelativeClose(Matrix(rows: 1, cols: info.elementCount, storage: try file.floats(info)),
                                        Matrix(rows: 1, cols: info.elementCount, storage: try f32!.floats(reference)), tolerance: 2.5e-3, info.name)
                }
            }
        }
    }

    func testGGUFLoRACarriesTheUpdateInLlamaCppLayout() throws {
        let loaded = try PEFTAdapter.read(directory: Self.peftMade.appendingPathComponent("f32"))   // rank and alpha patterns
        let config = try LanguageModel.load(path: Self.tinyModel.path).model.config
        let url = scratch.appendingPathComponent("adapter.gguf")
        let summary = try GGUFLoRAExport.write(adapters: loaded.scaledModules, config: config, to: url)
        XCTAssertGreaterThan(summary.foldedModules, 0, "the q (rank 2) and down (alpha 3) modules carry their scale in lora_b")
        let file = try GGUFFile(url: url)
        XCTAssertEqual(file.metadata["general.type"]?.string, "adapter")
        XCTAssertEqual(file.metadata["adapter.type"]?.string, "lora")
        XCTAssertEqual(file.architecture, "llama")
        let alpha = try XCTUnwrap(file.metadata["adapter.lora.alpha"]?.double)
        XCTAssertEqual(file.tensors.count, 28)
        for (path, f, s) in loaded.scaledModules {
            let base = try XCTUnwrap(GGUFLoRAExport.baseTensorName(module: path, family: LlamaArchitecture.self))
            let a = try XCTUnwrap(file.info(base + ".lora_a")), b = try XCTUnwrap(file.info(base + ".lora_b"))
            XCTAssertEqual(a.dimensions, [f.A.cols, f.rank], "\(base): lora_a ne = [in, r]")
            XCTAssertEqual(b.dimensions, [f.rank, f.B.rows], "\(base): lora_b ne = [r, out]")
            var lb = try file.floats(b)
            if base.contains("attn_q") { GGUFRowPermutation.unpermuteRows(&lb, rows: f.B.rows, cols: f.rank, heads: config.numAttentionHeads) }
            if base.contains("attn_k") { GGUFRowPermutation.unpermuteRows(&lb, rows: f.B.rows, cols: f.rank, heads: config.numKeyValueHeads) }
            let llamaCpp = LoRAFactors(A: Matrix(rows: f.rank, cols: f.A.cols, storage: try file.floats(a)), B: Matrix(rows: f.B.rows, cols: f.rank, storage: lb))
            assertRelativeClose(llamaCpp.delta(scale: Float(alpha) / Float(f.rank)), f.delta(scale: s), tolerance: 1e-6, base)
        }
    }

    func testMLXExportCarriesTheUpdate() throws {
        let loaded = try PEFTAdapter.read(directory: Self.peftMade.appendingPathComponent("rslora_f16"))   // q, v, down only; rsLoRA
        let out = scratch.appendingPathComponent("mlx")
        let config = try MLXAdapterExport.write(adapters: loaded.scaledModules, config: try SafeTensorsWeightSource.readConfig(directory: Self.tinyModel), to: out)
        XCTAssertEqual(config.numLayers, 2)
        XCTAssertEqual(config.loraParameters.rank, 4)
        XCTAssertEqual(config.loraParameters.keys, ["self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"])
        XCTAssertEqual(config.loraParameters.scale, 3, accuracy: 1e-6, "6 / √4")
        let written = try JSONDecoder().decode(MLXAdapterExport.Config.self, from: Data(contentsOf: out.appendingPathComponent("adapter_config.json")))
        XCTAssertEqual(written, config)
        let file = try SafeTensorsFile(url: out.appendingPathComponent("adapters.safetensors"))
        XCTAssertEqual(file.tensors.count, 12)
        for (path, f, s) in loaded.scaledModules {
            let a = try XCTUnwrap(file.info(path + ".lora_a")), b = try XCTUnwrap(file.info(path + ".lora_b"))
            XCTAssertEqual(a.shape, [f.A.cols, 4], "\(path): lora_a [in, r]")
            XCTAssertEqual(b.shape, [4, f.B.rows], "\(path): lora_b [r, out]")
            // mlx-lm adds scale · x·lora_a·lora_b, i.e. the weight update scale · (lora_a·lora_b)ᵀ.
            let mlx = LoRAFactors(A: Matrix(rows: f.A.cols, cols: 4, storage: try file.floats(a)).transposed,
                                  B: Matrix(rows: 4, cols: f.B.rows, storage: try file.floats(b)).transposed)
            assertRelativeClose(mlx.delta(scale: config.loraParameters.scale), f.delta(scale: s), tolerance: 1e-6, path)
        }
    }
}
