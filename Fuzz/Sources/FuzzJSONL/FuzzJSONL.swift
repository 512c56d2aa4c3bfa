import Foundation
import FuzzSupport
import Training

/// The training-data loader: the first byte picks `maxSeqLen` (2…65), bad-line skipping and
/// JSONL or plain text; the rest is the file. Every example it returns must be consistent.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONL(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let mode = data[0]
    let body = Data(bytes: data + 1, count: size - 1)
    let loader = DatasetLoader(tokenizer: FuzzSupport.tokenizer, maxSeqLen: 2 + Int(mode & 63), skipBadLines: mode & 64 != 0)
    let loaded = mode & 128 == 0 ? try? loader.load(jsonl: body, path: "fuzz.jsonl") : try? loader.load(text: body, path: "fuzz.txt")
    guard let loaded else { return 0 }
    for example in loaded.examples {
        precondition(example.tokens.count <= loader.maxSeqLen, "example longer than maxSeqLen")
        precondition(example.tokens.allSatisfy { $0 >= 0 && Int($0) < FuzzSupport.tokenizer.vocabularySize })
    }
    _ = loaded.report.description
    return 0
}

/// The executable's entry point (see `FuzzSupport.runDriver`).
@_cdecl("FuzzJSONL_main")
public func fuzzJSONLMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzSupport.runDriver(argc, argv) { data, size in
        guard let data else { return 0 }
        return fuzzJSONL(data, size)
    }
}
