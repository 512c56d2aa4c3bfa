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
        public var path: String { projection.modulePath(layer: layer) }
    }

    public let store: ParameterStore
    public let modules: [Module]
    public let adapters: ModelAdapters

    /// Registers every module's A (r, in) and B (out, r), copies the initial factors in, and
    /// points the model-side adapters at the store's parameter and gradient buffers.
    public init(initial: [(layer: Int, projection: Projection, factors: LoRAFactors, scale: Float)], layerCount: Int) throws {
        let store = ParameterStore()
        // One allocation of the exact size: growing by doubling would zero-fill up to twice the room.
        let shapes = initial.flatMap { [[$0.factors.A.rows, $0.factors.A.cols], [$0.factors.B.rows, $0.factors.B.cols]] }
        if let total = ParameterStore.paddedTotal(shapes) { store.reserveCapacity(total) }
        var modules: [Module] = []
        for m in initial {
            let path = m.projection.modulePath(layer: m.layer)
            let a = try store.register(name: path + ".lora_A", shape: [m.factors.A.rows, m.factors.A.cols])
            let b = try store.register(name: path + ".lora_B", shape: [m.factors.B.rows, m.factors.B.cols])
            modules.append(Module(layer: m.layer, projection: m.projection, rank: m.factors.rank, scale: m.scale, a: a, b: b))
        }
        for (m, source) in zip(modules, initial) {
            _ = store.parameters(of: m.a).initialize(from: source.factors.A.storage)
            _ = store.parameters(of: m.b).initialize(from: source.factors.B.storage)
        }
        store.zeroGradients()
        var adapters = ModelAdapters(layerCount: layerCount)
        for m in modules {
            adapters[m.layer, m.projection] = LoRAAdapter(
                a: store.parameters + m.a.offset, b: store.parameters + m.b.offset,
                gradA: store.gradients + m.a.offset, gradB: store.gradients + m.b.offset,
                rank: m.rank, scale: m.scale)
        }
        self.store = store
        self.modules = modules
        self.adapters = adapters
    }

    public var maxRank: Int { modules.map(\.rank).max() ?? 0 }

    /// LoRA+: every lora_B learns at `ratio` times the learning rate of lora_A (PEFT's
    /// `create_loraplus_optimizer`, which puts 1-D parameters in B's group too).
    public func setLoraPlusRatio(_ ratio: Double) {
        for m in modules { store.setLearningRateScale(ratio, for: m.b) }
    }

    /// The current factors of every module, in registration order.
    public func factors() -> [(path: String, factors: LoRAFactors)] {
        modules.map { m in
            (m.path, LoRAFactors(A: Matrix(rows: m.a.shape[0], cols: m.a.shape[1], storage: Array(store.parameters(of: m.a))),
                                 B: Matrix(rows: m.b.shape[0], cols: m.b.shape[1], storage: Array(store.parameters(of: m.b)))))
        }
    }

    /// Writes the current factors as a PEFT adapter directory (atomically, file by file).
    public func writePEFT(to directory: URL, config: PEFTAdapterConfig, role: AdapterRole) throws {
        try PEFTAdapter.write(to: directory, modules: factors(), config: config, role: role)
    }
}
