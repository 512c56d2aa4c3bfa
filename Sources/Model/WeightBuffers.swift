import LinearAlgebra

/// A dense row-major float32 weight that kernels read in place: the model's own `Matrix` /
/// `[Float]`, or a tensor in buffers owned elsewhere (`WeightBuffer`, the trainer's flat store
/// in full fine-tuning), which also carries the gradient buffer backward adds into.
protocol DenseWeight {
    var rows: Int { get }
    var cols: Int { get }
    /// dL/dW (rows, cols), added into by backward; nil for a frozen weight.
    var gradient: UnsafeMutablePointer<Float>? { get }
    func withValues<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R
    /// Row `row` (cols floats) into `out`: an embedding lookup.
    func copyRow(_ row: Int, into out: UnsafeMutablePointer<Float>)
}

extension DenseWeight {
    func copyRow(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        withValues { out.update(from: $0 + row * cols, count: cols) }
    }
}

extension Matrix: DenseWeight {
    /// A `Matrix` is never trained in place.
    public var gradient: UnsafeMutablePointer<Float>? { nil }
    func withValues<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }
}

extension Array: DenseWeight where Element == Float {
    var rows: Int { 1 }
    var cols: Int { count }
    var gradient: UnsafeMutablePointer<Float>? { nil }
    func withValues<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        try withUnsafeBufferPointer { try body($0.baseAddress!) }
    }
}

/// One tensor in external buffers: `values` (rows, cols) the forward reads, and `gradient` of the
/// same shape into which backward *adds* (nil: not trained). The owner keeps both alive for as
/// long as a model uses them.
public struct WeightBuffer: @unchecked Sendable, DenseWeight {
    public var values: UnsafeMutablePointer<Float>
    public var gradient: UnsafeMutablePointer<Float>?
    public var rows: Int
    public var cols: Int

    public init(values: UnsafeMutablePointer<Float>, gradient: UnsafeMutablePointer<Float>?, rows: Int, cols: Int) {
        self.values = values
        self.gradient = gradient
        self.rows = rows
        self.cols = cols
    }

    func withValues<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R { try body(values) }
}

/// Every weight of a model in external buffers (full fine-tuning: the trainer's `ParameterStore`
/// holds the values, gradients and moments in one flat layout). A model built with these reads
/// its weights only from here and ignores the tensors of its `ModelWeights` (which the owner may
/// empty, so that no second copy exists).
public struct ModelWeightBuffers: @unchecked Sendable {
    public struct Layer: Sendable {
        /// By `LayerNorm.rawValue`: (1, C) or (1, D); nil for norms the block lacks.
        public var norms: [WeightBuffer?]
        /// By the layout's slot (`LayerWeights.projections`).
        public var projections: [WeightBuffer]
        /// By slot: (1, out) biases; nil for projections without one.
        public var biases: [WeightBuffer?]

        public init(norms: [WeightBuffer?], projections: [WeightBuffer], biases: [WeightBuffer?]? = nil) {
            self.norms = norms
            self.projections = projections
            self.biases = biases ?? Array(repeating: nil, count: projections.count)
        }
    }

    /// (V, C); also the output head when `lmHead` is nil (tied): its gradient then receives the
    /// embedding-lookup gradient plus the head's.
    public var embedding: WeightBuffer
    public var lmHead: WeightBuffer?                  // (V, C), untied head
    public var finalNorm: WeightBuffer                // (1, C)
    public var layers: [Layer]

    public init(embedding: WeightBuffer, lmHead: WeightBuffer?, finalNorm: WeightBuffer, layers: [Layer]) {
        self.embedding = embedding
        self.lmHead = lmHead
        self.finalNorm = finalNorm
        self.layers = layers
    }
}

/// The weights of one decoder layer as the kernels read them, from either source.
struct LayerWeightsView {
    /// By `LayerNorm.rawValue`; nil for norms the block lacks.
    let norms: [(any DenseWeight)?]
    let layout: ProjectionLayout
    let projections: [any LinearWeight]      // by slot
    let biases: [(any DenseWeight)?]         // by slot

    subscript(_ p: Projection) -> any LinearWeight { projections[layout.index(p)] }
    /// The projection's bias, nil when it has none.
    func bias(_ p: Projection) -> (any DenseWeight)? { layout.slot(p).flatMap { biases[$0] } }
    /// A norm the block has.
    subscript(_ n: LayerNorm) -> any DenseWeight { norms[n.rawValue]! }
}

extension DecoderModel {
    /// Layer `index`'s weights: the external buffers when the model has them, else its own.
    func layerWeights(_ index: Int) -> LayerWeightsView {
        let layout = config.block.layout
        if let b = buffers?.layers[index] {
            return LayerWeightsView(norms: b.norms.map { $0 }, layout: layout, projections: b.projections, biases: b.biases.map { $0 })
        }
        let l = weights.layers[index]
        return LayerWeightsView(norms: l.norms.map { $0.isEmpty ? nil : $0 }, layout: layout, projections: l.projections,
                                biases: l.biases.map { $0.isEmpty ? nil : $0 })
    }

    /// The token embedding (V, C).
    var embeddingWeight: any DenseWeight { buffers?.embedding ?? weights.blockEmbedding ?? weights.embedding }
    /// The output head (V, C): the untied head, else the embedding.
    var outputHeadWeight: any DenseWeight & LinearWeight {
        if let b = buffers { return b.lmHead ?? b.embedding }
        if let head = weights.blockHead ?? (weights.lmHead == nil ? weights.blockEmbedding : nil) { return head }
        return weights.outputHead
    }
    /// Whether a step trains the output head (full fine-tuning with its gradient buffer).
    package var trainsHead: Bool { outputHeadWeight.gradient != nil }
    /// The final norm's weight (C).
    var finalNormWeight: any DenseWeight { buffers?.finalNorm ?? weights.finalNorm }
}
