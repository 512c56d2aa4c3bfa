import Foundation
import Formats
import LinearAlgebra
import Model
import Tokenizer

/// Full fine-tuning: every weight of the model trainable, held once, in one flat
/// `ParameterStore` (values, gradients and AdamW moments in the same layout), under its Hugging
/// Face name. The model reads its weights from the store through `buffers`; the tensors of the
/// `ModelWeights` they were copied from are emptied, so no second copy exists.
///
/// Registered in order: `model.embed_tokens.weight` (V, C); per layer the attention-input norm
/// (and q/k norms), the projections (out, in) in slot order, each followed by its bias if it has
/// one, the other norms; `model.norm.weight` (C);
/// `lm_head.weight` (V, C) only when the head is untied. A tied head has no tensor of its
/// own: the embedding's gradient receives the lookup's and the head's.
public final class TrainableWeights: @unchecked Sendable {
    public let store: ParameterStore
    public let config: ModelConfig
    /// Pointers into `store` for `DecoderModel(weights:buffers:)`; valid while this object lives.
    public let buffers: ModelWeightBuffers

    /// Moves every tensor of `weights` into a new store (the tensors of `weights` are left empty;
    /// its config is kept).
    public init(moving weights: inout ModelWeights) throws {
        let c = weights.config
        let family = ArchitectureRegistry.architecture(of: c)
        // Per layer: the attention-input and q/k norms, the projections (and biases), then the other norms
        // (Llama: input_layernorm, projections, post_attention_layernorm, as before).
        let normsFirst: [LayerNorm] = [.attentionInput, .query, .key], normsAfter: [LayerNorm] = [.attentionOutput, .mlpInput, .mlpOutput]
        let store = ParameterStore()
        var total = ParameterStore.paddedCount(weights.embedding.count) + ParameterStore.paddedCount(weights.finalNorm.count)
            + ParameterStore.paddedCount(weights.lmHead?.count ?? 0)
        for layer in weights.layers {
            total += layer.norms.reduce(0) { $0 + ParameterStore.paddedCount($1.count) }
            total += layer.projections.reduce(0) { $0 + ParameterStore.paddedCount($1.rows * $1.cols) }
            total += layer.biases.reduce(0) { $0 + ParameterStore.paddedCount($1.count) }
        }
        store.reserveCapacity(total)   // one allocation of the exact size: no doubling, no move
        var entries: [(view: ParameterView, rows: Int, cols: Int)] = []
        func register(_ name: String, _ rows: Int, _ cols: Int, _ shape: [Int]) throws -> Int {
            entries.append((try store.register(name: name, shape: shape), rows, cols))
            return entries.count - 1
        }
        let embedding = try register("model.embed_tokens.weight", c.vocabSize, c.hiddenSize, [c.vocabSize, c.hiddenSize])
        var layerSlots: [(norms: [Int?], projections: [Int], biases: [Int?])] = []
        for (i, layer) in weights.layers.enumerated() {
            var norms = [Int?](repeating: nil, count: LayerNorm.allCases.count)
            func registerNorms(_ which: [LayerNorm]) throws {
                for n in which where !layer[n].isEmpty {
                    guard let name = family.normName(n) else { continue }
                    norms[n.rawValue] = try register(ModelTensors.layerName(i, name + ".weight"), 1, layer[n].count, [layer[n].count])
                }
            }
            try registerNorms(normsFirst)
            var projections: [Int] = [], biases: [Int?] = []
            for (slot, proj) in c.projections.enumerated() {
                let w = layer.projections[slot], module = ModelTensors.layerName(i, family.moduleName(proj))
                projections.append(try register(module + ".weight", w.rows, w.cols, [w.rows, w.cols]))
                let b = layer.biases[slot]
                biases.append(b.isEmpty ? nil : try register(module + ".bias", 1, b.count, [b.count]))
            }
            try registerNorms(normsAfter)
            layerSlots.append((norms, projections, biases))
        }
        let norm = try register("model.norm.weight", 1, c.hiddenSize, [c.hiddenSize])
        let head = try weights.lmHead.map { try register("lm_head.weight", $0.rows, $0.cols, [$0.rows, $0.cols]) }

        // Copy in (all registrations done: the buffers no longer move), releasing each source.
        func fill(_ slot: Int, _ values: [Float]) {
            precondition(values.count == entries[slot].view.count, "\(entries[slot].view.name): size mismatch")
            _ = store.parameters(of: entries[slot].view).update(fromContentsOf: values)
        }
        fill(embedding, weights.embedding.storage)
        weights.embedding = Matrix(rows: 0, cols: 0)
        for (i, slots) in layerSlots.enumerated() {
            for (n, slot) in zip(LayerNorm.allCases, slots.norms) {
                if let slot { fill(slot, weights.layers[i][n]) }
                weights.layers[i][n] = []
            }
            for (p, slot) in slots.projections.enumerated() {
                fill(slot, weights.layers[i].projections[p].dequantized().storage)   // float32 weights: the matrix itself
                weights.layers[i].projections[p] = Matrix(rows: 0, cols: 0)
                if let b = slots.biases[p] { fill(b, weights.layers[i].biases[p]) }
                weights.layers[i].biases[p] = []
            }
        }
        fill(norm, weights.finalNorm)
        weights.finalNorm = []
        if let head, let m = weights.lmHead { fill(head, m.storage); weights.lmHead = Matrix(rows: 0, cols: 0) }
        store.zeroGradients()

        func buffer(_ slot: Int) -> WeightBuffer {
            let e = entries[slot]
            return WeightBuffer(values: store.parameters + e.view.offset, gradient: store.gradients + e.view.offset, rows: e.rows, cols: e.cols)
        }
        buffers = ModelWeightBuffers(
            embedding: buffer(embedding), lmHead: head.map(buffer), finalNorm: buffer(norm),
            layers: layerSlots.map {
                .init(norms: $0.norms.map { $0.map(buffer) }, projections: $0.projections.map(buffer), biases: $0.biases.map { $0.map(buffer) })
            })
        self.store = store
        self.config = c
    }

    /// Writes the current weights as a Hugging Face model directory (float32 safetensors, config,
    /// tokenizer), loadable by this package and by transformers.
    @discardableResult
    public func writeModel(to directory: URL, tokenizer: BPETokenizer) throws -> HuggingFaceExport.Summary {
        let tensors = store.views.map { v in
            HuggingFaceExport.Tensor(name: v.name, shape: v.shape, values: UnsafeBufferPointer(store.parameters(of: v)))
        }
        return try HuggingFaceExport.write(tensors: tensors, config: config, tokenizer: tokenizer, to: directory)
    }
}
