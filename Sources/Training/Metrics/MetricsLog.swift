import Foundation
import Formats
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors of the metrics log and plots.
public enum MetricsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A system call failed (`operation` in words, `errno`).
    case io(path: String, operation: String, errno: Int32)
    /// A complete line (1-based) that is not a `StepMetrics` object.
    case malformedLine(path: String, line: Int, problem: String)

    public var description: String {
        switch self {
        case let .io(path, operation, code):
            "\(path): cannot \(operation): \(String(cString: strerror(code)))"
        case let .malformedLine(path, line, problem):
            "\(path):\(line): not a metrics record: \(problem)"
        }
    }
}

/// `metrics.jsonl`: one `StepMetrics` JSON object per line, appended with one `write(2)` per
/// line straight to the file (no user-space buffer), so a run that is killed keeps every line it
/// logged; at worst its last line is cut short, which `read` ignores and the next
/// `MetricsLog(url:mode: .append)` removes. (`durable: true` adds an `fsync` per line, which
/// also survives a power loss.)
///
/// Safe to use from several threads.
public final class MetricsLog: @unchecked Sendable {
    public static let fileName = "metrics.jsonl"

    public enum Mode: Sendable, Equatable {
        /// Starts an empty log (replacing any file there).
        case create
        /// Keeps the records there and appends after them (dropping a cut-off last line).
        case append
        /// Keeps only the records with `step ≤ afterStep` (rewritten atomically), then appends:
        /// for resuming from the checkpoint of that step after a run that logged further.
        case resume(afterStep: Int)
    }

    public let url: URL
    private let durable: Bool
    private let lock = NSLock()
    private var descriptor: Int32
    private let encoder: JSONEncoder

    /// Opens (creating if needed) the log at `url`; its directory must exist.
    public init(url: URL, mode: Mode = .append, durable: Bool = false) throws(MetricsError) {
        self.url = url
        self.durable = durable
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = StepMetrics.nonFiniteEncoding
        self.encoder = encoder

        let path = url.path
        switch mode {
        case .create:
            try Self.replace(url, with: Data())
        case .append:
            break
        case .resume(let afterStep):
            if FileManager.default.fileExists(atPath: path) {
                let kept = try Self.read(from: url).filter { $0.step <= afterStep }
                var data = Data()
                for record in kept { data += try Self.line(record, encoder: encoder) }
                try Self.replace(url, with: data)
            }
        }
        let fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(path: path, operation: "open for appending", errno: errno) }
        descriptor = fd
        do {
            try Self.dropPartialLastLine(fd, path: path)
        } catch {
            closeDescriptor(fd)
            throw error
        }
    }

    deinit { close() }

    /// Closes the file; later `append`s fail. Called by `deinit`.
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        if descriptor >= 0 { closeDescriptor(descriptor) }
        descriptor = -1
    }

    /// Appends `metrics` as one line.
    public func append(_ metrics: StepMetrics) throws(MetricsError) {
        let data = try Self.line(metrics, encoder: encoder)
        lock.lock()
        defer { lock.unlock() }
        guard descriptor >= 0 else { throw .io(path: url.path, operation: "append after close", errno: EBADF) }
        let failure: Int32? = data.withUnsafeBytes { bytes in
            var done = 0
            while done < bytes.count {
                let n = write(descriptor, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                done += n
            }
            return nil
        }
        if let failure { throw .io(path: url.path, operation: "append a line", errno: failure) }
        if durable, fsync(descriptor) != 0 { throw .io(path: url.path, operation: "fsync", errno: errno) }
    }

    /// The records of the log at `url`, in file order. Blank lines are skipped; a last line
    /// without its newline is kept if it decodes and ignored otherwise (a write cut short); any
    /// other line that does not decode throws `.malformedLine`.
    public static func read(from url: URL) throws(MetricsError) -> [StepMetrics] {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw .io(path: url.path, operation: "read", errno: FileManager.default.fileExists(atPath: url.path) ? EACCES : ENOENT)
        }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = StepMetrics.nonFiniteDecoding
        var records: [StepMetrics] = []
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() {
            let isLast = index == lines.count - 1  // after the final "\n" this is empty
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\t") }) { continue }
            do {
                records.append(try decoder.decode(StepMetrics.self, from: Data(line)))
            } catch {
                if isLast { break }  // cut off mid-write
                throw .malformedLine(path: url.path, line: index + 1, problem: ErrorText.plain(error))
            }
        }
        return records
    }

    // MARK: Helpers

    private static func line(_ metrics: StepMetrics, encoder: JSONEncoder) throws(MetricsError) -> Data {
        do {
            var data = try encoder.encode(metrics)
            data.append(UInt8(ascii: "\n"))
            return data
        } catch {
            // Only non-finite values can fail, and the strategy converts those.
            preconditionFailure("StepMetrics failed to encode: \(error)")
        }
    }

    private static func replace(_ url: URL, with data: Data) throws(MetricsError) {
        do { try AtomicFile.write(data, to: url) } catch {
            if case let .io(_, _, code) = error { throw .io(path: url.path, operation: "rewrite", errno: code) }
            throw .io(path: url.path, operation: "rewrite", errno: EIO)
        }
    }

    /// Ends the file with a newline: a last line without one is completed if it decodes (written
    /// by hand, say) and removed otherwise (cut off mid-write).
    private static func dropPartialLastLine(_ fd: Int32, path: String) throws(MetricsError) {
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0 else { return }
        var byte: UInt8 = 0
        guard pread(fd, &byte, 1, size - 1) == 1 else { throw .io(path: path, operation: "read the last byte", errno: errno) }
        if byte == UInt8(ascii: "\n") { return }
        // Scan back for the last newline, 64 KiB at a time.
        var end = size
        var keep: off_t = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        search: while end > 0 {
            let start = max(0, end - off_t(chunk.count))
            let length = Int(end - start)
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, length, start) }
            guard n == length else { throw .io(path: path, operation: "read", errno: errno) }
            for i in stride(from: length - 1, through: 0, by: -1) where chunk[i] == UInt8(ascii: "\n") {
                keep = start + off_t(i) + 1
                break search
            }
            end = start
        }
        var tail = [UInt8](repeating: 0, count: Int(size - keep))
        let n = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, keep) }
        guard n == tail.count else { throw .io(path: path, operation: "read the last line", errno: errno) }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = StepMetrics.nonFiniteDecoding
        if (try? decoder.decode(StepMetrics.self, from: Data(tail))) != nil {
            var newline = UInt8(ascii: "\n")
            guard write(fd, &newline, 1) == 1 else { throw .io(path: path, operation: "complete the last line", errno: errno) }
        } else {
            guard ftruncate(fd, keep) == 0 else { throw .io(path: path, operation: "drop the cut-off last line", errno: errno) }
        }
    }
}

private func closeDescriptor(_ fd: Int32) {
    _ = close(fd)
}
