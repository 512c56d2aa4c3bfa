import Foundation
import Formats
import LinearAlgebra

/// What an adapter this tool wrote is, recorded in its safetensors `__metadata__` under
/// `pissa.role` (PEFT and safetensors ignore metadata, so the file stays an ordinary PEFT adapter).
public enum AdapterRole: String, Sendable, Codable {
    /// A start: `pissa init`'s OUT/pissa_init (lora_init, loftq_init), a run's initial adapter.
    case initial
    /// Trained on top of a start: RUN/adapter and every checkpoint's adapter.
    case trained
    /// `pissa convert`'s output: a LoRA on the original model.
    case converted

    static let metadataKey = "pissa.role"
}

/// Reads and writes Hugging Face PEFT LoRA adapter directories
/// (`adapter_config.json` + `adapter_model.safetensors`, factors in float32).
public enum PEFTAdapter {
    /// Writes `directory/adapter_model.safetensors` (tensors `base_model.model.<module>.lora_A.weight`
    /// [r, in] and `…lora_B.weight` [out, r], DoRA's `…lora_magnitude_vector` [out] when the factors
    /// have one, `role` in its metadata) and `directory/adapter_config.json`,
    /// each atomically; a directory this call created is removed again if writing fails.
    public static func write(to directory: URL, modules: [(path: String, factors: LoRAFactors)],
                             config: PEFTAdapterConfig, role: AdapterRole) throws {
        let created = !FileManager.default.fileExists(atPath: directory.path)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var tensors: [(spec: TensorSpec, floats: [Float])] = []
        for (path, f) in modules {
            tensors.append((TensorSpec(name: PEFTAdapterConfig.tensorName(module: path, factor: .loraA), dtype: .f32,
                                       shape: [f.A.rows, f.A.cols]), f.A.storage))
            tensors.append((TensorSpec(name: PEFTAdapterConfig.tensorName(module: path, factor: .loraB), dtype: .f32,
                                       shape: [f.B.rows, f.B.cols]), f.B.storage))
            if let m = f.magnitude {
                tensors.append((TensorSpec(name: PEFTAdapterConfig.magnitudeName(module: path), dtype: .f32, shape: [m.count]), m))
            }
        }
        var config = config
        config.useDora = modules.contains { $0.factors.magnitude != nil }
        do {
            try SafeTensorsWriter.write(url: directory.appendingPathComponent(PEFTAdapterConfig.weightsFileName),
                                        tensors: tensors, metadata: ["format": "pt", AdapterRole.metadataKey: role.rawValue])
            try AtomicFile.write(config.jsonData(), to: directory.appendingPathComponent(PEFTAdapterConfig.configFileName))
        } catch {
            if created { try? FileManager.default.removeItem(at: directory) }   // no half-written adapter left behind
            throw error
        }
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
    /// A LoRA adapter read from a PEFT directory: its config and each module's factors (float32,
    /// whatever the dtype on disk), in file order.
    public struct Loaded: Sendable {
        public var config: PEFTAdapterConfig
        public var modules: [(path: String, factors: LoRAFactors)]
        /// What the file says it is (nil for adapters other tools wrote).
        public var role: AdapterRole?

        public init(config: PEFTAdapterConfig, modules: [(path: String, factors: LoRAFactors)], role: AdapterRole? = nil) {
            self.config = config
            self.modules = modules
            self.role = role
        }

        /// The rank PEFT gives `module`: its `rank_pattern` entry, else `r`.
        public func configuredRank(module: String) -> Int {
            PEFTAdapter.patternKey(config.rankPattern.keys, module: module).flatMap { config.rankPattern[$0] } ?? config.r
        }

        /// The lora_alpha PEFT gives `module`: its `alpha_pattern` entry, else `lora_alpha`.
        public func alpha(module: String) -> Float {
            PEFTAdapter.patternKey(config.alphaPattern.keys, module: module).flatMap { config.alphaPattern[$0] } ?? config.loraAlpha
        }

        /// `lora_alpha / r` (or `/ √r` with rsLoRA) for a module of rank r, honouring the alpha pattern.
        public func scale(rank: Int, module: String) -> Float {
            let alpha = alpha(module: module)
            return config.useRslora ? alpha / Float(rank).squareRoot() : alpha / Float(rank)
        }

        /// Each module's factors and scale.
        public var scaledModules: [(path: String, factors: LoRAFactors, scale: Float)] {
            modules.map { ($0.path, $0.factors, scale(rank: $0.factors.rank, module: $0.path)) }
        }
    }

    /// PEFT's `get_pattern_key`: the first key for which `(.*\.)?(key)$` matches the whole module
    /// name (keys are regular expressions; one that is not valid matches as a literal suffix).
    static func patternKey(_ keys: Dictionary<String, some Any>.Keys, module: String) -> String? {
        keys.sorted().first { key in
            if let re = try? NSRegularExpression(pattern: "^(.*\\.)?(\(key))$") {
                return re.firstMatch(in: module, range: NSRange(module.startIndex..., in: module)) != nil
            }
            return module == key || module.hasSuffix("." + key)
        }
    }

    static let loraASuffix = ".lora_A.weight", loraBSuffix = ".lora_B.weight", modelPrefix = "base_model.model."
    static let magnitudeSuffix = ".lora_magnitude_vector"

    /// Reads `adapter_config.json` + `adapter_model.safetensors` as PEFT (or this package) writes
    /// them: tensors `base_model.model.<module>.lora_A.weight` [r, in] / `lora_B.weight` [out, r]
    /// in F32, F16 or BF16, with DoRA's `…lora_magnitude_vector` [out] when `use_dora` is set.
    /// Refused with an `AdapterFileError` naming the file: a `.bin`-only
    /// adapter, non-LoRA adapters, `fan_in_fan_out`, tensors other than LoRA factors
    /// (`modules_to_save`, embeddings, biases), a factor without its partner, factors that do not
    /// fit together, and ranks that disagree with `r` / `rank_pattern`. Every problem is listed.
    public static func read(directory: URL) throws -> Loaded {
        let configURL = directory.appendingPathComponent(PEFTAdapterConfig.configFileName)
        let weightsURL = directory.appendingPathComponent(PEFTAdapterConfig.weightsFileName)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw AdapterFileError.unreadable(path: directory.path, reason: "no such adapter directory")
        }
        guard let data = try? Data(contentsOf: configURL) else {
            throw AdapterFileError.unreadable(path: configURL.path, reason: "missing or unreadable (is this a PEFT adapter directory?)")
        }
        let config: PEFTAdapterConfig
        do { config = try JSONDecoder().decode(PEFTAdapterConfig.self, from: data) } catch {
            throw AdapterFileError.unreadable(path: configURL.path, reason: "not a PEFT LoRA config: \(ErrorText.plain(error))")
        }
        guard config.peftType == "LORA" else {
            throw AdapterFileError.unsupported(path: configURL.path, reason: "peft_type \(config.peftType); only LORA adapters are supported")
        }
        guard !config.fanInFanOut else {
            throw AdapterFileError.unsupported(path: configURL.path, reason: "fan_in_fan_out adapters (GPT-2 Conv1D layout) are not supported")
        }
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            let bin = directory.appendingPathComponent("adapter_model.bin")
            if FileManager.default.fileExists(atPath: bin.path) {
                throw AdapterFileError.unsupported(
                    path: bin.path, reason: "pickled .bin adapters are not supported (they can run code when loaded); "
                        + "save with safe_serialization=True or convert to adapter_model.safetensors")
            }
            throw AdapterFileError.unreadable(path: weightsURL.path, reason: "missing")
        }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(url: weightsURL) } catch {
            throw AdapterFileError.unreadable(path: weightsURL.path, reason: ErrorText.plain(error))
        }
        var problems: [String] = [], modules: [(String, LoRAFactors)] = []
        let loraBNames = Set(file.tensors.map(\.name).filter { $0.hasSuffix(loraBSuffix) })
        for info in file.tensors where !info.name.hasSuffix(loraASuffix) && !info.name.hasSuffix(loraBSuffix)
            && !(config.useDora && info.name.hasSuffix(magnitudeSuffix)) {
            let what = info.name.hasSuffix(magnitudeSuffix) ? "a DoRA magnitude, but adapter_config.json has no use_dora: true"
                : "not a LoRA factor (modules_to_save, embedding and bias tensors are not supported)"
            problems.append("\(info.name): \(what)")
        }
        for info in file.tensors where info.name.hasSuffix(loraASuffix) {
            let stem = String(info.name.dropLast(loraASuffix.count))
            let path = stem.hasPrefix(modelPrefix) ? String(stem.dropFirst(modelPrefix.count)) : stem
            guard let b = file.info(stem + loraBSuffix) else { problems.append("\(stem): lora_B missing"); continue }
            guard info.shape.count == 2, b.shape.count == 2, b.shape[1] == info.shape[0], info.shape[0] > 0 else {
                problems.append("\(stem): lora_A \(info.shape) and lora_B \(b.shape) do not fit together"); continue
            }
            do {
                let (a, bFloats) = (try file.floats(info), try file.floats(b))
                if let bad = a.first(where: { !$0.isFinite }) ?? bFloats.first(where: { !$0.isFinite }) {
                    problems.append("\(stem): the factors hold a non-finite value (\(bad))"); continue
                }
                var magnitude: [Float]?
                if config.useDora {
                    guard let m = file.info(stem + magnitudeSuffix) else {
                        problems.append("\(stem): use_dora is set but lora_magnitude_vector is missing"); continue
                    }
                    guard m.shape == [b.shape[0]] else {
                        problems.append("\(stem): lora_magnitude_vector \(m.shape) does not fit lora_B \(b.shape)"); continue
                    }
                    let values = try file.floats(m)
                    if let bad = values.first(where: { !$0.isFinite }) {
                        problems.append("\(stem): the magnitude holds a non-finite value (\(bad))"); continue
                    }
                    magnitude = values
                }
                modules.append((path, LoRAFactors(A: Matrix(rows: info.shape[0], cols: info.shape[1], storage: a),
                                                  B: Matrix(rows: b.shape[0], cols: b.shape[1], storage: bFloats), magnitude: magnitude)))
            } catch {
                problems.append("\(stem): \(ErrorText.plain(error))")
            }
        }
        for name in loraBNames where file.info(String(name.dropLast(loraBSuffix.count)) + loraASuffix) == nil {
            problems.append("\(name.dropLast(loraBSuffix.count)): lora_A missing")
        }
        let loaded = Loaded(config: config, modules: modules, role: file.metadata[AdapterRole.metadataKey].flatMap(AdapterRole.init(rawValue:)))
        for (path, f) in modules where f.rank != loaded.configuredRank(module: path) {
            problems.append("\(path): rank \(f.rank) in the tensors, but the config gives \(loaded.configuredRank(module: path)) (r / rank_pattern)")
        }
        if modules.isEmpty && problems.isEmpty { problems.append("no lora_A / lora_B tensors") }
        guard problems.isEmpty else { throw AdapterFileError.inconsistent(path: weightsURL.path, problems: problems.sorted()) }
        return loaded
    }
}
