import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole regular file mapped read-only (`PROT_READ, MAP_PRIVATE`), unmapped on deinit.
/// The readers of safetensors and GGUF files share it; an empty file maps to no memory.
final class MemoryMap: @unchecked Sendable {
    /// Why a file could not be mapped: the failing operation and its errno.
    struct Failure: Error {
        var operation: String
        var errno: Int32
    }

    let base: UnsafeRawPointer?
    let size: Int

    /// Opens and maps `path`; a directory or other non-regular file is refused (EISDIR / EINVAL).
    /// `kind` names the format in the operation ("read as a GGUF file").
    init(path: String, kind: String) throws(Failure) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(operation: "open for reading", errno: errno) }
        defer { _ = close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw Failure(operation: "stat", errno: errno) }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw Failure(operation: "read as a \(kind) file", errno: (status.st_mode & S_IFMT) == S_IFDIR ? EISDIR : EINVAL)
        }
        size = Int(status.st_size)
        guard size > 0 else { base = nil; return }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), Int(bitPattern: address) != -1 else {
            throw Failure(operation: "map into memory", errno: errno)
        }
        base = UnsafeRawPointer(address)
    }

    deinit {
        if let base { _ = munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    /// The whole file as bytes.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Drops the pages of `range` (page-aligned outward at the start) from this process's
    /// resident memory; they are read from the file again if touched.
    func release(_ range: Range<Int>) {
        guard let base, !range.isEmpty, range.upperBound <= size else { return }
        let page = max(Int(sysconf(Int32(_SC_PAGESIZE))), 1)
        let start = range.lowerBound - range.lowerBound % page
        _ = madvise(UnsafeMutableRawPointer(mutating: base) + start, range.upperBound - start, MADV_DONTNEED)
    }
}
