import Foundation

/// Progress output on standard error: one rewritten line on a terminal, plain lines in a log.
final class ProgressLine: @unchecked Sendable {
    private let lock = NSLock()
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private var lastPlain = Date.distantPast
    private var pending = false
    /// False on the ranks of an `mpirun` job other than 0: only rank 0 shows progress.
    private let enabled: Bool

    init(enabled: Bool = Job.current.isRoot) {
        self.enabled = enabled
    }

    /// Shows `text`; in a log, at most one line every `plainInterval` seconds unless `force`.
    func update(_ text: String, force: Bool = false, plainInterval: Double = 2) {
        lock.lock(); defer { lock.unlock() }
        guard enabled else { return }
        if isTerminal {
            FileHandle.standardError.write(Data("\r\u{1B}[2K\(text)".utf8))
            pending = true
        } else if force || Date().timeIntervalSince(lastPlain) >= plainInterval {
            FileHandle.standardError.write(Data("\(text)\n".utf8))
            lastPlain = Date()
        }
    }

    /// Ends the rewritten line so that later output starts on a fresh one.
    func finish() {
        lock.lock(); defer { lock.unlock() }
        if isTerminal && pending { FileHandle.standardError.write(Data("\n".utf8)) }
        pending = false
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data("\(text)\n".utf8))
}

/// `12.3s`, `4m05s`, `1h02m`.
func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    if seconds < 60 { return String(format: "%.1fs", seconds) }
    let s = Int(seconds.rounded())
    if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    FileHandle.standardOutput.write(try encoder.encode(value))
    FileHandle.standardOutput.write(Data("\n".utf8))
}
