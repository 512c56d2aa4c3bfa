import Foundation
import Formats
import LinearAlgebra

extension ModelDecomposer {
    /// The residual model of a quantised start: each target weight becomes Q of
    /// `QuantizedInitializer` (QPiSSA / QLoRA / LoftQ), stored in bitsandbytes' Linear4bit layout
    /// (`NF4Tensors`), or with `options.dequantized` as deq(Q) in the weight's original dtype (what
    /// the reference code's `nf4_to_bf16` writes). Every other tensor is copied byte for byte.
    /// As for PiSSA, each lane holds one weight (and a few same-sized temporaries) at a time.
    static func writeQuantizedResidualModel(
        model: ShardedSafeTensors, plan: DecompositionPlan, options: Options, quant: QuantSettings,
        results: (factors: Slots<LoRAFactors>, reports: Slots<ModuleReport>),
        started: Date, progress: @escaping @Sendable (Progress) -> Void
    ) throws {
        let settings = options.settings, dequantized = options.dequantized
        let specs = { (f: Int, info: TensorInfo) -> [TensorSpec] in
            guard plan.isTarget(fileIndex: f, name: info.name), !dequantized else {
                return [TensorSpec(name: info.name, dtype: info.dtype, shape: info.shape)]
            }
            return NF4Tensors.specs(name: info.name, rows: info.shape[0], cols: info.shape[1], blockSize: quant.blockSize,
                                    doubleQuant: quant.doubleQuant, originalDType: info.dtype)
        }
        try writeResidualShards(
            model: model, plan: plan, options: options, results: results, started: started, progress: progress, specs: specs
        ) { job, rng, writer in
            let w = try loadTarget(job, from: model)
            let t0 = Date()
            var (factors, q) = try QuantizedInitializer.initialize(w, settings: settings, quant: quant, using: &rng)
            if settings.useDoRA {   // PEFT dequantises the 4-bit base for DoRA's norm
                factors.magnitude = LoRAFactors.doraMagnitude(frozen: q.dequantized(), A: factors.A, B: factors.B, scale: settings.scale)
            }
            var report = ModuleReport(job: job, seconds: Date().timeIntervalSince(t0))
            if dequantized {
                try writer.write(job.info.name, floats: q.dequantized().storage)
            } else {
                try NF4Tensors.write(q, name: job.info.name, originalDType: job.info.dtype, into: writer)
            }
            let error = try QuantizationError.measure(w, residual: q, factors: factors, scale: settings.scale, nuclear: false)
            report.quantizationError = error.frobenius / Double(w.frobeniusNorm)
            return (factors, report)
        }
        if model.indexFileName != nil && !dequantized {   // the source's index lacks the NF4 tensors
            let shards = model.files.enumerated().map { f, file in (fileName: file.url.lastPathComponent, tensors: file.tensors.flatMap { specs(f, $0) }) }
            try ShardedSafeTensors.writeIndex(shards: shards, in: options.output)
        }
    }
}

/// transformers' `BitsAndBytesConfig.to_dict()` for an NF4 model, as `config.json`'s
/// `quantization_config`, so that transformers recognises the residual model as bitsandbytes 4-bit.
struct QuantizationConfig: Codable {
    var quantMethod = "bitsandbytes"
    var loadIn4bit = true
    var loadIn8bit = false
    var bnb4bitQuantType = "nf4"
    var bnb4bitUseDoubleQuant: Bool
    var bnb4bitComputeDtype = "float32"
    var bnb4bitQuantStorage = "uint8"
    var llmInt8SkipModules: [String]
    var llmInt8Threshold = 6.0
    var llmInt8HasFp16Weight = false
    var llmInt8EnableFp32CpuOffload = false

    enum CodingKeys: String, CodingKey {
        case quantMethod = "quant_method", loadIn4bit = "load_in_4bit", loadIn8bit = "load_in_8bit"
        case bnb4bitQuantType = "bnb_4bit_quant_type", bnb4bitUseDoubleQuant = "bnb_4bit_use_double_quant"
        case bnb4bitComputeDtype = "bnb_4bit_compute_dtype", bnb4bitQuantStorage = "bnb_4bit_quant_storage"
        case llmInt8SkipModules = "llm_int8_skip_modules", llmInt8Threshold = "llm_int8_threshold"
        case llmInt8HasFp16Weight = "llm_int8_has_fp16_weight", llmInt8EnableFp32CpuOffload = "llm_int8_enable_fp32_cpu_offload"
    }

    /// The object as JSON, written by hand: transformers insists that `llm_int8_threshold` is a
    /// float literal (6.0), which JSONEncoder would write as 6.
    var json: String {
        let skip = llmInt8SkipModules.map(JSONText.quote).joined(separator: ", ")
        return """
        {"quant_method": "\(quantMethod)", "load_in_4bit": \(loadIn4bit), "load_in_8bit": \(loadIn8bit), \
        "bnb_4bit_quant_type": "\(bnb4bitQuantType)", "bnb_4bit_use_double_quant": \(bnb4bitUseDoubleQuant), \
        "bnb_4bit_compute_dtype": "\(bnb4bitComputeDtype)", "bnb_4bit_quant_storage": "\(bnb4bitQuantStorage)", \
        "llm_int8_skip_modules": [\(skip)], "llm_int8_threshold": \(String(format: "%.1f", llmInt8Threshold)), \
        "llm_int8_has_fp16_weight": \(llmInt8HasFp16Weight), "llm_int8_enable_fp32_cpu_offload": \(llmInt8EnableFp32CpuOffload)}
        """
    }

    /// Inserts `"quantization_config": {...}` before the closing brace of `directory/config.json`
    /// (the rest of the file is kept as it is). Modules with 2-D weights that were not quantised,
    /// and `lm_head`, are listed in `llm_int8_skip_modules`.
    static func addToModelConfig(in directory: URL, quant: QuantSettings, plan: DecompositionPlan) throws {
        let url = directory.appendingPathComponent("config.json")
        guard var text = try? String(contentsOf: url, encoding: .utf8) else { return }   // no config: nothing to mark
        guard !text.contains("\"quantization_config\"") else {
            throw AdapterError.unsupportedWeights(["\(url.path) already has a quantization_config: the input model is quantised"])
        }
        guard let close = text.lastIndex(of: "}") else {
            throw AdapterError.unsupportedWeights(["\(url.path) is not a JSON object"])
        }
        // lm_head always: a tied head is absent from the weights but transformers would otherwise
        // make it a Linear4bit with no quantised state.
        let skip = Array(Set(plan.otherModules.map { $0.split(separator: ".").last.map(String.init) ?? $0 } + ["lm_head"])).sorted()
        let config = QuantizationConfig(bnb4bitUseDoubleQuant: quant.doubleQuant, llmInt8SkipModules: skip)
        let body = config.json
        let before = text[..<close].trimmingCharacters(in: .whitespacesAndNewlines)
        let separator = before.hasSuffix("{") ? "" : ","
        text = before + separator + "\n  \"quantization_config\": " + body + "\n}\n"
        try AtomicFile.write(Data(text.utf8), to: url)
    }
}
