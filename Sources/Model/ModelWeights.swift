import Foundation
import Formats
import LinearAlgebra

/// Where a model's tensors come from, by Hugging Face name (`model.layers.0.self_attn.q_proj.weight`).
public protocol WeightSource {
    var config: ModelConfig { get }
    func has(_ name: String) -> Bool
    /// The tensor in float32, row-major, in Hugging Face layout (GGUF q/k rows un-permuted).
    func tensor(_ name: String) throws -> (shape: [Int], floats: [Float])
    /// The weight as stored in NF4 (bitsandbytes' Linear4bit layout, as `pissa init --quant nf4`
    /// writes a QPiSSA residual), or nil when it is stored as a plain tensor.
    func nf4Tensor(_ name: String) throws -> NF4Matrix?
    /// The weight as stored in ggml blocks that `GGMLBlockMatrix` reads, rows in Hugging Face
    /// order, or nil when it is stored otherwise.
    func blockTensor(_ name: String) throws -> GGMLBlockMatrix?
}

extension WeightSource {
    public func nf4Tensor(_ name: String) throws -> NF4Matrix? { nil }
    public func blockTensor(_ name: String) throws -> GGMLBlockMatrix? { nil }
}

/// Errors of model loading, naming the file and tensor.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingTensor(source: String, name: String)
    case shapeMismatch(source: String, name: String, expected: [Int], found: [Int])
    case unsupportedModel(source: String, problem: String)
    case invalidConfig(path: String, problem: String)

    public var description: String {
        switch self {
        case let .missingTensor(source, name): "\(source): tensor \(name) is missing"
        case let .shapeMismatch(source, name, expected, found):
            "\(source): tensor \(name) has shape \(found), the config implies \(expected)"
        case let .unsupportedModel(source, problem): "\(source): \(problem)"
        case let .invalidConfig(path, problem): "\(path): \(problem)"
        }
    }
}

/// One decoder layer's frozen weights. Linear weights are (out, in), used as `y = x·Wᵀ (+ b)`,
/// held dense (`Matrix`, as loaded) or quantised (`NF4Matrix`, `ModelWeights.quantizeProjections`).
public struct LayerWeights: Sendable {
    /// By `LayerNorm.rawValue`: the norm's weight, (C) or (D) per head; empty for norms the
    /// family's block lacks.
    public var norms: [[Float]]
    /// Which projection each slot holds.
    public let layout: ProjectionLayout
    /// By the layout's slot: q (H·D, C), k, v (KV·D, C), o (C, H·D), gate, up (F, C), down (C, F), …
    public var projections: [any LinearWeight]
    /// By slot: the projection's bias (out), empty when it has none.
    public var biases: [[Float]]

    public init(norms: [[Float]], layout: ProjectionLayout = .standard, projections: [any LinearWeight], biases: [[Float]]? = nil) {
        precondition(projections.count == layout.count, "\(projections.count) projections for a layout of \(layout.count)")
        self.norms = norms
        self.layout = layout
        self.projections = projections
        self.biases = biases ?? Array(repeating: [], count: layout.count)
    }

    public subscript(norm: LayerNorm) -> [Float] {
        get { norms[norm.rawValue] }
        set { norms[norm.rawValue] = newValue }
    }

    /// The frozen weight of a projection the layer has.
    public subscript(projection: Projection) -> any LinearWeight {
        get { projections[layout.index(projection)] }
        set { projections[layout.index(projection)] = newValue }
    }

    /// The bias of a projection, nil when it has none.
    public func bias(_ projection: Projection) -> [Float]? {
        layout.slot(projection).flatMap { biases[$0].isEmpty ? nil : biases[$0] }
    }
}

/// All weights of a decoder-only model (float32 as loaded; embedding, head and norms always).
public struct ModelWeights: Sendable {
    public var config: ModelConfig
    public var embedding: Matrix         // (V, C)
    public var layers: [LayerWeights]
    public var finalNorm: [Float]        // (C)
    /// (V, C); nil when tied to `embedding`.
    public var lmHead: Matrix?
    /// The embedding (V, C) as GGUF blocks, when loaded so (`embedding` is then empty).
    public var blockEmbedding: GGMLBlockMatrix?
    /// The untied head (V, C) as GGUF blocks, when loaded so (`lmHead` is then empty).
    public var blockHead: GGMLBlockMatrix?

    public var outputHead: Matrix { lmHead ?? embedding }

    /// What becomes of a projection's float32 weight as it is read: (layer, projection, its
    /// module path, weight) → the frozen weight kept (its residual, its NF4 codes, …). Errors it
    /// throws stop the load.
    public typealias ProjectionPreparer = (_ layer: Int, _ projection: Projection, _ module: String, _ weight: Matrix) throws -> any LinearWeight

    /// Loads and shape-checks every tensor the config implies (`ModelTensors.expected`); all
    /// missing or mis-shaped tensors are reported together. With `keepBlocks`, weights stored in a
    /// block format that `GGMLBlockMatrix` reads (a GGUF's Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K
    /// projections, embedding and head) stay in it: memory near the file's size, for generation.
    /// Other tensors are dequantised to float32 as always.
    ///
    /// With `prepare`, each projection stored in float32 (or bf16, f16) is handed to it as soon as
    /// it is read, layer by layer in the config's projection order, and what it returns is kept:
    /// the float32 matrix is dropped before the next tensor is read, so a model can be decomposed
    /// and quantised while it loads without ever being whole in float32. Projections stored in
    /// NF4 or kept as blocks are kept as they are.
    public init(source: WeightSource, sourceName: String, keepBlocks: Bool = false, prepare: ProjectionPreparer? = nil) throws {
        let c = source.config
        let family = ArchitectureRegistry.architecture(of: c)
        var problems: [ModelError] = []
        func load(_ name: String, _ shape: [Int]) -> [Float] {
            do {
                guard source.has(name) else { problems.append(.missingTensor(source: sourceName, name: name)); return [] }
                let t = try source.tensor(name)
                guard t.shape == shape else {
                    problems.append(.shapeMismatch(source: sourceName, name: name, expected: shape, found: t.shape)); return []
                }
                return t.floats
            } catch {
                problems.append(.unsupportedModel(source: sourceName, problem: "\(name): \(ErrorText.plain(error))")); return []
            }
        }
        func matrix(_ name: String, _ shape: [Int]) -> Matrix {
            let f = load(name, shape)
            return f.isEmpty ? Matrix(rows: 0, cols: 0) : Matrix(rows: shape[0], cols: shape[1], storage: f)
        }
        /// The tensor as blocks when `keepBlocks` and its type allows, else nil.
        func blocks(_ name: String, _ shape: [Int]) -> GGMLBlockMatrix? {
            guard keepBlocks, source.has(name) else { return nil }
            do {
                guard let b = try source.blockTensor(name) else { return nil }
                guard b.shape == shape else {
                    problems.append(.shapeMismatch(source: sourceName, name: name, expected: shape, found: b.shape))
                    return nil
                }
                return b
            } catch {
                problems.append(.unsupportedModel(source: sourceName, problem: "\(name): \(ErrorText.plain(error))")); return nil
            }
        }
        /// A projection: NF4 or GGUF blocks when stored so (kept quantised), else float32 (`dense`).
        func projection(_ name: String, _ shape: [Int]) -> (weight: any LinearWeight, dense: Bool) {
            if let b = blocks(name, shape) { return (b, false) }
            do {
                if let q = try source.nf4Tensor(name) {
                    guard q.shape == shape else {
                        problems.append(.shapeMismatch(source: sourceName, name: name, expected: shape, found: q.shape))
                        return (Matrix(rows: 0, cols: 0), false)
                    }
                    return (q, false)
                }
            } catch {
                problems.append(.unsupportedModel(source: sourceName, problem: "\(name): \(ErrorText.plain(error))"))
                return (Matrix(rows: 0, cols: 0), false)
            }
            let m = matrix(name, shape)
            return (m, m.rows > 0 || shape[0] == 0)
        }
        config = c
        blockEmbedding = blocks("model.embed_tokens.weight", [c.vocabSize, c.hiddenSize])
        embedding = blockEmbedding == nil ? matrix("model.embed_tokens.weight", [c.vocabSize, c.hiddenSize]) : Matrix(rows: 0, cols: 0)
        layers = try (0..<c.numHiddenLayers).map { i in
            let norms = LayerNorm.allCases.map { norm -> [Float] in
                guard norm.isPresent(in: c.block), let name = family.normName(norm) else { return [] }
                return load(ModelTensors.layerName(i, name + ".weight"), [norm.isPerHead ? c.headDim : c.hiddenSize])
            }
            let modules = c.projections.map { ModelTensors.layerName(i, family.moduleName($0)) }
            let projections = try zip(c.projections, modules).map { p, m -> any LinearWeight in
                let (w, dense) = projection(m + ".weight", p.shape(c))
                guard let prepare, dense, problems.isEmpty, let matrix = w as? Matrix else { return w }
                return try prepare(i, p, m, matrix)
            }
            let biases = zip(c.projections, modules).map { p, m in
                c.block.biases.contains(p) ? load(m + ".bias", [p.shape(c)[0]]) : []
            }
            return LayerWeights(norms: norms, layout: c.block.layout, projections: projections, biases: biases)
        }
        finalNorm = load("model.norm.weight", [c.hiddenSize])
        if c.tieWordEmbeddings && !source.has("lm_head.weight") {
            lmHead = nil
        } else {
            blockHead = blocks("lm_head.weight", [c.vocabSize, c.hiddenSize])
            lmHead = blockHead == nil ? matrix("lm_head.weight", [c.vocabSize, c.hiddenSize]) : Matrix(rows: 0, cols: 0)
        }
        guard problems.isEmpty else {
            throw problems.count == 1 ? problems[0]
                : ModelError.unsupportedModel(source: sourceName, problem: "\(problems.count) tensor problems:\n  "
                    + problems.map(\.description).joined(separator: "\n  "))
        }
    }
}
