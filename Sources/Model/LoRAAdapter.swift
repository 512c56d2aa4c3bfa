import LinearAlgebra

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
