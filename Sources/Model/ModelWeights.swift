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
}

extension WeightSource {
    public func nf4Tensor(_ name: String) throws -> NF4Matrix? { nil }
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

    public var outputHead: Matrix { lmHead ?? embedding }

    /// Loads and shape-checks every tensor the config implies (`ModelTensors.expected`); all
    /// missing or mis-shaped tensors are reported together.
    public init(source: WeightSource, sourceName: String) throws {
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
        /// A projection: NF4 when stored so (kept quantised), else float32.
        func projection(_ name: String, _ shape: [Int]) -> any LinearWeight {
            do {
                if let q = try source.nf4Tensor(name) {
                    guard q.shape == shape else {
                        problems.append(.shapeMismatch(source: sourceName, name: name, expected: shape, found: q.shape))
                        return Matrix(rows: 0, cols: 0)
                    }
                    return q
                }
            } catch {
                problems.append(.unsupportedModel(source: sourceName, problem: "\(name): \(ErrorText.plain(error))"))
                return Matrix(rows: 0, cols: 0)
            }
            return matrix(name, shape)
        }
        config = c
        embedding = matrix("model.embed_tokens.weight", [c.vocabSize, c.hiddenSize])
        layers = (0..<c.numHiddenLayers).map { i in
            let norms = LayerNorm.allCases.map { norm -> [Float] in
                guard norm.isPresent(in: c.block), let name = family.normName(norm) else { return [] }
                return load(ModelTensors.layerName(i, name + ".weight"), [norm.isPerHead ? c.headDim : c.hiddenSize])
            }
            let modules = c.projections.map { ModelTensors.layerName(i, family.moduleName($0)) }
            let projections = zip(c.projections, modules).map { p, m in projection(m + ".weight", p.shape(c)) }
            let biases = zip(c.projections, modules).map { p, m in
                c.block.biases.contains(p) ? load(m + ".bias", [p.shape(c)[0]]) : []
            }
            return LayerWeights(norms: norms, layout: c.block.layout, projections: projections, biases: biases)
        }
        finalNorm = load("model.norm.weight", [c.hiddenSize])
        lmHead = c.tieWordEmbeddings && !source.has("lm_head.weight") ? nil : matrix("lm_head.weight", [c.vocabSize, c.hiddenSize])
        guard problems.isEmpty else {
            throw problems.count == 1 ? problems[0]
                : ModelError.unsupportedModel(source: sourceName, problem: "\(problems.count) tensor problems:\n  "
                    + problems.map(\.description).joined(separator: "\n  "))
        }
    }
}
