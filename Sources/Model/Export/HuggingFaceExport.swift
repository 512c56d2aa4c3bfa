import Foundation
import Formats
import Tokenizer

/// Writes a GGUF model as a Hugging Face model directory that transformers loads with
/// `AutoModelForCausalLM` / `AutoTokenizer` and that computes the same logits:
///
///     config.json              the family's config (`Architecture.huggingFaceConfigJSON`)
///     generation_config.json   bos / eos / pad token ids
///     model.safetensors        every tensor dequantised, in Hugging Face names and layout
///                              and values (`GGUFModel`); no lm_head.weight when tied
///     tokenizer.json           `BPETokenizer.huggingFaceTokenizerJSON()`
///     tokenizer_config.json    `BPETokenizer.huggingFaceTokenizerConfig(modelMaxLength:)`
///
/// Each file is written atomically (temporary file, fsync, rename), the weights first, so a
/// directory with a `config.json` written by this export has its weights. Tensors are converted
/// one at a time: memory stays around one dequantised tensor (plus its F16/BF16 encoding).
public enum HuggingFaceExport {
    /// The element types `write` can store: F32, or F16 / BF16 rounded to nearest even.
    public static let supportedDTypes: [DType] = [.f32, .bf16, .f16]

    /// Reported after each tensor is written.
    public struct Progress: Sendable {
        /// The Hugging Face name of the tensor just written.
        public var tensor: String
        /// Tensors written so far, of `total`.
        public var completed: Int
        public var total: Int
    }

    /// What `write` produced.
    public struct Summary: Codable, Sendable {
        public var directory: String
        /// File names inside `directory`, in the order written.
        public var files: [String]
        public var dtype: DType
        public var tensors: Int
        public var parameters: Int
        /// GGUF tensors without a Hugging Face counterpart, not written (e.g. `rope_freqs.weight`).
        public var skippedTensors: [String]
    }

    /// Writes the directory (created if needed; files of the same names in it are replaced, and
    /// a directory holding other `*.safetensors*` files is refused).
    /// `tokenizer` is normally `BPETokenizer(gguf: gguf.file)`. Throws `ModelError` for an
    /// unsupported dtype, a tokenizer larger than the embedding or an unusable directory, and the
    /// `GGUFError` / `SafeTensorsError` of reading and writing; nothing half-written is left behind.
    @discardableResult
    public static func write(
        gguf: GGUFModel, tokenizer: BPETokenizer, to directory: URL, dtype: DType = .f32,
        progress: (Progress) -> Void = { _ in }
    ) throws -> Summary {
        let source = gguf.file.url.path
        guard let torchDtype = torchDtypeName(dtype) else {
            throw ModelError.unsupportedModel(
                source: source, problem: "cannot export as \(dtype.rawValue); use one of "
                    + supportedDTypes.map(\.rawValue).joined(separator: ", "))
        }
        let config = gguf.config
        guard tokenizer.vocabularySize <= config.vocabSize else {
            throw ModelError.unsupportedModel(
                source: source, problem: "the tokenizer has \(tokenizer.vocabularySize) tokens but the embedding only "
                    + "\(config.vocabSize) rows")
        }
        try createDirectory(directory)

        // Weights: lay out every tensor, then dequantise and write them one by one.
        var specs: [TensorSpec] = []
        for name in gguf.huggingFaceTensorNames {
            guard let shape = gguf.huggingFaceShape(named: name) else { throw ModelError.missingTensor(source: source, name: name) }
            specs.append(TensorSpec(name: name, dtype: dtype, shape: shape))
        }
        let writer = try SafeTensorsWriter(url: directory.appendingPathComponent("model.safetensors"), tensors: specs)
        var parameters = 0
        do {
            for (index, spec) in specs.enumerated() {
                let tensor = try gguf.huggingFaceTensor(named: spec.name)
                guard tensor.shape == spec.shape else {
                    throw ModelError.shapeMismatch(source: source, name: spec.name, expected: spec.shape, found: tensor.shape)
                }
                try writer.write(spec.name, floats: tensor.floats)
                parameters += tensor.floats.count
                progress(Progress(tensor: spec.name, completed: index + 1, total: specs.count))
            }
            try writer.commit()
        } catch {
            writer.abandon()
            throw error
        }

        // Configuration and tokenizer.
        try writeConfigAndTokenizer(config, torchDtype: torchDtype, tokenizer: tokenizer, to: directory)

        return Summary(
            directory: directory.path,
            files: ["model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"],
            dtype: dtype, tensors: specs.count, parameters: parameters, skippedTensors: gguf.unmappedTensors)
    }

    /// `config.json` (the family's, its weights stored as `torchDtype`), `generation_config.json`,
    /// `tokenizer.json` and `tokenizer_config.json`, each atomically.
    public static func writeConfigAndTokenizer(_ config: ModelConfig, torchDtype: String, tokenizer: BPETokenizer, to directory: URL) throws {
        var hf = config
        hf.torchDtype = torchDtype
        try AtomicFile.write(try ArchitectureRegistry.architecture(of: config).huggingFaceConfigJSON(hf),
                             to: directory.appendingPathComponent("config.json"))
        let generation = GenerationConfig(bosTokenId: config.bosTokenId, eosTokenId: config.eosTokenId, padTokenId: config.padTokenId)
        try AtomicFile.write(try encodeJSON(generation), to: directory.appendingPathComponent("generation_config.json"))
        try AtomicFile.write(tokenizer.huggingFaceTokenizerJSON(), to: directory.appendingPathComponent("tokenizer.json"))
        try AtomicFile.write(tokenizer.huggingFaceTokenizerConfig(modelMaxLength: config.maxPositionEmbeddings),
                             to: directory.appendingPathComponent("tokenizer_config.json"))
    }

    /// transformers' name of a dtype (`torch_dtype` in config.json); nil for dtypes `write` refuses.
    static func torchDtypeName(_ dtype: DType) -> String? {
        switch dtype {
        case .f32: "float32"
        case .bf16: "bfloat16"
        case .f16: "float16"
        default: nil
        }
    }

    /// `generation_config.json`: the token ids generation starts, stops and pads with.
    struct GenerationConfig: Encodable {
        var bosTokenId: Int?
        var eosTokenId: Int?
        var padTokenId: Int?

        enum CodingKeys: String, CodingKey {
            case bosTokenId = "bos_token_id"
            case eosTokenId = "eos_token_id"
            case padTokenId = "pad_token_id"
        }
    }

    static func encodeJSON<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value) + Data("\n".utf8)
    }

    static func createDirectory(_ url: URL) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw ModelError.unsupportedModel(source: url.path, problem: "exists and is not a directory")
            }
            // Other weight files would be read alongside (or instead of) ours.
            let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
            let stale = names.filter { $0.contains(".safetensors") && $0 != "model.safetensors" && !$0.hasPrefix(".") }.sorted()
            guard stale.isEmpty else {
                throw ModelError.unsupportedModel(
                    source: url.path, problem: "already holds other weights (\(stale.joined(separator: ", "))); choose an empty directory")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw ModelError.unsupportedModel(source: url.path, problem: "cannot create the directory: \(error.localizedDescription)")
        }
    }
}
