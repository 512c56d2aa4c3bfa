import LinearAlgebra

/// How the adapter's A and B start (PEFT's `init_lora_weights` names).
public enum InitMethod: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    /// PiSSA with the exact SVD (`sgesdd`).
    case pissa
    /// PiSSA with a randomized SVD of `niter` subspace iterations (PEFT's `pissa_niter_K`).
    case pissaNiter(Int)
    /// PEFT's default LoRA: A Kaiming-uniform (a = √5, i.e. U(±1/√in)), B = 0.
    case lora
    /// A ~ N(0, (1/r)²) as PEFT's `gaussian` does (`std = 1 / r`), B = 0.
    case gaussian
    /// LoftQ (arXiv 2310.08659, PEFT's `loftq`): alternately Q = nf4(W − sBA) and (B, A) = the
    /// rank-r SVD of W − deq(Q). Only with NF4 quantisation (`QuantizedInitializer`).
    case loftq
    /// OLoRA (arXiv 2406.01775, PEFT's `olora`): W = QR, B = Q[:, :r], A = R[:r], W − s·B·A frozen.
    case olora
    /// MiLoRA (arXiv 2406.09044): PiSSA's split of the *bottom* r singular triplets, W − s·B·A frozen.
    case milora

    /// Parses PEFT's spelling: `pissa`, `pissa_niter_4`, `lora` (or `true`), `gaussian`, `loftq`,
    /// `olora`, and `milora` (not in PEFT).
    public init?(peftName: String) {
        switch peftName.lowercased() {
        case "pissa": self = .pissa
        case "lora", "true", "default": self = .lora
        case "gaussian": self = .gaussian
        case "loftq": self = .loftq
        case "olora": self = .olora
        case "milora": self = .milora
        default:
            let prefix = "pissa_niter_"
            guard peftName.hasPrefix(prefix), let k = Int(peftName.dropFirst(prefix.count)), k >= 0 else { return nil }
            self = .pissaNiter(k)
        }
    }

    public var peftName: String {
        switch self {
        case .pissa: "pissa"
        case .pissaNiter(let k): "pissa_niter_\(k)"
        case .lora: "lora"
        case .gaussian: "gaussian"
        case .loftq: "loftq"
        case .olora: "olora"
        case .milora: "milora"
        }
    }

    public var description: String { peftName }

    /// True when the adapter is taken out of the weight's principal subspace (PiSSA / QPiSSA).
    public var isPiSSA: Bool {
        switch self {
        case .pissa, .pissaNiter: true
        case .lora, .gaussian, .loftq, .olora, .milora: false
        }
    }

    /// True for the starts that move part of W into the adapter and freeze the rest, W − s·B·A
    /// (PiSSA, OLoRA, MiLoRA): `pissa init` writes that residual model, and a trained adapter
    /// converts to a rank-2r LoRA on the original model as PiSSA's does.
    public var rewritesBase: Bool {
        switch self {
        case .pissa, .pissaNiter, .olora, .milora: true
        case .lora, .gaussian, .loftq: false
        }
    }

    /// True for the zero-B starts (LoRA, Gaussian): the adapter is random and the residual is W itself.
    public var isZeroB: Bool {
        switch self {
        case .lora, .gaussian: true
        case .pissa, .pissaNiter, .loftq, .olora, .milora: false
        }
    }

    /// Every start without a parameter, and `pissa_niter_4` for the randomized family.
    public static let named: [InitMethod] = [.pissa, .pissaNiter(4), .lora, .gaussian, .loftq, .olora, .milora]

    public init(from decoder: Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let method = InitMethod(peftName: name) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "unknown init method '\(name)'"))
        }
        self = method
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(peftName)
    }
}

/// Everything that decides an adapter's start, as a user gives it.
public struct AdapterSettings: Sendable, Equatable, Codable {
    public var rank: Int
    public var alpha: Float
    public var useRSLoRA: Bool
    /// Module-name suffixes, matched as PEFT does (`name == t` or `name` ends with `.t`), or `all-linear`.
    public var targets: [String]
    public var initMethod: InitMethod
    /// Extra sketch columns for the randomized SVD (PEFT uses 0). See BENCHMARKS.md for the default.
    public var oversample: Int
    public var seed: UInt64
    /// DoRA (PEFT's `use_dora`): a trainable magnitude per output feature on top of the start.
    public var useDoRA: Bool = false

    /// 0, as PEFT's `pissa_niter_K`: measured on SmolLM2 (r 16, niter 4), oversampling by 8 halves
    /// how much more of W the residual keeps than the optimum (0.47 % → 0.23 %) for 47 % more
    /// time, a difference fine-tuning does not notice (BENCHMARKS.md).
    public static let defaultOversample = 0

    public init(rank: Int = 16, alpha: Float = 16, useRSLoRA: Bool = false,
                targets: [String] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                initMethod: InitMethod = .pissaNiter(4), oversample: Int = AdapterSettings.defaultOversample,
                seed: UInt64 = 0) {
        self.rank = rank
        self.alpha = alpha
        self.useRSLoRA = useRSLoRA
        self.targets = targets
        self.initMethod = initMethod
        self.oversample = oversample
        self.seed = seed
    }

    /// `lora_alpha / r`, or `lora_alpha / √r` with rsLoRA.
    public var scale: Float {
        useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank)
    }

    enum CodingKeys: String, CodingKey {
        case rank, alpha, useRSLoRA, targets, initMethod, oversample, seed, useDoRA
    }

    /// Settings added after the first release (`useDoRA`, …) take their defaults when a saved
    /// configuration lacks them.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rank = try c.decode(Int.self, forKey: .rank)
        alpha = try c.decode(Float.self, forKey: .alpha)
        useRSLoRA = try c.decode(Bool.self, forKey: .useRSLoRA)
        targets = try c.decode([String].self, forKey: .targets)
        initMethod = try c.decode(InitMethod.self, forKey: .initMethod)
        oversample = try c.decode(Int.self, forKey: .oversample)
        seed = try c.decode(UInt64.self, forKey: .seed)
        useDoRA = try c.decodeIfPresent(Bool.self, forKey: .useDoRA) ?? false
    }
}

/// NF4 quantisation of the frozen residual (QPiSSA, QLoRA, LoftQ; PISSA.md §3).
public struct QuantSettings: Sendable, Equatable, Codable {
    /// T: QPiSSA's / LoftQ's alternating iterations (1 = quantise the PiSSA residual once).
    public var iterations: Int
    /// Also quantise the absmax values (bitsandbytes `compress_statistics`, QLoRA's double quantisation).
    public var doubleQuant: Bool
    /// Values per NF4 block (bitsandbytes' default 64).
    public var blockSize: Int

    public init(iterations: Int = 1, doubleQuant: Bool = false, blockSize: Int = NF4Matrix.defaultBlockSize) {
        self.iterations = iterations
        self.doubleQuant = doubleQuant
        self.blockSize = blockSize
    }

    /// nf4(W) with these settings.
    public func quantize(_ w: Matrix) -> NF4Matrix {
        NF4Matrix(quantizing: w, blockSize: blockSize, doubleQuant: doubleQuant)
    }
}
