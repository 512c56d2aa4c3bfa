import Foundation
import Tokenizer
#if canImport(Glibc)
import Glibc
#endif

/// What the fuzz targets share: the parsers that only take a path get the input through a
/// scratch file, and the tokenizer-dependent targets use the tiny fixture model's tokenizer.
public enum FuzzSupport {
    /// One scratch file per process (in `/dev/shm` when it exists, so writes stay in memory).
    public static let scratch: URL = {
        let directory = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        return URL(fileURLWithPath: directory).appendingPathComponent("pissa-fuzz-\(getpid())")
    }()

    /// Removes the scratch files (run at exit).
    static func removeScratchFiles() {
        for ext in ["", "json", "config.json"] {
            _ = unlink(ext.isEmpty ? scratch.path : scratch.appendingPathExtension(ext).path)
        }
    }

    /// Replaces the scratch file's contents with `bytes` and returns its URL.
    public static func write(_ bytes: UnsafeRawBufferPointer, extension ext: String = "") -> URL {
        let url = ext.isEmpty ? scratch : scratch.appendingPathExtension(ext)
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "cannot create \(url.path): errno \(errno)")
        var written = 0
        while written < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + written, bytes.count - written)
            precondition(n > 0, "cannot write \(url.path): errno \(errno)")
            written += n
        }
        close(fd)
        return url
    }

    /// `Tests/Fixtures/tiny_trainable`, found from this source file (or `PISSA_FUZZ_FIXTURE`).
    public static let fixture: URL = {
        if let path = ProcessInfo.processInfo.environment["PISSA_FUZZ_FIXTURE"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tests/Fixtures/tiny_trainable")
    }()

    /// A SentencePiece-style tokenizer with byte fallback: Gemma 3's layout on a 4,905-token
    /// vocabulary (`Tests/TokenizerTests/Fixtures/gemma_small_tokenizer.json`), Gemma's chat
    /// template; loaded once.
    public static let sentencePieceTokenizer: BPETokenizer = {
        let url = fixture.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("TokenizerTests/Fixtures/gemma_small_tokenizer.json")
        do {
            return try BPETokenizer(tokenizerJSON: url, tokenizerConfig: nil, defaultChatTemplate: .gemma)
        } catch {
            fatalError("fuzz setup: cannot load \(url.path): \(error)")
        }
    }()

    /// The fixture's tokenizer (320 tokens, ChatML template), loaded once.
    public static let tokenizer: BPETokenizer = {
        do {
            return try BPETokenizer(tokenizerJSON: fixture.appendingPathComponent("tokenizer.json"),
                                    tokenizerConfig: fixture.appendingPathComponent("tokenizer_config.json"))
        } catch {
            fatalError("fuzz setup: cannot load the fixture tokenizer in \(fixture.path): \(error)")
        }
    }()
}

/// libFuzzer's driver (`FuzzerDriver.cpp`): parses the libFuzzer flags in `argv` and runs `callback`.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

extension FuzzSupport {
    /// The body of a fuzz executable's entry point. SwiftPM links an executable target's entry
    /// point as `<Module>_main` (aliased to `main`), so each target defines that symbol and hands
    /// libFuzzer its test function here, instead of relying on libFuzzer's own `main`.
    public static func runDriver(
        _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt {
        var count = argc
        var arguments = argv
        atexit { FuzzSupport.removeScratchFiles() }
        return LLVMFuzzerRunDriver(&count, &arguments, callback)
    }
}
