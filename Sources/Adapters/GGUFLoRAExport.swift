import Foundation
import Formats
import LinearAlgebra
import Model

/// Writes a LoRA adapter as llama.cpp reads it (`llama_adapter_lora_init`; the layout of
/// `convert_lora_to_gguf.py`):
///
///     general.architecture               the base model's (llama.cpp checks that they are equal)
///     general.type = "adapter", adapter.type = "lora", adapter.lora.alpha (float32)
///     blk.N.<gguf name>.weight.lora_a    F32, ne = [in, r]   (PEFT's lora_A [r, in], as is)
///     blk.N.<gguf name>.weight.lora_b    F32, ne = [r, out]  (PEFT's lora_B [out, r]; rows permuted
///                                        where llama.cpp permutes the base's, Llama's q and k)
///
/// llama.cpp scales each module by `alpha / rank` with the rank taken from `lora_b`'s ne0. One
/// alpha serves the whole file, so `alpha = s₀·r₀` of the first module and every module whose own
/// scale differs (rank/alpha patterns, rsLoRA) has `s_m·r_m / alpha` folded into its lora_b: the
/// product `alpha/r_m · B·A` is then `s_m · B·A` exactly as PEFT computes it.
public enum GGUFLoRAExport {
    public struct Summary: Codable, Sendable {
        public var path: String
        public var alpha: Float
        public var modules: Int
        public var tensors: Int
        /// Modules whose lora_b carries a folded scale factor.
        public var foldedModules: Int
    }

    /// The llama.cpp tensor name of a PEFT module path in a model of `family`:
    /// DoRA's magnitude rescales each row by m / ‖W + s·B·A‖, which a LoRA file cannot say:
    /// such adapters are refused by name (merging them works: `pissa merge`).
    static func refuseDoRA(_ adapters: [(path: String, factors: LoRAFactors, scale: Float)], format: String, path: String) throws {
        guard let dora = adapters.first(where: { $0.factors.magnitude != nil }) else { return }
        throw AdapterFileError.unsupported(
            path: path, reason: "\(dora.path) is a DoRA adapter (lora_magnitude_vector): \(format) has no magnitude vector; "
                + "fold it into the model with `pissa merge` and use the merged model instead")
    }

    /// `model.layers.3.self_attn.q_proj` → `blk.3.attn_q.weight`.
    public static func baseTensorName(module path: String, family: any Architecture.Type) -> String? {
        family.tensorNames.ggufName(forHuggingFace: path + ".weight")
    }

    /// Builds the file's metadata and tensors for a base model of `config` (its family names the
    /// tensors and says which rows llama.cpp permutes).
    public static func encode(adapters: [(path: String, factors: LoRAFactors, scale: Float)], config: ModelConfig,
                              name: String = "pissa adapter") throws -> (metadata: [(key: String, value: GGUFValue)], tensors: [GGUFWriter.Tensor], folded: Int) {
        guard let first = adapters.first else { throw AdapterFileError.inconsistent(path: name, problems: ["no modules to export"]) }
        try refuseDoRA(adapters, format: "GGUF-LoRA (llama.cpp applies W + s·B·A only)", path: name)
        let family = ArchitectureRegistry.architecture(of: config)
        let alpha = first.scale * Float(first.factors.rank)
        var tensors: [GGUFWriter.Tensor] = [], problems: [String] = [], folded = 0
        for (path, f, s) in adapters {
            guard let base = baseTensorName(module: path, family: family) else { problems.append("\(path): no llama.cpp tensor name"); continue }
            let (r, out, inF) = (f.rank, f.B.rows, f.A.cols)
            var b = f.B.storage                                   // (out, r)
            let factor = s * Float(r) / alpha
            if abs(factor - 1) > 1e-7 {
                for i in b.indices { b[i] *= factor }
                folded += 1
            }
            if let heads = family.ggufPermutedHeads(huggingFace: path + ".weight", config: config) {
                guard out % (2 * heads) == 0 else { problems.append("\(path): \(out) rows do not split into \(heads) rotary heads"); continue }
                GGUFRowPermutation.permuteRows(&b, rows: out, cols: r, heads: heads)
            }
            tensors.append(.init(name: base + ".lora_a", dimensions: [inF, r], values: f.A.storage))
            tensors.append(.init(name: base + ".lora_b", dimensions: [r, out], values: b))
        }
        guard problems.isEmpty else { throw AdapterFileError.inconsistent(path: name, problems: problems) }
        let metadata: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string(family.ggufArchitectures[0])),
            ("general.type", .string("adapter")),
            ("general.name", .string(name)),
            ("general.file_type", .uint32(0)),   // LLAMA_FTYPE_ALL_F32
            ("adapter.type", .string("lora")),
            ("adapter.lora.alpha", .float32(alpha)),
        ]
        return (metadata, tensors, folded)
    }

    /// Writes the adapter GGUF atomically.
    @discardableResult
    public static func write(adapters: [(path: String, factors: LoRAFactors, scale: Float)], config: ModelConfig,
                             to url: URL, name: String = "pissa adapter") throws -> Summary {
        let (metadata, tensors, folded) = try encode(adapters: adapters, config: config, name: name)
        try GGUFWriter.write(to: url, metadata: metadata, tensors: tensors)
        return Summary(path: url.path, alpha: metadata.first { $0.key == "adapter.lora.alpha" }!.value.double.map(Float.init)!,
                       modules: adapters.count, tensors: tensors.count, foldedModules: folded)
    }
}
