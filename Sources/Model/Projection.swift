/// A linear module of a decoder layer, by its role in the block. Which ones a layer has is its
/// family's `ProjectionLayout`; what the checkpoint calls each is the family's
/// (`Architecture.moduleName`).
public enum Projection: Hashable, Sendable {
    case q, k, v, o, gate, up, down
    /// Phi-3's fused query/key/value projection: its rows are q's (H·D), then k's, then v's (KV·D each).
    case qkv
    /// Phi-3's fused MLP input: its rows are gate's (F), then up's (F).
    case gateUp
    /// A mixture of experts' router (E, C): its logits choose each token's experts. Never an adapter target.
    case router
    /// One matrix of expert `index`'s gated MLP.
    case expert(Int, ExpertMatrix)

    /// Whether adapters may go on this module (every one but a router).
    public var isAdapterTarget: Bool { self != .router }

    /// Whether the module sees every row of the layer (not an expert, which sees its routed rows).
    public var isDense: Bool {
        if case .expert = self { return false }
        return true
    }
}

/// The matrices of one expert's gated MLP, `down(act(gate(x)) · up(x))`, in Mixtral's order
/// (`w1`, `w2`, `w3`).
public enum ExpertMatrix: Int, Hashable, Sendable, CaseIterable {
    case gate, down, up
}

/// The linear modules of a family's decoder layer, and where each sits in the per-layer arrays
/// (`LayerWeights.projections`, `ModelAdapters.layers[i]`, a tape's x·Aᵀ buffers): attention's
/// (q, k, v, o or Phi-3's fused qkv, o), then the MLP's (gate, up, down; fused gate_up, down; or
/// a router and each expert's gate, down, up).
public struct ProjectionLayout: Sendable, Hashable {
    public enum MLP: Sendable, Hashable {
        /// Separate gate, up and down.
        case gated
        /// gate_up (rows gate then up) and down.
        case fusedGated
        /// A sparse mixture: `count` experts with their own gate, down and up, `topK` of them per token.
        case experts(count: Int, topK: Int)
    }

    /// q, k and v fused into one `qkv` (Phi-3).
    public var fusedAttention: Bool
    public var mlp: MLP

    public init(fusedAttention: Bool = false, mlp: MLP = .gated) {
        self.fusedAttention = fusedAttention
        self.mlp = mlp
    }

    /// Llama's seven separate projections.
    public static let standard = ProjectionLayout()

    private var attentionCount: Int { fusedAttention ? 2 : 4 }

    /// Every module of a layer, in slot order.
    public var all: [Projection] {
        var out: [Projection] = fusedAttention ? [.qkv, .o] : [.q, .k, .v, .o]
        switch mlp {
        case .gated: out += [.gate, .up, .down]
        case .fusedGated: out += [.gateUp, .down]
        case let .experts(count, _):
            out.append(.router)
            for e in 0..<count { out += ExpertMatrix.allCases.map { .expert(e, $0) } }
        }
        return out
    }

    /// Modules per layer.
    public var count: Int {
        switch mlp {
        case .gated: attentionCount + 3
        case .fusedGated: attentionCount + 2
        case let .experts(count, _): attentionCount + 1 + 3 * count
        }
    }

    /// The number of experts, 0 without a mixture.
    public var expertCount: Int { expertShape.experts }

    /// (E experts, K per token), (0, 0) without a mixture.
    public var expertShape: (experts: Int, topK: Int) {
        if case let .experts(count, topK) = mlp { return (count, topK) }
        return (0, 0)
    }

    /// The index of `p` in `all`, or nil when the layer has no such module.
    public func slot(_ p: Projection) -> Int? {
        let a = attentionCount
        switch (p, mlp) {
        case (.q, _): return fusedAttention ? nil : 0
        case (.k, _): return fusedAttention ? nil : 1
        case (.v, _): return fusedAttention ? nil : 2
        case (.qkv, _): return fusedAttention ? 0 : nil
        case (.o, _): return a - 1
        case (.gate, .gated): return a
        case (.up, .gated): return a + 1
        case (.down, .gated): return a + 2
        case (.gateUp, .fusedGated): return a
        case (.down, .fusedGated): return a + 1
        case (.router, .experts): return a
        case let (.expert(e, m), .experts(count, _)): return e >= 0 && e < count ? a + 1 + 3 * e + m.rawValue : nil
        default: return nil
        }
    }

    /// The index of `p`, which the layer must have.
    func index(_ p: Projection) -> Int {
        guard let i = slot(p) else { preconditionFailure("\(p) is not a module of a \(self) layer") }
        return i
    }
}
