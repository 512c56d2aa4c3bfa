import Formats
import FuzzSupport

/// A safetensors file: header length, JSON header, tiling of the data section; then every
/// float-convertible tensor is read (F32 / F16 / BF16 widening) and every page released.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = FuzzSupport.write(UnsafeRawBufferPointer(start: data, count: size))
    guard let file = try? SafeTensorsFile(url: url) else { return 0 }
    var sum: Float = 0
    for info in file.tensors {
        precondition(info.dataRange.upperBound <= file.fileSize - file.dataOffset, "tensor outside the file")
        precondition(info.byteCount == info.elementCount * info.dtype.byteSize, "byte count and shape disagree")
        _ = file.info(info.name)
        if let floats = try? file.floats(info) { sum += floats.reduce(0, +) }
        file.release(info)
    }
    _ = file.metadata.count
    return sum.isNaN ? 0 : 0
}

/// The executable's entry point (see `FuzzSupport.runDriver`).
@_cdecl("FuzzSafeTensors_main")
public func fuzzSafeTensorsMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzSupport.runDriver(argc, argv) { data, size in
        guard let data else { return 0 }
        return fuzzSafeTensors(data, size)
    }
}
