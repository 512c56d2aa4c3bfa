import Foundation
import Formats
import LinearAlgebra
import Model
import Tokenizer

/// Folds LoRA adapters into a model's weights and writes a Hugging Face model directory:
/// every adapted weight becomes `W + s·B·A` (with DoRA, each row rescaled to its magnitude,
/// `merged`; computed in float32, then stored in `dtype`), every other tensor is copied
/// (converted to `dtype`).
///
/// From a Hugging Face directory the non-weight files (config.json, tokenizer files, …) are
/// copied byte for byte; from a GGUF file they are made as `pissa convert-model` makes them
/// (config.json, generation_config.json, tokenizer.json, tokenizer_config.json). Tensors are
/// streamed one at a time; model.safetensors is written atomically and before the other files.
public enum AdapterMerge {
    public struct Summary: Codable, Sendable {
        public var directory: String
        public var files: [String]
        public var dtype: DType
        public var tensors: Int
        public var mergedModules: Int
    }

    public struct Progress: Sendable {
        public var tensor: String
        public var completed: Int
        public var total: Int
    }

    /// Merges `adapters` (module path → factors and scale) into the model at `modelPath` and
    /// writes `directory`. Every adapter module must name a 2-D weight of the model with the
    /// adapter's shape; all problems are reported together before anything is written.
    @discardableResult
    public static func write(modelPath: String, adapters: [(path: String, factors: LoRAFactors, scale: Float)], to directory: URL,
                             dtype: DType = .f32, progress: (Progress) -> Void = { _ in }) throws -> Summary {
        guard HuggingFaceExport.supportedDTypes.contains(dtype) else {
            throw ModelError.unsupportedModel(source: directory.path, problem: "cannot write \(dtype.rawValue); use f32, bf16 or f16")
        }
        let (source, name) = try openWeightSource(modelPath)
        let layout = try tensorLayout(source, name: name)
        try checkFit(adapters, layout: layout, model: name)
        var byWeight: [String: (factors: LoRAFactors, scale: Float)] = [:]
        for (path, f, s) in adapters { byWeight[path + ".weight"] = (f, s) }

        let existing = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let stale = existing.filter { $0.contains(".safetensors") && $0 != "model.safetensors" && !$0.hasPrefix(".") }.sorted()
        guard stale.isEmpty else {
            throw ModelError.unsupportedModel(source: directory.path, problem: "already holds other weights (\(stale.joined(separator: ", "))); choose an empty directory")
        }
        let created = !FileManager.default.fileExists(atPath: directory.path)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        do {
            let weightsURL = directory.appendingPathComponent("model.safetensors")
            let writer = try SafeTensorsWriter(url: weightsURL, tensors: layout.map { TensorSpec(name: $0.name, dtype: dtype, shape: $0.shape) })
            do {
                for (index, (tensorName, _)) in layout.enumerated() {
                    var t = try source.tensor(tensorName)
                    if let (f, s) = byWeight[tensorName] {
                        t.floats = merged(Matrix(rows: t.shape[0], cols: t.shape[1], storage: t.floats), f, scale: s).storage
                    }
                    try writer.write(tensorName, floats: t.floats)
                    progress(Progress(tensor: tensorName, completed: index + 1, total: layout.count))
                }
                try writer.commit()
            } catch {
                writer.abandon()
                throw error
            }
            let files = try writeSideFiles(source: source, modelPath: modelPath, dtype: dtype, to: directory)
            return Summary(directory: directory.path, files: ["model.safetensors"] + files, dtype: dtype,
                           tensors: layout.count, mergedModules: byWeight.count)
        } catch {
            if created { try? FileManager.default.removeItem(at: directory) }
            throw error
        }
    }

    /// W + s·B·A, and with DoRA's magnitude m each row j scaled by m_j / ‖W_j + s·(B·A)_j‖ (PEFT's
    /// DoRA merge: the norm of the unmerged weight, as forward computes it).
    public static func merged(_ w: Matrix, _ f: LoRAFactors, scale: Float) -> Matrix {
        var out = w
        BLAS.gemm(f.B, f.A, into: &out, alpha: scale, beta: 1)
        guard let m = f.magnitude else { return out }
        for i in 0..<out.rows {
            var sum = 0.0
            for j in 0..<out.cols { let v = Double(out[i, j]); sum += v * v }
            let factor = m[i] / Float(sum.squareRoot())
            for j in 0..<out.cols { out[i, j] *= factor }
        }
        return out
    }

    /// Checks that every adapter module names a 2-D weight of the model (`layout`) of the
    /// adapter's shape (out × in); throws `AdapterFileError.inconsistent` listing every misfit.
    public static func checkFit(_ adapters: [(path: String, factors: LoRAFactors, scale: Float)], layout: [(name: String, shape: [Int])],
                                model: String) throws {
        let shapes = Dictionary(layout, uniquingKeysWith: { a, _ in a })
        var problems: [String] = []
        for (path, f, _) in adapters {
            guard let shape = shapes[path + ".weight"] else { problems.append("\(path): the model has no weight \(path).weight"); continue }
            if shape != [f.B.rows, f.A.cols] {
                problems.append("\(path): adapter \(f.B.rows)×\(f.A.cols) (out×in) does not fit the weight \(shape)")
            }
        }
        guard problems.isEmpty else { throw AdapterFileError.inconsistent(path: model, problems: problems) }
    }

    /// Every tensor of the source with its row-major shape, in Hugging Face names.
    public static func tensorLayout(_ source: WeightSource, name: String) throws -> [(name: String, shape: [Int])] {
        if let g = source as? GGUFWeightSource {
            return try g.model.huggingFaceTensorNames.map { n in
                guard let shape = g.model.huggingFaceShape(named: n) else { throw ModelError.missingTensor(source: name, name: n) }
                return (n, shape)
            }
        }
        if let s = source as? SafeTensorsWeightSource {
            return try s.files.tensorNames.map { n in
                guard let (_, info) = s.files.locate(n) else { throw ModelError.missingTensor(source: name, name: n) }
                return (n, info.shape)
            }
        }
        throw ModelError.unsupportedModel(source: name, problem: "cannot list the tensors of this kind of model")
    }

    /// The files of a Hugging Face directory that travel with the weights: config, generation
    /// config, tokenizer (fast or sentencepiece), chat template.
    static let sideFilePrefixes = ["config.json", "generation_config.json", "tokenizer", "special_tokens_map.json", "added_tokens.json",
                                   "vocab", "merges.txt", "chat_template", "preprocessor_config.json"]

    /// The directory's other files: copied from a Hugging Face directory, made from a GGUF's metadata.
    static func writeSideFiles(source: WeightSource, modelPath: String, dtype: DType, to directory: URL) throws -> [String] {
        if let g = source as? GGUFWeightSource {
            let torchDtype = dtype == .bf16 ? "bfloat16" : dtype == .f16 ? "float16" : "float32"
            try HuggingFaceExport.writeConfigAndTokenizer(g.model.config, torchDtype: torchDtype,
                                                          tokenizer: try g.model.tokenizer(), to: directory)
            return ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]
        }
        let input = URL(fileURLWithPath: modelPath)
        let names = try FileManager.default.contentsOfDirectory(atPath: input.path).sorted()
        var copied: [String] = []
        for n in names where sideFilePrefixes.contains(where: n.hasPrefix) && !n.contains(".safetensors") {
            var isDirectory: ObjCBool = false
            let from = input.appendingPathComponent(n)
            guard FileManager.default.fileExists(atPath: from.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            try AtomicFile.copy(from, to: directory.appendingPathComponent(n))
            copied.append(n)
        }
        return copied
    }
}
