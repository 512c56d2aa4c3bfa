import Foundation
import Formats
import Tokenizer

/// A model family: how its files describe it, how they name its tensors, which of its linear
/// modules adapters go on, and what its decoder block computes. One conforming type per family,
/// in its own folder under `Architectures/`, listed once in `ArchitectureRegistry.all`.
///
/// The block's forward and backward are written once (`DecoderLayer*.swift`) from the shared
/// kernels (`Kernels/`); a family chooses what its block contains through the `BlockSpec` and the
/// per-layer `LayerAttention` of the config it decodes, and names the block's norms with `normName`.
public protocol Architecture: Sendable {
    /// The registry name, used in messages: "llama", "gemma3".
    static var name: String { get }
    /// Hugging Face `model_type` values of this family.
    static var modelTypes: [String] { get }
    /// GGUF `general.architecture` values (llama.cpp's names) of this family.
    static var ggufArchitectures: [String] { get }
    /// Whether a GGUF file of one of `ggufArchitectures` is this family's (llama.cpp writes
    /// Mixtral as `llama` with experts).
    static func claims(gguf file: GGUFFile) -> Bool
    /// The `general.architecture` llama.cpp gives this family's models (and so their LoRA
    /// adapters): the first of `ggufArchitectures`, or another family's (Mistral: `llama`); nil
    /// when llama.cpp has none.
    static var llamaCppArchitecture: String? { get }

    /// `config.json` → config. Refuses, by name, every feature the block does not implement.
    static func config(huggingFace data: Data, path: String) throws -> ModelConfig
    /// GGUF metadata → config, with the same refusals.
    static func config(gguf file: GGUFFile) throws -> ModelConfig
    /// The `config.json` transformers reads for `config` (its `torchDtype` included).
    static func huggingFaceConfigJSON(_ config: ModelConfig) throws -> Data

    /// GGUF ↔ Hugging Face tensor names.
    static var tensorNames: TensorNameTable { get }
    /// GGUF tensors of layer N (`blk.N.<gguf>`) that stack one matrix of every expert, (E, out,
    /// in) row-major: Hugging Face's `moduleName(.expert(e, matrix))` of layer N is slice e.
    static var ggufExpertStacks: [(gguf: String, matrix: ExpertMatrix)] { get }
    /// Hugging Face name of a linear module inside `model.layers.N.` (without `.weight`), for
    /// the modules of this family's `ProjectionLayout`: what PEFT calls it in module paths.
    static func moduleName(_ p: Projection) -> String
    /// Hugging Face name of each norm of a decoder layer that this family has (within
    /// `model.layers.N.`, without `.weight`); nil for norms it lacks (default: Llama's two, and
    /// Qwen3's / Gemma's per-head q/k norms `self_attn.q_norm`, `self_attn.k_norm`).
    static func normName(_ norm: LayerNorm) -> String?
    /// Heads whose row pairs llama.cpp's converter interleaves in the GGUF copy of the tensor
    /// Hugging Face calls `name` (q: H, k: KV for Llama); nil when the rows are stored as they are.
    static func ggufPermutedHeads(huggingFace name: String, config: ModelConfig) -> Int?
    /// What llama.cpp's converter adds to every value of the tensor (Gemma stores norms as 1 + w).
    static func ggufValueOffset(huggingFace name: String) -> Float

    /// The chat template to use when the model's files ship none.
    static var defaultChatTemplate: ChatTemplate? { get }
}

extension Architecture {
    public static func claims(gguf file: GGUFFile) -> Bool { true }

    public static var llamaCppArchitecture: String? { ggufArchitectures.first }

    public static var ggufExpertStacks: [(gguf: String, matrix: ExpertMatrix)] { [] }

    public static func normName(_ norm: LayerNorm) -> String? {
        switch norm {
        case .attentionInput: "input_layernorm"
        case .mlpInput: "post_attention_layernorm"
        case .query: "self_attn.q_norm"
        case .key: "self_attn.k_norm"
        case .attentionOutput, .mlpOutput: nil
        }
    }

    /// Llama's names for the seven modules (`self_attn.q_proj`, …, `mlp.down_proj`).
    public static func moduleName(_ p: Projection) -> String { standardModuleName(p) }

    /// Llama's name of one of the seven modules, which most families share.
    public static func standardModuleName(_ p: Projection) -> String {
        switch p {
        case .q: "self_attn.q_proj"
        case .k: "self_attn.k_proj"
        case .v: "self_attn.v_proj"
        case .o: "self_attn.o_proj"
        case .gate: "mlp.gate_proj"
        case .up: "mlp.up_proj"
        case .down: "mlp.down_proj"
        case .qkv, .gateUp, .router, .expert: preconditionFailure("\(p) is not a module of \(name)")
        }
    }

    public static func ggufPermutedHeads(huggingFace name: String, config: ModelConfig) -> Int? { nil }
    public static func ggufValueOffset(huggingFace name: String) -> Float { 0 }
    public static var defaultChatTemplate: ChatTemplate? { nil }
}

/// The norms a decoder layer may have, by role.
public enum LayerNorm: Int, CaseIterable, Sendable {
    /// Before attention (every family: `input_layernorm`).
    case attentionInput
    /// On attention's output, before the residual add (Gemma's sandwich norm).
    case attentionOutput
    /// Before the MLP (Llama's `post_attention_layernorm`, Gemma's `pre_feedforward_layernorm`).
    case mlpInput
    /// On the MLP's output, before the residual add (Gemma's sandwich norm).
    case mlpOutput
    /// Per head, on queries before the rotary embedding (width D).
    case query
    /// Per head, on keys before the rotary embedding (width D).
    case key

    /// Whether the norm spans a head (D) rather than the hidden state (C).
    public var isPerHead: Bool { self == .query || self == .key }

    /// Whether `spec`'s block has this norm.
    public func isPresent(in spec: BlockSpec) -> Bool {
        switch self {
        case .attentionInput, .mlpInput: true
        case .attentionOutput, .mlpOutput: spec.sandwichNorms
        case .query, .key: spec.queryKeyNorm
        }
    }
}

/// A family's GGUF ↔ Hugging Face tensor names: tensors outside the layers (`token_embd` ↔
/// `model.embed_tokens`), and those of layer N (`blk.N.<gguf>` ↔ `model.layers.N.<huggingFace>`).
/// Names are listed without their `.weight` / `.bias` suffix, which carries over unchanged.
public struct TensorNameTable: Sendable {
    public var global: [(gguf: String, huggingFace: String)]
    public var layer: [(gguf: String, huggingFace: String)]

    public init(global: [(gguf: String, huggingFace: String)], layer: [(gguf: String, huggingFace: String)]) {
        self.global = global
        self.layer = layer
    }

    /// The names convert_hf_to_gguf.py / gguf-py's `tensor_mapping.py` give Llama's tensors, which
    /// the Llama-like families share, with a family's own Hugging Face names for some of them
    /// (`renaming`, by GGUF name) and its `extra` layer tensors.
    public static func standard(renaming: [String: String] = [:], extra: [(gguf: String, huggingFace: String)] = []) -> TensorNameTable {
        let llama: [(gguf: String, huggingFace: String)] = [
            ("attn_norm", "input_layernorm"),
            ("attn_q", "self_attn.q_proj"),
            ("attn_k", "self_attn.k_proj"),
            ("attn_v", "self_attn.v_proj"),
            ("attn_output", "self_attn.o_proj"),
            ("ffn_norm", "post_attention_layernorm"),
            ("ffn_gate", "mlp.gate_proj"),
            ("ffn_up", "mlp.up_proj"),
            ("ffn_down", "mlp.down_proj"),
        ]
        return TensorNameTable(
            global: [("token_embd", "model.embed_tokens"), ("output_norm", "model.norm"), ("output", "lm_head")],
            layer: llama.map { ($0.gguf, renaming[$0.gguf] ?? $0.huggingFace) } + extra)
    }

    private static let layerPrefixGGUF = "blk.", layerPrefixHF = "model.layers."
    private static let suffixes = [".weight", ".bias"]

    /// `blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`; nil for names outside the table.
    public func huggingFaceName(forGGUF name: String) -> String? {
        Self.translate(name, from: Self.layerPrefixGGUF, to: Self.layerPrefixHF,
                       global: global.map { ($0.gguf, $0.huggingFace) }, layer: layer.map { ($0.gguf, $0.huggingFace) })
    }

    /// `model.layers.3.self_attn.q_proj.weight` → `blk.3.attn_q.weight`; nil for names outside the table.
    public func ggufName(forHuggingFace name: String) -> String? {
        Self.translate(name, from: Self.layerPrefixHF, to: Self.layerPrefixGGUF,
                       global: global.map { ($0.huggingFace, $0.gguf) }, layer: layer.map { ($0.huggingFace, $0.gguf) })
    }

    private static func translate(_ name: String, from: String, to: String, global: [(String, String)],
                                  layer: [(String, String)]) -> String? {
        guard let suffix = suffixes.first(where: { name.hasSuffix($0) }) else { return nil }
        let stem = String(name.dropLast(suffix.count))
        if let match = global.first(where: { $0.0 == stem }) { return match.1 + suffix }
        guard stem.hasPrefix(from) else { return nil }
        let rest = stem.dropFirst(from.count)
        guard let dot = rest.firstIndex(of: ".") else { return nil }
        let number = rest[..<dot], module = String(rest[rest.index(after: dot)...])
        // Canonical decimal only ("3", not "03" or "+3"), so the mapping is one-to-one.
        guard let index = Int(number), index >= 0, String(index) == number,
              let match = layer.first(where: { $0.0 == module }) else { return nil }
        return "\(to)\(index).\(match.1)\(suffix)"
    }
}
