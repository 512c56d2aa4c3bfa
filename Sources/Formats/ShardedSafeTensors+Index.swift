import Foundation

extension ShardedSafeTensors {
    /// Writes `directory/model.safetensors.index.json` for shards laid out as `shards` (file name,
    /// then the specs of its tensors), as transformers' `save_pretrained` writes it:
    /// `{"metadata": {"total_size": N}, "weight_map": {tensor: shard, …}}`, keys sorted, where
    /// `total_size` is the bytes of tensor data in all shards. A checkpoint whose shards hold other
    /// tensors than its source's (an NF4 residual adds `.absmax`, `.quant_map`, … beside each
    /// quantised weight) needs this rather than a copy of the source's index, which
    /// `init(directory:)` would refuse.
    public static func writeIndex(shards: [(fileName: String, tensors: [TensorSpec])], in directory: URL) throws {
        var totalSize = 0
        var entries: [(String, String)] = []
        for (fileName, tensors) in shards {
            for spec in tensors {
                totalSize += spec.dtype.byteCount(shape: spec.shape) ?? 0
                entries.append((spec.name, fileName))
            }
        }
        let map = entries.sorted { $0.0 < $1.0 }
            .map { "    \(JSONText.quote($0.0)): \(JSONText.quote($0.1))" }
            .joined(separator: ",\n")
        let text = "{\n  \"metadata\": {\n    \"total_size\": \(totalSize)\n  },\n  \"weight_map\": {\n\(map)\n  }\n}\n"
        try AtomicFile.write(Data(text.utf8), to: directory.appendingPathComponent(standardIndexFileName))
    }
}
