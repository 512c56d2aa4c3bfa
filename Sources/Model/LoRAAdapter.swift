import LinearAlgebra

/// The seven linear projections of a decoder layer (every family here), with their Hugging Face names.
public enum Projection: Int, CaseIterable, Sendable, Codable {
    case q, k, v, o, gate, up, down

    /// The module name inside a layer (`self_attn.q_proj`, `mlp.down_proj`, …).
    public var moduleName: String {
        switch self {
        case .q: "self_attn.q_proj"
        case .k: "self_attn.k_proj"
        case .v: "self_attn.v_proj"
        case .o: "self_attn.o_proj"
        case .gate: "mlp.gate_proj"
        case .up: "mlp.up_proj"
        case .down: "mlp.down_proj"
        }
    }

    /// `model.layers.<layer>.<module>`: the PEFT module path.
    public func modulePath(layer: Int) -> String { "model.layers.\(layer).\(moduleName)" }
}

/// A LoRA adapter on one projection: `y = x·Wᵀ + scale · (x·Aᵀ)·Bᵀ`, or with DoRA
/// `y = g ⊙ (x·Wᵀ + scale · (x·Aᵀ)·Bᵀ)`, g = m / ‖W + scale·B·A‖ per output feature.
///
/// The factors live in buffers the caller owns (the trainer's flat parameter store), so the
/// model never copies them: `a` (r, in), `b` (out, r), and when training `gradA`, `gradB` of the
/// same shapes, into which backward *adds*.
public struct LoRAAdapter: @unchecked Sendable {
    public var a: UnsafeMutablePointer<Float>
    public var b: UnsafeMutablePointer<Float>
    public var gradA: UnsafeMutablePointer<Float>?
    public var gradB: UnsafeMutablePointer<Float>?
    public var rank: Int
    public var scale: Float
    /// DoRA's magnitude (nil: plain LoRA).
    public var dora: DoRAMagnitude?

    public init(a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>, gradA: UnsafeMutablePointer<Float>? = nil,
                gradB: UnsafeMutablePointer<Float>? = nil, rank: Int, scale: Float, dora: DoRAMagnitude? = nil) {
        self.a = a
        self.b = b
        self.gradA = gradA
        self.gradB = gradB
        self.rank = rank
        self.scale = scale
        self.dora = dora
    }
}

/// DoRA (arXiv 2402.09353; PEFT's `use_dora`, its `lora_magnitude_vector`): the adapted weight
/// W + s·B·A is split into a direction and a trainable magnitude m (out), one per output
/// feature (row), and the layer computes `y = (m / n) ⊙ (x·Wᵀ + s·(x·Aᵀ)·Bᵀ)` with
/// n = ‖W + s·B·A‖ per row. As in PEFT (the paper's §4.3) n is a constant in backward: its
/// value follows A and B, but no gradient flows through it.
///
/// Buffers (out) owned by the caller: `magnitude` m and its gradient, and `weightNorm` n, which
/// `DecoderModel.refreshDoRANorms` recomputes from the current A and B (call it whenever they
/// change); `baseSquaredNorm` ‖W_j‖² of the frozen weight, filled once by the same call.
public struct DoRAMagnitude: @unchecked Sendable {
    public var magnitude: UnsafeMutablePointer<Float>
    public var gradMagnitude: UnsafeMutablePointer<Float>?
    public var weightNorm: UnsafeMutablePointer<Float>
    public var baseSquaredNorm: UnsafeMutablePointer<Double>

    public init(magnitude: UnsafeMutablePointer<Float>, gradMagnitude: UnsafeMutablePointer<Float>?,
                weightNorm: UnsafeMutablePointer<Float>, baseSquaredNorm: UnsafeMutablePointer<Double>) {
        self.magnitude = magnitude
        self.gradMagnitude = gradMagnitude
        self.weightNorm = weightNorm
        self.baseSquaredNorm = baseSquaredNorm
    }
}

/// The adapters of a whole model: `layers[i][projection]`, nil where a projection has none.
public struct ModelAdapters: @unchecked Sendable {
    public var layers: [[LoRAAdapter?]]

    public init(layerCount: Int) {
        layers = Array(repeating: Array(repeating: nil, count: Projection.allCases.count), count: layerCount)
    }

    public subscript(layer: Int, projection: Projection) -> LoRAAdapter? {
        get { layers[layer][projection.rawValue] }
        set { layers[layer][projection.rawValue] = newValue }
    }

    /// The largest rank present (sizes the scratch buffers).
    public var maxRank: Int { layers.joined().compactMap { $0?.rank }.max() ?? 0 }
}

extension Projection {
    /// Parses a PEFT module path `…model.layers.<i>.<module>` into (layer, projection).
    public static func parse(modulePath: String) -> (layer: Int, projection: Projection)? {
        guard let range = modulePath.range(of: "layers.") else { return nil }
        let rest = modulePath[range.upperBound...]
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let module = String(rest[rest.index(after: dot)...])
        guard let p = allCases.first(where: { $0.moduleName == module }) else { return nil }
        return (layer, p)
    }
}
