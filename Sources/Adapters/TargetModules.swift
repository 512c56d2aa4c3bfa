import Model

/// Which weights get an adapter, decided from tensor names as PEFT decides from module names.
public enum TargetModules {
    /// The value that selects every linear layer except the output head and embeddings.
    public static let allLinear = "all-linear"

    /// The module path of a weight tensor (`model.layers.0.self_attn.q_proj.weight` →
    /// `model.layers.0.self_attn.q_proj`), or nil for anything that is not a 2-D `.weight`.
    public static func modulePath(ofTensor name: String, shape: [Int]) -> String? {
        guard shape.count == 2, name.hasSuffix(".weight") else { return nil }
        return String(name.dropLast(".weight".count))
    }

    /// PEFT's rule for a list of targets: the module name equals a target or ends with `.target`.
    /// `all-linear` matches every 2-D weight that is not an embedding or the output head.
    public static func matches(module: String, targets: [String]) -> Bool {
        for t in targets {
            if t == allLinear {
                let last = module.split(separator: ".").last.map(String.init) ?? module
                let isEmbedding = module.lowercased().contains("embed") || ["wte", "wpe"].contains(last)
                let isHead = last == "lm_head" || last == "output" || last == "classifier"
                if !isEmbedding && !isHead { return true }
            } else if module == t || module.hasSuffix("." + t) {
                return true
            }
        }
        return false
    }

    /// What PEFT writes as `target_modules` for `targets` that matched `modules`: `all-linear`
    /// expanded to the matched modules' last name components (as PEFT expands it), any other
    /// target as given — a full module path such as `model.layers.0.self_attn.q_proj` keeps its
    /// layer, so that PEFT adapts exactly the modules this tool did.
    public static func peftTargets(_ targets: [String], matched modules: [String]) -> [String] {
        var seen = Set<String>(), out: [String] = []
        for t in targets {
            let expanded = t == allLinear ? suffixes(of: modules.filter { matches(module: $0, targets: [allLinear]) }) : [t]
            for name in expanded where seen.insert(name).inserted { out.append(name) }
        }
        return out
    }

    /// The last path component of each matched module, deduplicated in first-seen order: what
    /// PEFT writes as `target_modules` after expanding `all-linear`.
    public static func suffixes(of modules: [String]) -> [String] {
        var seen = Set<String>(), out: [String] = []
        for m in modules {
            let last = m.split(separator: ".").last.map(String.init) ?? m
            if seen.insert(last).inserted { out.append(last) }
        }
        return out
    }

    /// The projections of a model of `config` that `targets` select, by their full module paths
    /// (`model.layers.3.self_attn.q_proj`), layer by layer in slot order. A mixture of experts'
    /// router stays frozen: `all-linear` passes it over, and naming it is refused.
    public static func projections(_ targets: [String], config: ModelConfig) throws -> [(layer: Int, projection: Projection)] {
        var out: [(layer: Int, projection: Projection)] = []
        for layer in 0..<config.numHiddenLayers {
            for p in config.projections {
                let path = config.modulePath(p, layer: layer)
                if p.isAdapterTarget {
                    if matches(module: path, targets: targets) { out.append((layer, p)) }
                } else if matches(module: path, targets: targets.filter { $0 != allLinear }) {
                    let experts = ExpertMatrix.allCases.map { suffixes(of: [config.moduleName(.expert(0, $0))])[0] }
                    throw AdapterError.frozenModule(module: path, reason: "the router of a mixture of experts stays frozen; "
                        + "its experts' \(experts.joined(separator: ", ")) are the targets")
                }
            }
        }
        return out
    }

    /// The module paths of `config`'s model that are never adapter targets (a mixture's routers).
    public static func frozenModules(_ config: ModelConfig) -> Set<String> {
        Set((0..<config.numHiddenLayers).flatMap { layer in
            config.projections.filter { !$0.isAdapterTarget }.map { config.modulePath($0, layer: layer) }
        })
    }
}
