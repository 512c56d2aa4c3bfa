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
    /// CorDA (arXiv 2406.05223, PEFT's `corda`): the SVD of W·C, C the covariance of the layer's
    /// inputs over calibration data; IPM takes the top r triplets, KPM the bottom r
    /// (`AdapterSettings.corda`). W − s·B·A frozen.
    case corda
    /// EVA (arXiv 2410.07170, PEFT's `eva`): A = the top right singular vectors of the layer's
    /// inputs over calibration data, B = 0; ranks redistributed by explained variance (`AdapterSettings.eva`).
    case eva
    /// LoRA-GA (arXiv 2407.05000, PEFT's `lora_ga`): A and B from the SVD of the full-weight
    /// gradient over calibration batches (`AdapterSettings.loraGA`); W − s·B·A frozen.
    case loraGA

    /// Parses PEFT's spelling: `pissa`, `pissa_niter_4`, `lora` (or `true`), `gaussian`, `loftq`,
    /// `olora`, `corda`, `eva`, `lora_ga` (or `loraga`), and `milora` (not in PEFT).
    public init?(peftName: String) {
        switch peftName.lowercased() {
        case "pissa": self = .pissa
        case "lora", "true", "default": self = .lora
        case "gaussian": self = .gaussian
        case "loftq": self = .loftq
        case "olora": self = .olora
        case "milora": self = .milora
        case "corda": self = .corda
        case "eva": self = .eva
        case "lora_ga", "loraga": self = .loraGA
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
        case .corda: "corda"
        case .eva: "eva"
        case .loraGA: "lora_ga"
        }
    }

    public var description: String { peftName }

    /// True when the adapter is taken out of the weight's principal subspace (PiSSA / QPiSSA).
    public var isPiSSA: Bool {
        switch self {
        case .pissa, .pissaNiter: true
        case .lora, .gaussian, .loftq, .olora, .milora, .corda, .eva, .loraGA: false
        }
    }

    /// True for the starts that move part of W into the adapter and freeze the rest, W − s·B·A
    /// (PiSSA, OLoRA, MiLoRA): `pissa init` writes that residual model, and a trained adapter
    /// converts to a rank-2r LoRA on the original model as PiSSA's does.
    public var rewritesBase: Bool {
        switch self {
        case .pissa, .pissaNiter, .olora, .milora, .corda, .loraGA: true
        case .lora, .gaussian, .loftq, .eva: false
        }
    }

    /// True for the zero-B starts (LoRA, Gaussian, EVA): the residual is W itself.
    public var isZeroB: Bool {
        switch self {
        case .lora, .gaussian, .eva: true
        case .pissa, .pissaNiter, .loftq, .olora, .milora, .corda, .loraGA: false
        }
    }

    /// True for the starts made from calibration data (`--calib-data`): CorDA and EVA from the
    /// layers' inputs, LoRA-GA from the gradient.
    public var needsCalibration: Bool {
        switch self {
        case .corda, .eva, .loraGA: true
        case .pissa, .pissaNiter, .lora, .gaussian, .loftq, .olora, .milora: false
        }
    }

    /// Every start without a parameter, and `pissa_niter_4` for the randomized family.
    public static let named: [InitMethod] = [.pissa, .pissaNiter(4), .lora, .gaussian, .loftq, .olora, .milora, .corda, .eva, .loraGA]

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
    /// CorDA's mode (PEFT's `CordaConfig`).
    public var corda = CordaSettings()
    /// EVA's settings (PEFT's `EvaConfig`).
    public var eva = EvaSettings()
    /// LoRA-GA's settings (PEFT's `LoraGAConfig`).
    public var loraGA = LoraGASettings()

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
        case rank, alpha, useRSLoRA, targets, initMethod, oversample, seed, useDoRA, corda, eva, loraGA
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
        corda = try c.decodeIfPresent(CordaSettings.self, forKey: .corda) ?? CordaSettings()
        eva = try c.decodeIfPresent(EvaSettings.self, forKey: .eva) ?? EvaSettings()
        loraGA = try c.decodeIfPresent(LoraGASettings.self, forKey: .loraGA) ?? LoraGASettings()
    }
}

/// CorDA's settings, PEFT's `CordaConfig` (its defaults).
public struct CordaSettings: Sendable, Equatable, Codable {
    public enum Method: String, Sendable, Codable, CaseIterable {
        /// Instruction-previewed: the top r triplets of W·C (fast convergence on the task).
        case ipm
        /// Knowledge-preserved: the bottom r triplets (the top ones stay frozen, with what they hold).
        case kpm
    }

    /// `corda_method`, default `ipm`.
    public var method: Method = .ipm

    public init(method: Method = .ipm) { self.method = method }
}

/// EVA's settings, PEFT's `EvaConfig` (its defaults).
public struct EvaSettings: Sendable, Equatable, Codable {
    /// `rho` ≥ 1: a layer's rank may grow to round(ρ·r) (2: twice the rank; 1: no redistribution).
    public var rho: Double = 2
    /// `tau`: components have converged when consecutive estimates have cosine similarity ≥ τ.
    public var tau: Double = 0.99
    /// `use_label_mask`: only the rows of supervised tokens enter the SVD.
    public var useLabelMask = true
    /// `whiten`: divide each component by √(its singular value).
    public var whiten = false
    /// `adjust_scaling_factors`: lora_alpha × new rank / r, so that every layer keeps the scale α/r.
    public var adjustScalingFactors = true

    public init(rho: Double = 2, tau: Double = 0.99, useLabelMask: Bool = true, whiten: Bool = false, adjustScalingFactors: Bool = true) {
        self.rho = rho
        self.tau = tau
        self.useLabelMask = useLabelMask
        self.whiten = whiten
        self.adjustScalingFactors = adjustScalingFactors
    }
}

/// LoRA-GA's settings, PEFT's `LoraGAConfig` (its defaults).
public struct LoraGASettings: Sendable, Equatable, Codable {
    /// Which of the gradient's top 2r singular triplets go to A and to B.
    public enum Direction: String, Sendable, Codable, CaseIterable {
        /// A = Vh[r:2r], B from U[:, :r].
        case A2rBr
        /// A = Vh[:r], B from U[:, r:2r] (PEFT's default).
        case ArB2r
        /// A from the odd, B from the even indices.
        case ArBr
        /// r of the 2r indices at random (the same for A and B).
        case random
    }

    /// How B (and A) are scaled after B = U·diag(S).
    public enum Scale: String, Sendable, Codable, CaseIterable {
        /// B × out^¼ / √γ (PEFT's default).
        case stable
        /// B × σ₁(W) / S_B[0].
        case weightSVD = "weight_svd"
        /// A / s and B / s.
        case gdScale = "gd_scale"
        /// No further scaling.
        case unit
    }

    public var direction: Direction = .ArB2r
    public var scale: Scale = .stable
    /// γ of the stable scale.
    public var stableGamma: Double = 16

    public init(direction: Direction = .ArB2r, scale: Scale = .stable, stableGamma: Double = 16) {
        self.direction = direction
        self.scale = scale
        self.stableGamma = stableGamma
    }
}

/// NF4 quantisation of the frozen residual (QPiSSA, QLoRA, LoftQ; docs/METHOD.md §3).
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
