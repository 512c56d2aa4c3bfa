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

/// One decoder layer's frozen weights. Linear weights are (out, in), used as `y = x·Wᵀ`, held
/// dense (`Matrix`, as loaded) or quantised (`NF4Matrix`, `ModelWeights.quantizeProjections`).
public struct LayerWeights: Sendable {
    /// By `LayerNorm.rawValue`: the norm's weight, (C) or (D) per head; empty for norms the
    /// family's block lacks.
    public var norms: [[Float]]
    /// By `Projection.rawValue`: q (H·D, C), k, v (KV·D, C), o (C, H·D), gate, up (F, C), down (C, F).
    public var projections: [any LinearWeight]

    public init(norms: [[Float]], projections: [any LinearWeight]) {
        self.norms = norms
        self.projections = projections
    }

    public subscript(norm: LayerNorm) -> [Float] {
        get { norms[norm.rawValue] }
        set { norms[norm.rawValue] = newValue }
    }

    /// The frozen weight of a projection.
    public subscript(projection: Projection) -> any LinearWeight {
        get { projections[projection.rawValue] }
        set { projections[projection.rawValue] = newValue }
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

    /// What becomes of a projection's float32 weight as it is read: (layer, projection, weight)
    /// → the frozen weight kept (its residual, its NF4 codes, …). Errors it throws stop the load.
    public typealias ProjectionPreparer = (_ layer: Int, _ projection: Projection, _ weight: Matrix) throws -> any LinearWeight

    /// Loads and shape-checks every tensor the config implies (`ModelTensors.expected`); all
    /// missing or mis-shaped tensors are reported together.
    ///
    /// With `prepare`, each projection stored in float32 (or bf16, f16) is handed to it as soon as
    /// it is read, layer by layer in `Projection` order, and what it returns is kept: the float32
    /// matrix is dropped before the next tensor is read, so a model can be decomposed and
    /// quantised while it loads without ever being whole in float32. Projections stored in NF4
    /// are kept as they are.
    public init(source: WeightSource, sourceName: String, prepare: ProjectionPreparer? = nil) throws {
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
        func projection(_ name: String, _ shape: [Int]) -> (weight: any LinearWeight, dense: Bool) {
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
        embedding = matrix("model.embed_tokens.weight", [c.vocabSize, c.hiddenSize])
        layers = try (0..<c.numHiddenLayers).map { i in
            let norms = LayerNorm.allCases.map { norm -> [Float] in
                guard norm.isPresent(in: c.block), let name = family.normName(norm) else { return [] }
                return load(ModelTensors.layerName(i, name + ".weight"), [norm.isPerHead ? c.headDim : c.hiddenSize])
            }
            let projections = try Projection.allCases.map { p -> any LinearWeight in
                let (w, dense) = projection(ModelTensors.layerName(i, p.moduleName + ".weight"), p.shape(c))
                guard let prepare, dense, problems.isEmpty, let m = w as? Matrix else { return w }
                return try prepare(i, p, m)
            }
            return LayerWeights(norms: norms, projections: projections)
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
