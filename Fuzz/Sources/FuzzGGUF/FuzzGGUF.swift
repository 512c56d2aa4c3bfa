import Formats
import FuzzSupport
import Model
import Tokenizer

/// A GGUF file: header, metadata values, tensor infos and placement; then every tensor is
/// dequantised (every supported ggml type), the family's hyperparameters and tensor-name mapping
/// are read, and a tokenizer is built from the metadata and run once.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGGUF(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = FuzzSupport.write(UnsafeRawBufferPointer(start: data, count: size))
    guard let file = try? GGUFFile(url: url) else { return 0 }
    var sum: Float = 0
    for info in file.tensors {
        // A tensor with no bytes may sit anywhere (even past the end, when the padding is cut off).
        precondition(info.byteCount == 0 || file.dataOffset + info.offset + info.byteCount <= file.fileSize, "tensor outside the file")
        if let floats = try? file.floats(info) {
            precondition(floats.count == info.elementCount)
            sum += floats.reduce(0, +)
        }
        file.release(info)
    }
    _ = file.architecture
    if let model = try? GGUFModel(file: file) {
        _ = try? model.huggingFaceConfigJSON()
        _ = model.unmappedTensors
        for name in model.huggingFaceTensorNames { _ = try? model.huggingFaceTensor(named: name) }
    }
    if let tokenizer = try? BPETokenizer(gguf: file) {
        let ids = tokenizer.encode("Hello, world! 123 <|im_end|>", addSpecialTokens: true)
        _ = tokenizer.decode(ids + [-1, tokenizer.vocabularySize, Int.max])
    }
    return sum.isNaN ? 0 : 0
}

/// The executable's entry point (see `FuzzSupport.runDriver`).
@_cdecl("FuzzGGUF_main")
public func fuzzGGUFMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzSupport.runDriver(argc, argv) { data, size in
        guard let data else { return 0 }
        return fuzzGGUF(data, size)
    }
}
