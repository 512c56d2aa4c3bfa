/// The Hugging Face tensors a model of a given config has, with their row-major shapes: what
/// loading reads and checks, whatever file the weights come from.
public enum ModelTensors {
    /// `model.layers.<i>.` + `suffix`.
    public static func layerName(_ layer: Int, _ suffix: String) -> String { "model.layers.\(layer).\(suffix)" }

    /// Every tensor of `config`'s model, in the order transformers lists them: the embedding, each
    /// layer's norms and projections (each weight followed by its bias, if it has one), the final
    /// norm, and the head unless tied.
    public static func expected(_ config: ModelConfig) -> [(name: String, shape: [Int])] {
        let family = ArchitectureRegistry.architecture(of: config)
        let (C, D) = (config.hiddenSize, config.headDim)
        var all: [(String, [Int])] = [("model.embed_tokens.weight", [config.vocabSize, C])]
        for i in 0..<config.numHiddenLayers {
            for norm in LayerNorm.allCases where norm.isPresent(in: config.block) {
                guard let name = family.normName(norm) else { continue }
                all.append((layerName(i, name + ".weight"), [norm.isPerHead ? D : C]))
            }
            for p in config.projections {
                let shape = p.shape(config), module = layerName(i, family.moduleName(p))
                all.append((module + ".weight", shape))
                if config.block.biases.contains(p) { all.append((module + ".bias", [shape[0]])) }
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
        let (C, F) = (c.hiddenSize, c.intermediateSize)
        switch self {
        case .q: return [c.queryWidth, C]
        case .k, .v: return [c.keyValueWidth, C]
        case .qkv: return [c.queryWidth + 2 * c.keyValueWidth, C]
        case .o: return [C, c.queryWidth]
        case .gate, .up: return [F, C]
        case .gateUp: return [2 * F, C]
        case .down: return [C, F]
        case .router: return [c.block.layout.expertCount, C]
        case let .expert(_, m): return m == .down ? [C, F] : [F, C]
        }
    }
}

extension ModelConfig {
    /// What `config.json`'s family calls `p` inside a layer (`self_attn.q_proj`).
    public func moduleName(_ p: Projection) -> String {
        ArchitectureRegistry.architecture(of: self).moduleName(p)
    }

    /// `model.layers.<layer>.<module>`: the PEFT module path of `p` in layer `layer`.
    public func modulePath(_ p: Projection, layer: Int) -> String {
        ModelTensors.layerName(layer, moduleName(p))
    }

    /// Parses a module path `…layers.<i>.<module>` (PEFT's, with any prefix) into the layer and
    /// the projection this family calls `<module>`; nil for anything else.
    public func projection(modulePath: String) -> (layer: Int, projection: Projection)? {
        guard let range = modulePath.range(of: "layers.") else { return nil }
        let rest = modulePath[range.upperBound...]
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]), layer >= 0 else { return nil }
        let module = String(rest[rest.index(after: dot)...])
        let family = ArchitectureRegistry.architecture(of: self)
        guard let p = projections.first(where: { family.moduleName($0) == module }) else { return nil }
        return (layer, p)
    }
}
