import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The names of this tool's temporary files and directories: `.NAME.tmp-RANDOM` beside the
/// destination `NAME` (`AtomicFile`, staged output directories, checkpoints being written).
/// A process killed while writing leaves them behind; the next command that holds the output
/// directory's lock removes them (`removeStale`).
public enum Temporaries {
    /// A fresh temporary name for the destination `name`.
    public static func name(for name: String) -> String {
        ".\(name).tmp-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
    }

    /// Whether `name` is one of this tool's temporary names.
    public static func isTemporary(_ name: String) -> Bool {
        name.hasPrefix(".") && name.contains(".tmp-")
    }

    /// Whether `name` is a temporary name for the destination `destination`.
    public static func isTemporary(_ name: String, of destination: String) -> Bool {
        name.hasPrefix(".\(destination).tmp-")
    }

    /// Removes every temporary under `directory` (down to `depth` levels, symbolic links not
    /// followed) and, with `siblings`, those beside it named for it; returns what was removed.
    /// A temporary file a live writer still holds (`TemporaryFile` locks its file) is left;
    /// temporary directories are removed, so call this only while holding the directory's lock.
    public static func removeStale(in directory: URL, siblings: Bool, depth: Int = 4) -> [String] {
        var removed = siblings ? removeStale(besides: directory) : []
        removeStale(under: directory, depth: depth, removed: &removed)
        return removed
    }

    /// Removes the stale temporaries named for `destination` beside it; returns what was removed.
    public static func removeStale(besides destination: URL) -> [String] {
        var removed: [String] = []
        let parent = destination.deletingLastPathComponent(), name = destination.lastPathComponent
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? [] where isTemporary(entry, of: name) {
            remove(parent.appendingPathComponent(entry), into: &removed)
        }
        return removed
    }

    /// Removes a stale temporary; a file another process still has locked is in use and kept.
    private static func remove(_ url: URL, into removed: inout [String]) {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd >= 0 {
            defer { close(fd) }
            var st = stat()
            if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, flock(fd, LOCK_EX | LOCK_NB) != 0 { return }
        }
        if (try? FileManager.default.removeItem(at: url)) != nil { removed.append(url.path) }
    }

    private static func removeStale(under directory: URL, depth: Int, removed: inout [String]) {
        guard depth > 0 else { return }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] {
            let url = directory.appendingPathComponent(entry)
            if isTemporary(entry) {
                remove(url, into: &removed)
                continue
            }
            var st = stat()
            if lstat(url.path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
                removeStale(under: url, depth: depth - 1, removed: &removed)
            }
        }
    }
}
