import ArgumentParser
import Formats
import Foundation

/// The checks commands make of the paths they are given, each failing with a ValidationError
/// that names the option: `--model M does not exist.`
enum PathCheck {
    enum Kind { case any, file, directory }

    /// `path` exists, and is of `kind`; `hint` ends the message when it is of the other kind.
    static func existing(_ path: String, _ option: String, kind: Kind = .any, hint: String? = nil) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw missing(path, option) }
        switch (kind, isDirectory.boolValue) {
        case (.file, true): throw ValidationError("\(option) \(path) is a directory; pass \(hint ?? "a file").")
        case (.directory, false): throw ValidationError("\(option) \(path) is a file; pass \(hint ?? "a directory").")
        default: break
        }
        guard access(path, R_OK) == 0 else { throw ValidationError("\(option) \(path) cannot be read: \(String(cString: strerror(errno))).") }
    }

    /// Why `path` cannot be found: a loop of symbolic links, a link to nothing, or nothing.
    static func missing(_ path: String, _ option: String) -> ValidationError {
        if PathResolution.isSymlinkLoop(path) {
            return ValidationError("\(option) \(path) is a loop of symbolic links (too many levels of links); point it at a real file or directory.")
        }
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
            return ValidationError("\(option) \(path) is a symbolic link to \(target), which does not exist.")
        }
        return ValidationError("\(option) \(path) does not exist.")
    }

    /// An output directory, checked as `OutputDirectory` will check it (nothing is created).
    static func outputDirectory(_ path: String, _ option: String = "--out", kind: OutputKind, inputs: [OutputDirectory.Input],
                                overwrite: Bool, reuse: OutputDirectory.Reuse = .sameKind) throws {
        do { try OutputDirectory.check(path, label: option, kind: kind, inputs: inputs, overwrite: overwrite, reuse: reuse) } catch {
            throw ValidationError(error.description + ".")
        }
    }
}

/// Writing a command's output directory: opened (checked, locked, stale temporaries removed),
/// written by `body` into its staging directory, then put in place whole; on an error the
/// staging directory is removed and the old output is untouched. Unstaged (`pissa compare`),
/// `body` writes in place while holding the lock.
enum OutputWriting {
    static func write<T>(_ path: String, _ option: String = "--out", kind: OutputKind, inputs: [OutputDirectory.Input], overwrite: Bool,
                         staged: Bool = true, _ body: (URL) throws -> T) throws -> T {
        let output = try OutputDirectory(path, label: option, kind: kind, inputs: inputs, overwrite: overwrite, staged: staged)
        noteRemovedTemporaries(output.removedTemporaries)
        do {
            let result = try body(output.writeURL)
            try output.commit()
            return result
        } catch {
            output.discard()
            throw error
        }
    }
}

/// Says which temporaries of an interrupted run were removed.
func noteRemovedTemporaries(_ paths: [String]) {
    guard !paths.isEmpty else { return }
    let shown = paths.prefix(3).joined(separator: ", ") + (paths.count > 3 ? ", …" : "")
    printError("note: removed \(paths.count) temporar\(paths.count == 1 ? "y" : "ies") left by an interrupted run: \(shown)")
}

