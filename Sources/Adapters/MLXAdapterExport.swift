import Foundation
import Formats
import LinearAlgebra
import Model

/// Writes an mlx-lm adapter directory (`mlx_lm.tuner.utils.load_adapters`):
///
///     adapters.safetensors   model.layers.N.<module>.lora_a  [in, r]  (= PEFT's lora_Aᵀ)
///                            model.layers.N.<module>.lora_b  [r, out] (= PEFT's lora_Bᵀ)
///     adapter_config.json    {"fine_tune_type": "lora", "num_layers": n,
///                             "lora_parameters": {"rank": r, "scale": s, "dropout": 0, "keys": [...]}}
///
/// mlx-lm computes `y = x·Wᵀ + scale·(x·lora_a)·lora_b` with one rank, one absolute scale and
/// one set of keys for the last `num_layers` layers. So that any PEFT adapter fits exactly:
/// `num_layers` reaches down to the lowest adapted layer, `keys` is the union of adapted
/// modules, modules without an adapter get zero factors, smaller ranks are zero-padded to the
/// largest, and a module whose scale differs from the first one's has the ratio folded into lora_b.
public enum MLXAdapterExport {
    public struct Config: Codable, Sendable, Equatable {
        public struct LoRAParameters: Codable, Sendable, Equatable {
            public var rank: Int
            public var scale: Float
            public var dropout: Float
            public var keys: [String]
        }
        public var fineTuneType: String
        public var numLayers: Int
        public var loraParameters: LoRAParameters

        enum CodingKeys: String, CodingKey {
            case fineTuneType = "fine_tune_type", numLayers = "num_layers", loraParameters = "lora_parameters"
        }
    }

    public static let weightsFileName = "adapters.safetensors"
    public static let configFileName = "adapter_config.json"

    /// Writes `directory` (created if needed); each file atomically, the weights first.
    @discardableResult
    public static func write(adapters: [(path: String, factors: LoRAFactors, scale: Float)], config: ModelConfig, to directory: URL) throws -> Config {
        let layerCount = config.numHiddenLayers
        try GGUFLoRAExport.refuseDoRA(adapters, format: "this mlx-lm LoRA export", path: directory.path)
        var parsed: [(layer: Int, projection: Projection, factors: LoRAFactors, scale: Float)] = [], problems: [String] = []
        var experts: [String] = []
        for (path, f, s) in adapters {
            guard let (layer, p) = config.projection(modulePath: path), layer < layerCount else {
                problems.append("\(path): not a projection of a \(layerCount)-layer \(config.architecture) model"); continue
            }
            guard p.isDense else { experts.append(path); continue }
            parsed.append((layer, p, f, s))
        }
        if let example = experts.first {
            problems.append("\(experts.count) expert modules (\(example), …): mlx-lm stacks a mixture's experts into SwitchLinear layers, "
                + "for which this export is not implemented; adapt the other modules only (--targets q_proj,k_proj,v_proj,o_proj) "
                + "or use --format gguf-lora or the PEFT adapter itself")
        }
        guard let first = parsed.first, problems.isEmpty else {
            throw AdapterFileError.inconsistent(path: directory.path, problems: problems.isEmpty ? ["no modules to export"] : problems)
        }
        let rank = parsed.map(\.factors.rank).max()!, scale = first.scale
        let lowest = parsed.map(\.layer).min()!
        let projections = config.projections.filter { p in parsed.contains { $0.projection == p } }
        let shapes = Dictionary(parsed.map { ($0.projection, (out: $0.factors.B.rows, in: $0.factors.A.cols)) }, uniquingKeysWith: { a, _ in a })
        let byModule = Dictionary(parsed.map { (config.modulePath($0.projection, layer: $0.layer), $0) }, uniquingKeysWith: { a, _ in a })
        var tensors: [(spec: TensorSpec, floats: [Float])] = []
        for layer in lowest..<layerCount {
            for p in projections {
                let (out, inF) = shapes[p]!
                var a = [Float](repeating: 0, count: inF * rank)    // (in, rank) = Aᵀ, zero-padded
                var b = [Float](repeating: 0, count: rank * out)    // (rank, out) = (factor·B)ᵀ, zero-padded
                let key = config.modulePath(p, layer: layer)
                if let m = byModule[key] {
                    let (A, B, r) = (m.factors.A, m.factors.B, m.factors.rank)
                    let factor = m.scale / scale
                    for i in 0..<r { for j in 0..<inF { a[j * rank + i] = A.storage[i * inF + j] } }
                    for o in 0..<out { for i in 0..<r { b[i * out + o] = factor * B.storage[o * r + i] } }
                }
                tensors.append((TensorSpec(name: key + ".lora_a", dtype: .f32, shape: [inF, rank]), a))
                tensors.append((TensorSpec(name: key + ".lora_b", dtype: .f32, shape: [rank, out]), b))
            }
        }
        let config = Config(fineTuneType: "lora", numLayers: layerCount - lowest,
                            loraParameters: .init(rank: rank, scale: scale, dropout: 0, keys: projections.map(config.moduleName)))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try SafeTensorsWriter.write(url: directory.appendingPathComponent(weightsFileName), tensors: tensors, metadata: ["format": "mlx"])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try encoder.encode(config), to: directory.appendingPathComponent(configFileName))
        return config
    }
}
