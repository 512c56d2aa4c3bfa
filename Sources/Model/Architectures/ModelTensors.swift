/// The Hugging Face tensors a model of a given config has, with their row-major shapes: what
/// loading reads and checks, whatever file the weights come from.
public enum ModelTensors {
    /// `model.layers.<i>.` + `suffix`.
    public static func layerName(_ layer: Int, _ suffix: String) -> String { "model.layers.\(layer).\(suffix)" }

    /// Every tensor of `config`'s model, in the order transformers lists them: the embedding, each
    /// layer's norms and projections, the final norm, and the head unless tied.
    public static func expected(_ config: ModelConfig) -> [(name: String, shape: [Int])] {
        let family = ArchitectureRegistry.architecture(of: config)
        let (C, D) = (config.hiddenSize, config.headDim)
        var all: [(String, [Int])] = [("model.embed_tokens.weight", [config.vocabSize, C])]
        for i in 0..<config.numHiddenLayers {
            for norm in LayerNorm.allCases where norm.isPresent(in: config.block) {
                guard let name = family.normName(norm) else { continue }
                all.append((layerName(i, name + ".weight"), [norm.isPerHead ? D : C]))
            }
            for p in Projection.allCases {
                all.append((layerName(i, p.moduleName + ".weight"), p.shape(config)))
            }
        }
        all.append(("model.norm.weight", [C]))
        if !config.tieWordEmbeddings { all.append(("lm_head.weight", [config.vocabSize, C])) }
        return all
    }
}

extension Projection {
    /// (out, in) of this projection's weight in `config`'s model.
    public func shape(_ c: ModelConfig) -> [Int] {
        switch self {
        case .q: [c.queryWidth, c.hiddenSize]
        case .k, .v: [c.keyValueWidth, c.hiddenSize]
        case .o: [c.hiddenSize, c.queryWidth]
        case .gate, .up: [c.intermediateSize, c.hiddenSize]
        case .down: [c.hiddenSize, c.intermediateSize]
        }
    }
}
