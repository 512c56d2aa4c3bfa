import LinearAlgebra

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

/// The adapters of a whole model: `layers[i][slot]` by the layout's slot of each projection,
/// nil where a projection has none.
public struct ModelAdapters: @unchecked Sendable {
    public let layout: ProjectionLayout
    public var layers: [[LoRAAdapter?]]

    /// No adapters on a model of `config`.
    public init(config: ModelConfig) {
        layout = config.block.layout
        layers = Array(repeating: Array(repeating: nil, count: layout.count), count: config.numHiddenLayers)
    }

    public subscript(layer: Int, projection: Projection) -> LoRAAdapter? {
        get { layout.slot(projection).flatMap { layers[layer][$0] } }
        set { layers[layer][layout.index(projection)] = newValue }
    }

    /// The largest rank present (sizes the scratch buffers).
    public var maxRank: Int { layers.joined().compactMap { $0?.rank }.max() ?? 0 }
}
