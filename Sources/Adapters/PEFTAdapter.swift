import Foundation
import Formats
import LinearAlgebra

/// Reads and writes Hugging Face PEFT LoRA adapter directories
/// (`adapter_config.json` + `adapter_model.safetensors`, factors in float32).
public enum PEFTAdapter {
    /// Writes `directory/adapter_model.safetensors` (tensors `base_model.model.<module>.lora_A.weight`
    /// [r, in] and `…lora_B.weight` [out, r]) and `directory/adapter_config.json`, each atomically.
    public static func write(to directory: URL, modules: [(path: String, factors: LoRAFactors)],
                             config: PEFTAdapterConfig) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var tensors: [(spec: TensorSpec, floats: [Float])] = []
        for (path, f) in modules {
            tensors.append((TensorSpec(name: PEFTAdapterConfig.tensorName(module: path, factor: .loraA), dtype: .f32,
                                       shape: [f.A.rows, f.A.cols]), f.A.storage))
            tensors.append((TensorSpec(name: PEFTAdapterConfig.tensorName(module: path, factor: .loraB), dtype: .f32,
                                       shape: [f.B.rows, f.B.cols]), f.B.storage))
        }
        try SafeTensorsWriter.write(url: directory.appendingPathComponent(PEFTAdapterConfig.weightsFileName),
                                    tensors: tensors, metadata: ["format": "pt"])
        try AtomicFile.write(config.jsonData(), to: directory.appendingPathComponent(PEFTAdapterConfig.configFileName))
    }
}
