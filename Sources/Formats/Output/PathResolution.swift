import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Paths as the file system sees them, so that two spellings of one place compare equal:
/// absolute (relative paths against the working directory), `.` and `..` removed, and every
/// symbolic link followed — also a last component that does not exist yet, and a link whose
/// target does not exist.
public enum PathResolution {
    /// How one resolved path lies relative to another.
    public enum Relation: String, Sendable, Equatable {
        case same, inside, contains, unrelated
    }

    /// The most symbolic links followed before a path counts as a loop (Linux's ELOOP limit).
    static let maxLinks = 40

    /// `path` resolved; throws `OutputError.symlinkLoop` (naming `label`) on a loop of links.
    public static func resolve(_ path: String, label: String) throws(OutputError) -> URL {
        guard let url = resolved(path) else { throw .symlinkLoop(label: label, path: path) }
        return url
    }

    /// `path` resolved, or nil when following its links does not end (a loop).
    public static func resolved(_ path: String) -> URL? {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var pending = Array(components(absolute).reversed())   // a stack: the next component is last
        var resolved: [String] = []
        var links = 0
        while let component = pending.popLast() {
            if component == "." { continue }
            if component == ".." { _ = resolved.popLast(); continue }
            let candidate = "/" + (resolved + [component]).joined(separator: "/")
            guard let target = linkTarget(candidate) else {
                resolved.append(component)
                continue
            }
            links += 1
            guard links <= maxLinks else { return nil }
            if target.hasPrefix("/") { resolved = [] }
            pending.append(contentsOf: components(target).reversed())
        }
        return URL(fileURLWithPath: "/" + resolved.joined(separator: "/"))
    }

    /// How `path` lies relative to `other` (both already resolved).
    public static func relation(of path: URL, to other: URL) -> Relation {
        let a = components(path.path), b = components(other.path)
        if a == b { return .same }
        if a.count > b.count, Array(a.prefix(b.count)) == b { return .inside }
        if b.count > a.count, Array(b.prefix(a.count)) == a { return .contains }
        return .unrelated
    }

    /// Whether `path` names an existing symbolic link whose chain of links never ends.
    public static func isSymlinkLoop(_ path: String) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0 else { return false }
        return resolved(path) == nil
    }

    private static func components(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    /// The target of the symbolic link at `path`, or nil when it is not one.
    private static func linkTarget(_ path: String) -> String? {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
