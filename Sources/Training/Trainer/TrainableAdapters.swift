import Adapters
import Foundation
import Formats
import LinearAlgebra
import Model

/// The trainable LoRA factors of a run: one flat `ParameterStore` (parameters, gradients and
/// AdamW moments in one layout) and the model-side `ModelAdapters` pointing into it.
public final class TrainableAdapters: @unchecked Sendable {
    public struct Module: Sendable {
        public var layer: Int
        public var projection: Projection
        public var rank: Int
        public var scale: Float
        public var a: ParameterView
        public var b: ParameterView
        /// The PEFT module path (`model.layers.3.self_attn.q_proj`).
        public var path: String
        /// DoRA's magnitude (out), nil for plain LoRA.
        public var magnitude: ParameterView?
    }

    public let store: ParameterStore
    public let modules: [Module]
    public let adapters: ModelAdapters

    /// Registers every module's A (r, in) and B (out, r), copies the initial factors in, and
    /// points the model-side adapters at the store's parameter and gradient buffers.
    public init(initial: [(layer: Int, projection: Projection, factors: LoRAFactors, scale: Float)], config: ModelConfig) throws {
        let store = ParameterStore()
        // One allocation of the exact size: growing by doubling would zero-fill up to twice the room.
        let shapes = initial.flatMap { m in
            [[m.factors.A.rows, m.factors.A.cols], [m.factors.B.rows, m.factors.B.cols]] + (m.factors.magnitude.map { [[$0.count]] } ?? [])
        }
        if let total = ParameterStore.paddedTotal(shapes) { store.reserveCapacity(total) }
        var modules: [Module] = []
        for m in initial {
            let path = config.modulePath(m.projection, layer: m.layer)
            let a = try store.register(name: path + ".lora_A", shape: [m.factors.A.rows, m.factors.A.cols])
            let b = try store.register(name: path + ".lora_B", shape: [m.factors.B.rows, m.factors.B.cols])
            let magnitude = try m.factors.magnitude.map { try store.register(name: path + ".lora_magnitude_vector", shape: [$0.count]) }
            modules.append(Module(layer: m.layer, projection: m.projection, rank: m.factors.rank, scale: m.scale, a: a, b: b,
                                  path: path, magnitude: magnitude))
        }
        for (m, source) in zip(modules, initial) {
            _ = store.parameters(of: m.a).initialize(from: source.factors.A.storage)
            _ = store.parameters(of: m.b).initialize(from: source.factors.B.storage)
            if let view = m.magnitude, let values = source.factors.magnitude { _ = store.parameters(of: view).initialize(from: values) }
        }
        store.zeroGradients()
        // DoRA's norms: n and ‖W_j‖² (NaN until the first refresh) per magnitude, outside the store.
        let doraRows = modules.compactMap { $0.magnitude?.count }.reduce(0, +)
        let norms = UnsafeMutablePointer<Float>.allocate(capacity: max(1, doraRows))
        norms.initialize(repeating: 1, count: max(1, doraRows))
        let baseNorms = UnsafeMutablePointer<Double>.allocate(capacity: max(1, doraRows))
        baseNorms.initialize(repeating: .nan, count: max(1, doraRows))
        doraNorms = norms
        doraBaseNorms = baseNorms
        var adapters = ModelAdapters(config: config)
        var doraOffset = 0
        for m in modules {
            let dora = m.magnitude.map { view -> DoRAMagnitude in
                defer { doraOffset += view.count }
                return DoRAMagnitude(magnitude: store.parameters + view.offset, gradMagnitude: store.gradients + view.offset,
                                     weightNorm: norms + doraOffset, baseSquaredNorm: baseNorms + doraOffset)
            }
            adapters[m.layer, m.projection] = LoRAAdapter(
                a: store.parameters + m.a.offset, b: store.parameters + m.b.offset,
                gradA: store.gradients + m.a.offset, gradB: store.gradients + m.b.offset,
                rank: m.rank, scale: m.scale, dora: dora)
        }
        self.store = store
        self.modules = modules
        self.adapters = adapters
    }

    private let doraNorms: UnsafeMutablePointer<Float>
    private let doraBaseNorms: UnsafeMutablePointer<Double>

    deinit {
        doraNorms.deallocate()
        doraBaseNorms.deallocate()
    }

    /// Whether any module has a DoRA magnitude.
    public var usesDoRA: Bool { modules.contains { $0.magnitude != nil } }

    /// Recomputes DoRA's norms ‖W + s·B·A‖ from the current factors on `model`'s frozen weights;
    /// call after the factors change (the trainer does after every step and every restore).
    public func refreshDoRANorms(model: DecoderModel) {
        if usesDoRA { model.refreshDoRANorms(adapters) }
    }

    public var maxRank: Int { modules.map(\.rank).max() ?? 0 }

    /// LoRA+: every lora_B learns at `ratio` times the learning rate of lora_A (PEFT's
    /// `create_loraplus_optimizer`, which puts 1-D parameters in B's group too).
    public func setLoraPlusRatio(_ ratio: Double) {
        for m in modules {
            store.setLearningRateScale(ratio, for: m.b)
            if let magnitude = m.magnitude { store.setLearningRateScale(ratio, for: magnitude) }
        }
    }

    /// The current factors of every module, in registration order.
    public func factors() -> [(path: String, factors: LoRAFactors)] {
        modules.map { m in
            (m.path, LoRAFactors(A: Matrix(rows: m.a.shape[0], cols: m.a.shape[1], storage: Array(store.parameters(of: m.a))),
                                 B: Matrix(rows: m.b.shape[0], cols: m.b.shape[1], storage: Array(store.parameters(of: m.b))),
                                 magnitude: m.magnitude.map { Array(store.parameters(of: $0)) }))
        }
    }

    /// Writes the current factors as a PEFT adapter directory (atomically, file by file).
    public func writePEFT(to directory: URL, config: PEFTAdapterConfig, role: AdapterRole) throws {
        try PEFTAdapter.write(to: directory, modules: factors(), config: config, role: role)
    }
}
