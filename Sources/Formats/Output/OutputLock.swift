import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The advisory lock of an output directory: `flock` on `DIR/.pissa.lock`, held while a command
/// writes there. The kernel releases it when the process ends, however it ends, so a lock left
/// by a killed process never blocks. The file also records what the directory holds (`Record`):
/// the kind of output, the entries that output wrote, and the pid of the last writer.
final class OutputLock {
    static let fileName = ".pissa.lock"

    struct Record: Codable, Equatable {
        var kind: OutputKind?
        /// Top-level entries the recorded output consists of (nil for a training run, whose
        /// names `RunDirectory` knows).
        var entries: [String]?
        var pid: Int32?
    }

    let url: URL
    private var descriptor: Int32
    /// True when this lock created the file (so that a refusal can remove it again).
    let createdFile: Bool

    /// Takes the lock of `directory` (which must exist), or throws `.locked` naming the holder.
    init(directory: URL, label: String, path: String) throws(OutputError) {
        url = directory.appendingPathComponent(Self.fileName)
        var created = true
        var fd = open(url.path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 && errno == EEXIST {
            created = false
            fd = open(url.path, O_RDWR | O_CLOEXEC)
        }
        guard fd >= 0 else { throw .io(label: label, path: path, operation: "create its lock file", errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = code == EWOULDBLOCK ? Self.holder(fd) : nil
            close(fd)
            if code == EWOULDBLOCK { throw .locked(label: label, path: path, pid: holder) }
            throw .io(label: label, path: path, operation: "lock it", errno: code)
        }
        descriptor = fd
        createdFile = created
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// What the file records, or nil when it is empty or not a record.
    func read() -> Record? { Self.read(descriptor) }

    /// Replaces the record (best effort: the lock itself does not depend on it).
    func write(_ record: Record) {
        guard descriptor >= 0, let data = try? JSONEncoder().encode(record) else { return }
        _ = data.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        _ = ftruncate(descriptor, off_t(data.count))
    }

    /// Releases the lock; with `removeFile`, first deletes the file this lock created.
    func release(removeFile: Bool = false) {
        guard descriptor >= 0 else { return }
        if removeFile && createdFile { unlink(url.path) }
        close(descriptor)
        descriptor = -1
    }

    private static func read(_ fd: Int32) -> Record? {
        var bytes = [UInt8](repeating: 0, count: 64 << 10)
        let n = pread(fd, &bytes, bytes.count, 0)
        guard n > 0 else { return nil }
        return try? JSONDecoder().decode(Record.self, from: Data(bytes.prefix(n)))
    }

    /// The pid recorded by the holder: it writes it just after locking, so wait briefly for a
    /// recorded pid that is alive (an older record names a process that has ended).
    private static func holder(_ fd: Int32) -> Int32? {
        for _ in 0..<25 {
            if let pid = read(fd)?.pid, pid != getpid(), kill(pid, 0) == 0 || errno == EPERM { return pid }
            usleep(20_000)
        }
        return nil
    }
}
