/// A decoder-only transformer as this package runs it: its sizes, and the choices that differ
/// between families (`BlockSpec`, and each layer's `LayerAttention`). An `Architecture` makes
/// one from a Hugging Face `config.json` or from GGUF metadata, refusing by name what it does not
/// implement, and writes it back as the `config.json` transformers reads.
///
/// Shape letters used across the model: C hidden, F MLP width, L layers, H query heads, KV
/// key/value heads, D head dim, V vocabulary.
public struct ModelConfig: Sendable, Equatable {
    /// The registry name of the family (`Architecture.name`): "llama", "gemma3".
    public var architecture: String
    /// The Hugging Face `model_type` as read (e.g. "gemma3_text"), or the family's own for GGUF.
    public var modelType: String
    public var hiddenSize: Int               // C
    public var intermediateSize: Int         // F
    public var numHiddenLayers: Int          // L
    public var numAttentionHeads: Int        // H
    public var numKeyValueHeads: Int         // KV
    public var headDim: Int                  // D
    public var vocabSize: Int                // V
    public var maxPositionEmbeddings: Int
    public var rmsNormEps: Double
    public var tieWordEmbeddings: Bool
    public var bosTokenId: Int?
    public var eosTokenId: Int?
    public var padTokenId: Int?
    /// transformers' name of the weights' dtype (`torch_dtype` / `dtype`): "float32", "bfloat16", …
    public var torchDtype: String
    /// What the decoder block computes beyond the Llama baseline.
    public var block: BlockSpec
    /// Layer i's attention window and rotary embedding; `layers.count == numHiddenLayers`.
    public var layers: [LayerAttention]

    public init(
        architecture: String, modelType: String, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
        numAttentionHeads: Int, numKeyValueHeads: Int, headDim: Int, vocabSize: Int, maxPositionEmbeddings: Int,
        rmsNormEps: Double, tieWordEmbeddings: Bool, bosTokenId: Int? = nil, eosTokenId: Int? = nil,
        padTokenId: Int? = nil, torchDtype: String = "float32", block: BlockSpec, layers: [LayerAttention]
    ) {
        self.architecture = architecture
        self.modelType = modelType
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.headDim = headDim
        self.vocabSize = vocabSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.rmsNormEps = rmsNormEps
        self.tieWordEmbeddings = tieWordEmbeddings
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
        self.padTokenId = padTokenId
        self.torchDtype = torchDtype
        self.block = block
        self.layers = layers
    }

    /// H·D, the width of queries and of attention's output.
    public var queryWidth: Int { numAttentionHeads * headDim }
    /// KV·D, the width of keys and of values.
    public var keyValueWidth: Int { numKeyValueHeads * headDim }

    /// The layer's linear modules, in slot order.
    public var projections: [Projection] { block.layout.all }
}

/// What a family's decoder block computes beyond Llama's
/// `x += o(attention(rope(q(n₁(x))), rope(k(n₁(x))), v(n₁(x))))`, `x += down(act(gate(n₂(x)))·up(n₂(x)))`.
public struct BlockSpec: Sendable, Equatable {
    /// RMSNorm scales by `weight + normWeightOffset`: 0 for Llama, 1 for Gemma's `(1 + weight)`.
    public var normWeightOffset: Float
    /// Gemma 2/3: each sub-layer's output is normed again before the residual add
    /// (`post_attention_layernorm`, `post_feedforward_layernorm`).
    public var sandwichNorms: Bool
    /// Gemma 3, Qwen3: per-head RMSNorm (over D) of queries and keys before the rotary embedding.
    public var queryKeyNorm: Bool
    /// The gated MLP's activation.
    public var activation: GatedActivation
    /// The factor of q·kᵀ: 1/√D, or Gemma's `query_pre_attn_scalar^(−1/2)`.
    public var attentionScale: Double
    /// Gemma's `query_pre_attn_scalar` as configured (written back to config.json); nil elsewhere.
    public var queryPreAttnScalar: Double?
    /// Gemma: the looked-up embedding rows are multiplied by √C (rounded to float32 as
    /// transformers does); nil: no scaling.
    public var embeddingScale: Float?
    /// The layer's linear modules: separate or fused (Phi-3), a dense MLP or experts (Mixtral).
    public var layout: ProjectionLayout
    /// The modules that add a bias vector after their product (Qwen2: q, k, v).
    public var biases: Set<Projection>

    public init(normWeightOffset: Float = 0, sandwichNorms: Bool = false, queryKeyNorm: Bool = false,
                activation: GatedActivation = .silu, attentionScale: Double, queryPreAttnScalar: Double? = nil,
                embeddingScale: Float? = nil, layout: ProjectionLayout = .standard, biases: Set<Projection> = []) {
        self.normWeightOffset = normWeightOffset
        self.sandwichNorms = sandwichNorms
        self.queryKeyNorm = queryKeyNorm
        self.activation = activation
        self.attentionScale = attentionScale
        self.queryPreAttnScalar = queryPreAttnScalar
        self.embeddingScale = embeddingScale
        self.layout = layout
        self.biases = biases
    }

    /// Llama's block with head dimension D.
    public static func llama(headDim: Int) -> BlockSpec {
        BlockSpec(attentionScale: 1 / Double(headDim).squareRoot())
    }
}

/// The activation of a gated MLP, `down(act(gate(x)) · up(x))`, by its transformers name.
public enum GatedActivation: String, Sendable, Equatable, CaseIterable {
    /// SwiGLU: `silu(g) = g·σ(g)` (Llama, Qwen, Mistral).
    case silu
    /// GeGLU with the tanh approximation of GELU (Gemma's `gelu_pytorch_tanh`).
    case geluTanh = "gelu_pytorch_tanh"
}

/// One layer's attention: how far back it looks and how it rotates positions.
public struct LayerAttention: Sendable, Hashable {
    /// A query at position p sees keys at positions p − W < j ≤ p (W keys, its own included), as
    /// transformers' and llama.cpp's sliding windows do; nil: every earlier position.
    public var slidingWindow: Int?
    public var rope: RopeSpec

    public init(slidingWindow: Int? = nil, rope: RopeSpec) {
        self.slidingWindow = slidingWindow
        self.rope = rope
    }
}

/// A rotary embedding: base θ, rotating all D dimensions of a head in the half-split layout, its
/// frequencies rescaled as `scaling` says.
public struct RopeSpec: Sendable, Hashable {
    public var theta: Double
    public var scaling: RopeScaling?

    public init(theta: Double, scaling: RopeScaling? = nil) {
        self.theta = theta
        self.scaling = scaling
    }
}

/// How a rotary embedding's inverse frequencies θ^(−2i/D) are rescaled, as transformers'
/// `ROPE_INIT_FUNCTIONS` (and llama.cpp's `rope_freqs.weight`) rescale them.
public enum RopeScaling: Sendable, Hashable {
    /// `linear`: every frequency divided by `factor` (position interpolation).
    case linear(factor: Double)
    /// `dynamic` (NTK): the base grows with the sequence once it exceeds `maxPositions`
    /// (`max_position_embeddings`); within those positions, which is all this package runs, the
    /// frequencies are the unscaled ones.
    case dynamic(factor: Double, maxPositions: Int)
    /// `llama3` (Llama 3.1 / 3.2): low frequencies divided by `factor`, high ones kept, those in
    /// between interpolated, by wavelength against `originalMaxPositions` / the two factors.
    case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalMaxPositions: Int)
    /// llama.cpp's `rope_freqs.weight`: frequency i divided by `divisors[i]` (D/2 of them).
    case divisors([Float])
}
