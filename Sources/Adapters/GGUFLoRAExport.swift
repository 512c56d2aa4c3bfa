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
/// A mixture's experts are stacked as llama.cpp stacks their weights (`convert_lora_to_gguf.py`
/// stacks the factors likewise): `blk.N.ffn_gate_exps.weight.lora_a` ne = [in, r, E], `lora_b`
/// ne = [r, out, E], which needs an adapter of one rank on every expert of the stack.
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
        guard let architecture = family.llamaCppArchitecture else {
            throw AdapterFileError.inconsistent(path: name, problems: ["llama.cpp has no architecture for \(family.name) models"])
        }
        let alpha = first.scale * Float(first.factors.rank)
        var tensors: [GGUFWriter.Tensor] = [], problems: [String] = [], folded = 0
        /// B with the module's scale folded in (`alpha / r · B·A` = `s · B·A`).
        func foldedB(_ f: LoRAFactors, _ s: Float) -> [Float] {
            var b = f.B.storage                                   // (out, r)
            let factor = s * Float(f.rank) / alpha
            if abs(factor - 1) > 1e-7 {
                for i in b.indices { b[i] *= factor }
                folded += 1
            }
            return b
        }
        var stacks: [String: [Int: (LoRAFactors, Float)]] = [:]   // stack's GGUF name → expert → factors
        for (path, f, s) in adapters {
            if let (layer, p) = config.projection(modulePath: path), case let .expert(e, m) = p,
               let stack = family.ggufExpertStacks.first(where: { $0.matrix == m }) {
                stacks["blk.\(layer).\(stack.gguf).weight", default: [:]][e] = (f, s)
                continue
            }
            guard let base = baseTensorName(module: path, family: family) else { problems.append("\(path): no llama.cpp tensor name"); continue }
            let (r, out, inF) = (f.rank, f.B.rows, f.A.cols)
            var b = foldedB(f, s)
            if let heads = family.ggufPermutedHeads(huggingFace: path + ".weight", config: config) {
                guard out % (2 * heads) == 0 else { problems.append("\(path): \(out) rows do not split into \(heads) rotary heads"); continue }
                GGUFRowPermutation.permuteRows(&b, rows: out, cols: r, heads: heads)
            }
            tensors.append(.init(name: base + ".lora_a", dimensions: [inF, r], values: f.A.storage))
            tensors.append(.init(name: base + ".lora_b", dimensions: [r, out], values: b))
        }
        let E = config.block.layout.expertCount
        for (base, experts) in stacks.sorted(by: { $0.key < $1.key }) {
            let all = (0..<E).compactMap { experts[$0] }
            guard all.count == E, let (f0, _) = all.first, all.allSatisfy({ $0.0.rank == f0.rank }) else {
                problems.append("\(base): llama.cpp stacks the \(E) experts' adapters, so each needs one, of one rank "
                    + "(found \(all.count), ranks \(Set(all.map(\.0.rank)).sorted()))")
                continue
            }
            tensors.append(.init(name: base + ".lora_a", dimensions: [f0.A.cols, f0.rank, E], values: all.flatMap { $0.0.A.storage }))
            tensors.append(.init(name: base + ".lora_b", dimensions: [f0.rank, f0.B.rows, E], values: all.flatMap { foldedB($0.0, $0.1) }))
        }
        guard problems.isEmpty else { throw AdapterFileError.inconsistent(path: name, problems: problems) }
        let metadata: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string(architecture)),
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
