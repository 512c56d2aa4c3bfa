import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-directory replacement that readers never see half-written: the new contents are
/// written into a temporary directory beside the destination (`.NAME.tmp-…`), which then takes
/// the destination's place in one `renameat2(RENAME_EXCHANGE)`. A process killed at any moment
/// leaves the old directory (or none) or the new one, never a mixture, plus at most a stale
/// temporary that the next writer removes.
public enum AtomicDirectory {
    /// Fills a fresh temporary directory beside `destination` with `body`, then puts it in
    /// `destination`'s place. On failure the temporary directory is removed and `destination`
    /// is untouched.
    public static func write(_ destination: URL, body: (URL) throws -> Void) throws {
        let staging = try makeStaging(for: destination)
        do {
            try body(staging)
            try install(staging, at: destination)
        } catch {
            try? FileManager.default.removeItem(at: staging)
            throw error
        }
    }

    /// A new empty directory `.NAME.tmp-…` beside `destination` (created with its parents).
    public static func makeStaging(for destination: URL) throws(SafeTensorsError) -> URL {
        let parent = destination.deletingLastPathComponent()
        do { try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw .io(path: parent.path, operation: "create the directory", errno: Self.code(of: error))
        }
        for _ in 0..<8 {
            let staging = parent.appendingPathComponent(Temporaries.name(for: destination.lastPathComponent))
            if mkdir(staging.path, 0o755) == 0 { return staging }
            if errno != EEXIST { throw .io(path: destination.path, operation: "create a temporary directory in \(parent.path)", errno: errno) }
        }
        throw .io(path: destination.path, operation: "create a temporary directory in \(parent.path)", errno: EEXIST)
    }

    /// Moves the complete directory `staging` (beside `destination`) into `destination`'s place;
    /// whatever `destination` held is removed afterwards.
    public static func install(_ staging: URL, at destination: URL) throws(SafeTensorsError) {
        var st = stat()
        if lstat(destination.path, &st) != 0 {
            guard rename(staging.path, destination.path) == 0 else {
                throw .io(path: destination.path, operation: "rename \(staging.path) into place", errno: errno)
            }
        } else if exchange(staging.path, destination.path) {
            try? FileManager.default.removeItem(at: staging)   // now the old contents
        } else {
            // No atomic exchange on this file system: move the old directory aside first.
            let old = destination.deletingLastPathComponent().appendingPathComponent(Temporaries.name(for: destination.lastPathComponent))
            guard rename(destination.path, old.path) == 0 else {
                throw .io(path: destination.path, operation: "move the old directory aside", errno: errno)
            }
            guard rename(staging.path, destination.path) == 0 else {
                let code = errno
                _ = rename(old.path, destination.path)
                throw .io(path: destination.path, operation: "rename \(staging.path) into place", errno: code)
            }
            try? FileManager.default.removeItem(at: old)
        }
        syncDirectory(destination.deletingLastPathComponent().path)
    }

    /// Deletes `url` (a file or a directory) so that a kill midway leaves it whole or gone: it is
    /// first renamed to a temporary name, which the next writer removes if the deletion stops.
    public static func remove(_ url: URL) {
        let doomed = url.deletingLastPathComponent().appendingPathComponent(Temporaries.name(for: url.lastPathComponent))
        try? FileManager.default.removeItem(at: rename(url.path, doomed.path) == 0 ? doomed : url)
    }

    /// `fsync` of a directory, so that a rename in it is durable (best effort).
    static func syncDirectory(_ path: String) {
        let fd = open(path.isEmpty ? "." : path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            _ = close(fd)
        }
    }

    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32

    /// glibc's `renameat2` (not in Swift's Glibc module), looked up once.
    private static let renameat2: RenameAt2? = {
        #if os(Linux)
        guard let symbol = dlsym(nil, "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: RenameAt2.self)
        #else
        return nil
        #endif
    }()

    /// Atomically swaps the two existing paths; false when the system cannot.
    private static func exchange(_ a: String, _ b: String) -> Bool {
        let renameExchange: UInt32 = 2   // RENAME_EXCHANGE
        guard let renameat2 else { return false }
        return renameat2(AT_FDCWD, a, AT_FDCWD, b, renameExchange) == 0
    }

    static func code(of error: any Error) -> Int32 {
        if let posix = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? any Error).map({ $0 as NSError }),
           posix.domain == NSPOSIXErrorDomain {
            return Int32(posix.code)
        }
        return EIO
    }
}
