import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An output that is one file (e.g. `pissa export --format gguf-lora --out lora.gguf`). It is
/// written to a temporary file and renamed into place (`AtomicFile`), so there is nothing to
/// mix up between two writers and no directory lock: the last complete file wins.
public enum OutputFile {
    /// Resolves `path` and checks it as `OutputDirectory.check` does a directory: not an input,
    /// not a directory, and an existing non-empty file only when `isOwn` says this tool wrote it
    /// (or with `overwrite`). Removes stale temporaries of this name beside it and returns them.
    public static func prepare(_ path: String, label: String = "--out", inputs: [OutputDirectory.Input], overwrite: Bool,
                               hint: String, expected: String, isOwn: (URL) -> Bool) throws(OutputError) -> (url: URL, removed: [String]) {
        let url = try check(path, label: label, inputs: inputs, overwrite: overwrite, hint: hint, expected: expected, isOwn: isOwn)
        return (url, Temporaries.removeStale(besides: url))
    }

    /// The checks of `prepare` that change nothing (for a command's `validate()`).
    @discardableResult
    public static func check(_ path: String, label: String = "--out", inputs: [OutputDirectory.Input], overwrite: Bool,
                             hint: String, expected: String, isOwn: (URL) -> Bool) throws(OutputError) -> URL {
        let url = try PathResolution.resolve(path, label: label)
        var st = stat()
        let exists = stat(url.path, &st) == 0
        if exists && (st.st_mode & S_IFMT) == S_IFDIR { throw .isADirectory(label: label, path: path, hint: hint) }
        try OutputDirectory.refuseOverlap(url, path: path, label: label, inputs: inputs)
        guard exists else { return url }
        if st.st_size > 0 && !overwrite && !isOwn(url) { throw .foreignFile(label: label, path: path, expected: expected) }
        return url
    }
}
