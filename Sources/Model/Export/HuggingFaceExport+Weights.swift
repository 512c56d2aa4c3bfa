import Foundation
import Formats
import Tokenizer

extension HuggingFaceExport {
    /// A float32 tensor to write under its Hugging Face name, read in place.
    public struct Tensor {
        public var name: String
        public var shape: [Int]
        public var values: UnsafeBufferPointer<Float>

        public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// Writes float32 weights held in memory (e.g. a fully fine-tuned model) as a Hugging Face
    /// directory: `model.safetensors` (the tensors as given, F32), `config.json` (`config`, with
    /// `torch_dtype` float32), `generation_config.json`, `tokenizer.json` and
    /// `tokenizer_config.json`. Atomic file by file, the weights first, as `write(gguf:…)`.
    @discardableResult
    public static func write(tensors: [Tensor], config: ModelConfig, tokenizer: BPETokenizer, to directory: URL) throws -> Summary {
        try createDirectory(directory)
        let writer = try SafeTensorsWriter(url: directory.appendingPathComponent("model.safetensors"),
                                           tensors: tensors.map { TensorSpec(name: $0.name, dtype: .f32, shape: $0.shape) },
                                           metadata: ["format": "pt"])
        do {
            for t in tensors { try writer.write(t.name, bytes: UnsafeRawBufferPointer(t.values)) }
            try writer.commit()
        } catch {
            writer.abandon()
            throw error
        }
        try writeConfigAndTokenizer(config, torchDtype: "float32", tokenizer: tokenizer, to: directory)
        return Summary(directory: directory.path,
                       files: ["model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"],
                       dtype: .f32, tensors: tensors.count, parameters: tensors.reduce(0) { $0 + $1.values.count }, skippedTensors: [])
    }
}
