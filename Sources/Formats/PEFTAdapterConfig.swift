import Foundation

/// Hugging Face PEFT's `adapter_config.json` for a LoRA adapter: the keys that decide how the
/// adapter is applied. Keys we do not model are ignored when reading; PEFT fills its defaults
/// for the keys we do not write.
public struct PEFTAdapterConfig: Codable, Sendable, Equatable {
    /// `init_lora_weights`: `true`/`false`, or an initialiser name such as `"pissa_niter_4"`.
    public enum InitLoraWeights: Codable, Sendable, Equatable {
        case bool(Bool)
        case named(String)

        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .bool(b) } else { self = .named(try c.decode(String.self)) }
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .bool(let b): try c.encode(b)
            case .named(let s): try c.encode(s)
            }
        }
    }

    /// `target_modules`: a list of module-name suffixes, or one regular expression string.
    public enum TargetModules: Codable, Sendable, Equatable {
        case list([String])
        case pattern(String)

        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .pattern(s) } else { self = .list(try c.decode([String].self)) }
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .list(let l): try c.encode(l)
            case .pattern(let p): try c.encode(p)
            }
        }
    }

    public var peftType: String = "LORA"
    public var taskType: String?
    public var baseModelNameOrPath: String?
    public var r: Int
    public var loraAlpha: Float
    public var loraDropout: Float = 0
    public var targetModules: TargetModules
    public var initLoraWeights: InitLoraWeights = .bool(true)
    public var useRslora: Bool = false
    public var useDora: Bool = false
    public var bias: String = "none"
    public var fanInFanOut: Bool = false
    public var inferenceMode: Bool = true
    public var rankPattern: [String: Int] = [:]
    public var alphaPattern: [String: Float] = [:]
    public var modulesToSave: [String]?

    public init(r: Int, loraAlpha: Float, targetModules: [String], useRslora: Bool,
                taskType: String?, baseModelNameOrPath: String?, initLoraWeights: InitLoraWeights = .bool(true)) {
        self.r = r
        self.loraAlpha = loraAlpha
        self.targetModules = .list(targetModules)
        self.useRslora = useRslora
        self.taskType = taskType
        self.baseModelNameOrPath = baseModelNameOrPath
        self.initLoraWeights = initLoraWeights
    }

    enum CodingKeys: String, CodingKey {
        case peftType = "peft_type", taskType = "task_type", baseModelNameOrPath = "base_model_name_or_path"
        case r, loraAlpha = "lora_alpha", loraDropout = "lora_dropout", targetModules = "target_modules"
        case initLoraWeights = "init_lora_weights", useRslora = "use_rslora", useDora = "use_dora", bias
        case fanInFanOut = "fan_in_fan_out", inferenceMode = "inference_mode", rankPattern = "rank_pattern"
        case alphaPattern = "alpha_pattern", modulesToSave = "modules_to_save"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        peftType = try c.decodeIfPresent(String.self, forKey: .peftType) ?? "LORA"
        taskType = try c.decodeIfPresent(String.self, forKey: .taskType)
        baseModelNameOrPath = try c.decodeIfPresent(String.self, forKey: .baseModelNameOrPath)
        r = try c.decode(Int.self, forKey: .r)
        loraAlpha = try c.decode(Float.self, forKey: .loraAlpha)
        loraDropout = try c.decodeIfPresent(Float.self, forKey: .loraDropout) ?? 0
        targetModules = try c.decode(TargetModules.self, forKey: .targetModules)
        initLoraWeights = try c.decodeIfPresent(InitLoraWeights.self, forKey: .initLoraWeights) ?? .bool(true)
        useRslora = try c.decodeIfPresent(Bool.self, forKey: .useRslora) ?? false
        useDora = try c.decodeIfPresent(Bool.self, forKey: .useDora) ?? false
        bias = try c.decodeIfPresent(String.self, forKey: .bias) ?? "none"
        fanInFanOut = try c.decodeIfPresent(Bool.self, forKey: .fanInFanOut) ?? false
        inferenceMode = try c.decodeIfPresent(Bool.self, forKey: .inferenceMode) ?? true
        rankPattern = try c.decodeIfPresent([String: Int].self, forKey: .rankPattern) ?? [:]
        alphaPattern = try c.decodeIfPresent([String: Float].self, forKey: .alphaPattern) ?? [:]
        modulesToSave = try c.decodeIfPresent([String].self, forKey: .modulesToSave)
        guard r > 0 else { throw DecodingError.dataCorruptedError(forKey: .r, in: c, debugDescription: "rank \(r) must be positive") }
        if let (module, rank) = rankPattern.first(where: { $0.value <= 0 }) {
            throw DecodingError.dataCorruptedError(forKey: .rankPattern, in: c, debugDescription: "rank \(rank) for '\(module)' must be positive")
        }
        if let bad = ([loraAlpha] + alphaPattern.values).first(where: { !$0.isFinite }) {
            throw DecodingError.dataCorruptedError(forKey: .loraAlpha, in: c, debugDescription: "alpha \(bad) is not a finite number")
        }
    }

    /// The key PEFT gives module `path`'s factor: `base_model.model.<path>.lora_A.weight`.
    public static func tensorName(module path: String, factor: Factor) -> String {
        "base_model.model.\(path).\(factor.rawValue).weight"
    }

    public enum Factor: String, Sendable { case loraA = "lora_A", loraB = "lora_B" }

    /// The key PEFT gives module `path`'s DoRA magnitude: `base_model.model.<path>.lora_magnitude_vector`.
    public static func magnitudeName(module path: String) -> String {
        "base_model.model.\(path).lora_magnitude_vector"
    }

    public static let configFileName = "adapter_config.json"
    public static let weightsFileName = "adapter_model.safetensors"

    /// Pretty-printed JSON with sorted keys, as PEFT writes it.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
