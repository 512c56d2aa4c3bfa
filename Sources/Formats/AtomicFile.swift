import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file replacement that readers never see half-written.
public enum AtomicFile {
    /// Writes `data` to a temporary file in the directory of `url`, flushes it to disk (`fsync`),
    /// renames it over `url` and flushes the directory, so `url` holds either its old contents or
    /// all of `data`, even after a crash. On failure the temporary file is removed and `url` is
    /// untouched. Errors are `SafeTensorsError.io`.
    public static func write(_ data: Data, to url: URL) throws(SafeTensorsError) {
        let temporary = try TemporaryFile(near: url)
        do throws(SafeTensorsError) {
            try withBytes(of: data) { bytes throws(SafeTensorsError) in try temporary.write(bytes, at: 0) }
            try temporary.commit()
        } catch {
            temporary.abandon()
            throw error
        }
    }
}

/// A file created next to its destination, written with `pwrite` (safe from several threads
/// at once for distinct ranges), and either renamed into place or deleted. It is `flock`ed until
/// then, so that `Temporaries.removeStale` can tell a live writer's file from a killed one's.
///
/// Not thread-safe for `commit` / `abandon`; callers serialise those.
final class TemporaryFile {
    let destination: String
    let path: String
    private var descriptor: Int32
    /// Set once the file was renamed into place or deleted.
    private var finished = false

    /// Creates `.<name>.tmp-<random>` (`Temporaries.name`) in the directory of `url`, exclusively,
    /// mode 0666 & ~umask, and locks it.
    init(near url: URL) throws(SafeTensorsError) {
        destination = url.path
        let directory = url.deletingLastPathComponent().path
        var created: (Int32, String)?
        for _ in 0..<8 where created == nil {
            let candidate = (directory as NSString).appendingPathComponent(Temporaries.name(for: url.lastPathComponent))
            let fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 {
                _ = flock(fd, LOCK_EX | LOCK_NB)
                created = (fd, candidate)
            } else if errno != EEXIST {
                throw .io(path: url.path, operation: "create a temporary file in \(directory)", errno: errno)
            }
        }
        guard let (fd, candidate) = created else {
            throw .io(path: url.path, operation: "create a temporary file in \(directory)", errno: EEXIST)
        }
        descriptor = fd
        path = candidate
    }

    deinit { abandon() }

    /// Sets the file size (new bytes read as zeros and take no disk space until written).
    func resize(to size: Int) throws(SafeTensorsError) {
        guard ftruncate(descriptor, off_t(size)) == 0 else {
            throw .io(path: destination, operation: "extend temporary file \(path) to \(size) bytes", errno: errno)
        }
    }

    /// Writes all of `bytes` at `offset`, retrying short writes and interruptions.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(SafeTensorsError) {
        var done = 0
        while done < bytes.count {
            guard let base = bytes.baseAddress else { return }
            let chunk = min(bytes.count - done, 1 << 30)
            let written = pwrite(descriptor, base + done, chunk, off_t(offset + done))
            if written < 0 {
                if errno == EINTR { continue }
                throw .io(path: destination, operation: "write temporary file \(path)", errno: errno)
            }
            done += written
        }
    }

    /// `fsync`, rename over the destination (still locked, so never taken for a stale file),
    /// close, then `fsync` the directory so the rename itself is durable. On failure the
    /// temporary file still exists; call `abandon`.
    func commit() throws(SafeTensorsError) {
        guard descriptor >= 0 else { throw .writerClosed(path: destination) }
        guard fsync(descriptor) == 0 else {
            throw .io(path: destination, operation: "flush temporary file \(path) to disk", errno: errno)
        }
        guard rename(path, destination) == 0 else {
            throw .io(path: destination, operation: "rename \(path) into place", errno: errno)
        }
        let closed = close(descriptor)
        descriptor = -1
        guard closed == 0 else {
            throw .io(path: destination, operation: "close \(destination)", errno: errno)
        }
        let directory = (destination as NSString).deletingLastPathComponent
        let directoryFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            // Best effort: some file systems refuse fsync on directories.
            _ = fsync(directoryFD)
            _ = close(directoryFD)
        }
        finished = true
    }

    /// Closes and deletes the temporary file; does nothing after `commit` or a previous `abandon`.
    func abandon() {
        guard !finished else { return }
        if descriptor >= 0 {
            _ = close(descriptor)
            descriptor = -1
        }
        _ = unlink(path)
        finished = true
    }
}

/// `withUnsafeBytes` for typed-throws closures (the standard library's and Foundation's
/// versions rethrow untyped errors).
func withBytes<Element, Result>(
    of array: [Element], _ body: (UnsafeRawBufferPointer) throws(SafeTensorsError) -> Result
) throws(SafeTensorsError) -> Result {
    let outcome = array.withUnsafeBytes { bytes in
        Swift.Result { () throws(SafeTensorsError) in try body(bytes) }
    }
    return try outcome.get()
}

func withBytes<Result>(
    of data: Data, _ body: (UnsafeRawBufferPointer) throws(SafeTensorsError) -> Result
) throws(SafeTensorsError) -> Result {
    let outcome = data.withUnsafeBytes { bytes in
        Swift.Result { () throws(SafeTensorsError) in try body(bytes) }
    }
    return try outcome.get()
}
