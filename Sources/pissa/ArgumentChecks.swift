import ArgumentParser
import Foundation

/// Range checks of numeric options, one message style everywhere:
/// `--lr must be a finite number greater than 0 (got inf).`
enum ArgumentCheck {
    /// The most lanes any command accepts: four per core of this machine.
    static var maxLanes: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) * 4 }

    static func lanes(_ value: Int, _ option: String = "--lanes") throws {
        guard (1...maxLanes).contains(value) else {
            throw ValidationError("\(option) must be in 1…\(maxLanes) (4 × the \(ProcessInfo.processInfo.activeProcessorCount) cores of this machine; got \(value)).")
        }
    }

    static func integer(_ value: Int, _ option: String, in range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            let allowed = range.upperBound == Int.max ? "at least \(range.lowerBound)" : "in \(range.lowerBound)…\(range.upperBound)"
            throw ValidationError("\(option) must be \(allowed) (got \(value)).")
        }
    }

    /// A finite number above `lower` (or at least it, with `inclusive`), and at most `upper`.
    static func number<F: BinaryFloatingPoint & CustomStringConvertible>(_ value: F, _ option: String, above lower: F, inclusive: Bool = false,
                                                                         atMost upper: F? = nil) throws {
        let aboveLower = inclusive ? value >= lower : value > lower
        guard value.isFinite, aboveLower, upper.map({ value <= $0 }) ?? true else {
            var allowed = "a finite number " + (inclusive ? "of at least \(plain(lower))" : "greater than \(plain(lower))")
            if let upper { allowed += " and at most \(plain(upper))" }
            throw ValidationError("\(option) must be \(allowed) (got \(value)).")
        }
    }

    /// Refuses settings whose buffers (`bytes`, computed in Double so that nothing overflows)
    /// exceed this machine's memory, before anything is allocated.
    static func fitsInMemory(_ bytes: Double, _ options: String) throws {
        let available = Double(ProcessInfo.processInfo.physicalMemory)
        guard bytes.isFinite, bytes <= available else {
            throw ValidationError(String(format: "%@ would need %.1f GB, more than this machine's %.1f GB; choose smaller values.",
                                         options, bytes / 1e9, available / 1e9))
        }
    }

    /// `0` rather than `0.0` in messages.
    private static func plain<F: BinaryFloatingPoint & CustomStringConvertible>(_ value: F) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : value.description
    }
}
