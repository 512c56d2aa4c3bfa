import Foundation
import FuzzSupport
import Tokenizer

/// Three modes, chosen by the first byte's low bits:
/// - even: the rest is a `tokenizer.json` (up to a 0 byte) and a `tokenizer_config.json` (after
///   it); a tokenizer that loads is run on a fixed text and its own vocabulary.
/// - 1 (mod 4): the rest is arbitrary bytes for the fixture tokenizer (byte-level): encoded as
///   text (invalid UTF-8 replaced), decoded as ids (pairs of bytes, out-of-range ids included),
///   streamed, and rendered through the chat template.
/// - 3 (mod 4): the same for the SentencePiece fixture (byte fallback, Gemma's chat template).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let body = UnsafeBufferPointer(start: data + 1, count: size - 1)
    if data[0] & 1 == 0 {
        let split = body.firstIndex(of: 0) ?? body.count
        let json = FuzzSupport.write(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: body[..<split])), extension: "json")
        var config: URL?
        if split < body.count {
            config = FuzzSupport.write(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: body[(split + 1)...])), extension: "config.json")
        }
        guard let tokenizer = try? BPETokenizer(tokenizerJSON: json, tokenizerConfig: config) else { return 0 }
        exercise(tokenizer, text: "Hello, world!  It's 2024.\n<|im_start|>user\nHi<|im_end|>", ids: Array(0..<min(tokenizer.vocabularySize, 512)))
    } else {
        let text = String(decoding: body, as: UTF8.self)
        var ids: [Int] = []
        var i = 0
        while i + 1 < body.count {
            ids.append(Int(Int16(bitPattern: UInt16(body[i]) | UInt16(body[i + 1]) << 8)))
            i += 2
        }
        exercise(data[0] & 3 == 3 ? FuzzSupport.sentencePieceTokenizer : FuzzSupport.tokenizer, text: text, ids: ids)
    }
    return 0
}

private func exercise(_ tokenizer: BPETokenizer, text: String, ids: [Int]) {
    let encoded = tokenizer.encode(text, addSpecialTokens: true)
    precondition(encoded.allSatisfy { $0 >= 0 && $0 < tokenizer.vocabularySize }, "encode produced an id outside the vocabulary")
    _ = tokenizer.decode(encoded)
    _ = tokenizer.decode(ids, skipSpecialTokens: true)
    _ = tokenizer.decode(ids)
    var stream = tokenizer.makeStreamingDecoder()
    for id in ids { _ = stream.append(id) }
    _ = stream.finish()
    for id in ids.prefix(64) { _ = tokenizer.token(id); _ = tokenizer.isSpecial(id) }
    _ = try? tokenizer.encodeChat([ChatMessage(role: "user", content: text), ChatMessage(role: "assistant", content: text)])
}

/// The executable's entry point (see `FuzzSupport.runDriver`).
@_cdecl("FuzzTokenizer_main")
public func fuzzTokenizerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzSupport.runDriver(argc, argv) { data, size in
        guard let data else { return 0 }
        return fuzzTokenizer(data, size)
    }
}
