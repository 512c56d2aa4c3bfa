import ArgumentParser
import Foundation

/// The checks commands make of the paths they are given, each failing with a ValidationError
/// that names the option: `--model M does not exist.`
enum PathCheck {
    enum Kind { case any, file, directory }

    /// `path` exists, and is of `kind`; `hint` ends the message when it is of the other kind.
    static func existing(_ path: String, _ option: String, kind: Kind = .any, hint: String? = nil) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ValidationError("\(option) \(path) does not exist.")
        }
        switch (kind, isDirectory.boolValue) {
        case (.file, true): throw ValidationError("\(option) \(path) is a directory; pass \(hint ?? "a file").")
        case (.directory, false): throw ValidationError("\(option) \(path) is a file; pass \(hint ?? "a directory").")
        default: break
        }
    }

    /// An output path that may not exist yet, but if it does, is of `kind`.
    static func output(_ path: String, _ option: String = "--out", kind: Kind, hint: String? = nil) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        try existing(path, option, kind: kind, hint: hint)
    }
}
