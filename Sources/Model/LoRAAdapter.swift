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

/// A LoRA adapter on one projection: `y = x·Wᵀ + scale · (x·Aᵀ)·Bᵀ`.
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

    public init(a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>, gradA: UnsafeMutablePointer<Float>? = nil,
                gradB: UnsafeMutablePointer<Float>? = nil, rank: Int, scale: Float) {
        self.a = a
        self.b = b
        self.gradA = gradA
        self.gradB = gradB
        self.rank = rank
        self.scale = scale
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
