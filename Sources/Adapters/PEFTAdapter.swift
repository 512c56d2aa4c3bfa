import Foundation
import Formats
import LinearAlgebra

/// Reads and writes Hugging Face PEFT LoRA adapter directories
/// (`adapter_config.json` + `adapter_model.safetensors`, factors in float32).
public enum PEFTAdapter {
    /// Writes `directory/adapter_model.safetensors` (tensors `base_model.model.<module>.lora_A.weight`
    /// [r, in] and `…lora_B.weight` [out, r]) and `directory/adapter_config.json`, each atomically.
    public static func write(to directory: URL, modules: [(path: String, factors: LoRAFactors)],
                             config: PEFTAdapterConfig) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var tensors: [(spec: TensorSpec, floats: [Float])] = []
        for (path, f) in modules {
            tensors.append((TensorSpec(name: PEFTAdapterConfig.tensorName(module: path, factor: .loraA), dtype: .f32,
                                       shape: [f.A.rows, f.A.cols]), f.A.storage))
            tensors.append((TensorSpec(name: PEFTAdapterConfig.tensorName(module: path, factor: .loraB), dtype: .f32,
                                       shape: [f.B.rows, f.B.cols]), f.B.storage))
        }
        try SafeTensorsWriter.write(url: directory.appendingPathComponent(PEFTAdapterConfig.weightsFileName),
                                    tensors: tensors, metadata: ["format": "pt"])
        try AtomicFile.write(config.jsonData(), to: directory.appendingPathComponent(PEFTAdapterConfig.configFileName))
    }
}

/// Errors reading an adapter directory.
public enum AdapterFileError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case unsupported(path: String, reason: String)
    case inconsistent(path: String, problems: [String])

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "\(path): \(reason)"
        case let .unsupported(path, reason): "\(path): \(reason)"
        case let .inconsistent(path, problems): "\(path):\n  " + problems.joined(separator: "\n  ")
        }
    }
}

extension PEFTAdapter {
    /// A LoRA adapter read from a PEFT directory: its config and each module's factors.
    public struct Loaded: Sendable {
        public var config: PEFTAdapterConfig
        public var modules: [(path: String, factors: LoRAFactors)]
        /// `lora_alpha / r` (or `/ √r` with rsLoRA) for a module of rank r, honouring rank/alpha patterns.
        public func scale(rank: Int, module: String) -> Float {
            let alpha = config.alphaPattern.first(where: { module.hasSuffix($0.key) })?.value ?? config.loraAlpha
            return config.useRslora ? alpha / Float(rank).squareRoot() : alpha / Float(rank)
        }
    }

    /// Reads `adapter_config.json` + `adapter_model.safetensors` (a `.bin` adapter is refused).
    public static func read(directory: URL) throws -> Loaded {
        let configURL = directory.appendingPathComponent(PEFTAdapterConfig.configFileName)
        let weightsURL = directory.appendingPathComponent(PEFTAdapterConfig.weightsFileName)
        guard let data = try? Data(contentsOf: configURL) else {
            throw AdapterFileError.unreadable(path: configURL.path, reason: "missing or unreadable (is this a PEFT adapter directory?)")
        }
        let config: PEFTAdapterConfig
        do { config = try JSONDecoder().decode(PEFTAdapterConfig.self, from: data) } catch {
            throw AdapterFileError.unreadable(path: configURL.path, reason: "not a PEFT LoRA config: \(error)")
        }
        guard config.peftType == "LORA" else {
            throw AdapterFileError.unsupported(path: configURL.path, reason: "peft_type \(config.peftType); only LORA adapters are supported")
        }
        guard !config.useDora else { throw AdapterFileError.unsupported(path: configURL.path, reason: "DoRA adapters are not supported") }
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            let bin = directory.appendingPathComponent("adapter_model.bin")
            if FileManager.default.fileExists(atPath: bin.path) {
                throw AdapterFileError.unsupported(path: bin.path, reason: "pickled .bin adapters are not supported; save with safe_serialization=True")
            }
            throw AdapterFileError.unreadable(path: weightsURL.path, reason: "missing")
        }
        let file = try SafeTensorsFile(url: weightsURL)
        var problems: [String] = [], modules: [(String, LoRAFactors)] = []
        for info in file.tensors where info.name.hasSuffix(".lora_A.weight") {
            let stem = String(info.name.dropLast(".lora_A.weight".count))
            let path = stem.hasPrefix("base_model.model.") ? String(stem.dropFirst("base_model.model.".count)) : stem
            guard let b = file.info(stem + ".lora_B.weight") else { problems.append("\(stem): lora_B missing"); continue }
            guard info.shape.count == 2, b.shape.count == 2, b.shape[1] == info.shape[0], info.shape[0] > 0 else {
                problems.append("\(stem): lora_A \(info.shape) and lora_B \(b.shape) do not fit together"); continue
            }
            let (a, bFloats) = (try file.floats(info), try file.floats(b))
            if let bad = a.first(where: { !$0.isFinite }) ?? bFloats.first(where: { !$0.isFinite }) {
                problems.append("\(stem): the factors hold a non-finite value (\(bad))"); continue
            }
            modules.append((path, LoRAFactors(A: Matrix(rows: info.shape[0], cols: info.shape[1], storage: a),
                                              B: Matrix(rows: b.shape[0], cols: b.shape[1], storage: bFloats))))
        }
        if modules.isEmpty { problems.append("no lora_A / lora_B tensors") }
        guard problems.isEmpty else { throw AdapterFileError.inconsistent(path: weightsURL.path, problems: problems) }
        return Loaded(config: config, modules: modules)
    }
}
