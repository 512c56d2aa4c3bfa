import CKernels

/// Which compiled copy of pissa's own C kernels runs (Sources/CKernels): the same source built
/// for x86-64-v3 (AVX2 + FMA, 8 floats per register) and for x86-64-v4 (AVX-512, 16 floats).
/// The best level the CPU supports is chosen at start-up by cpuid, so one binary runs on both
/// kinds of CPU; tests and benchmarks may select any supported level.
public enum KernelLevel: Int32, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case avx2 = 0
    case avx512 = 1

    public var description: String { self == .avx2 ? "avx2" : "avx512" }
}

public enum CPUKernels {
    /// The levels this CPU (and its OS) can run, lowest first.
    public static let supported: [KernelLevel] = {
        let bits = pk_supported_levels()
        return KernelLevel.allCases.filter { bits & (1 << UInt32($0.rawValue)) != 0 }
    }()

    /// The fastest supported level (AVX2 when the CPU reports neither, which an x86-64-v3 build
    /// could not run on anyway).
    public static var best: KernelLevel { supported.last ?? .avx2 }

    /// The level in use. Setting it is for tests and benchmarks, between runs of the kernels: a
    /// level the CPU does not support is refused (the setter keeps the current one).
    public static var level: KernelLevel {
        get { current.level }
        set {
            guard let t = pk_kernels_for(pk_level(rawValue: UInt32(newValue.rawValue))) else { return }
            current = Active(level: newValue, table: t)
        }
    }

    /// Runs `body` with `level` selected, then restores the previous level; false (body not
    /// run) when the CPU does not support `level`.
    @discardableResult
    public static func with(_ level: KernelLevel, _ body: () throws -> Void) rethrows -> Bool {
        guard supported.contains(level) else { return false }
        let saved = self.level
        self.level = level
        defer { self.level = saved }
        try body()
        return true
    }

    /// Runs `body` with every kernel as compiled for `level`, including those the level leaves
    /// to their AVX2 copy (for `pissa bench kernels`, which measures both copies of each kernel,
    /// and for tests, which check both); false when the CPU does not support `level`.
    @discardableResult
    public static func withCompiledCopies(_ level: KernelLevel, _ body: () throws -> Void) rethrows -> Bool {
        guard let t = pk_kernels_compiled(pk_level(rawValue: UInt32(level.rawValue))) else { return false }
        let saved = current
        current = Active(level: level, table: t)
        defer { current = saved }
        try body()
        return true
    }

    struct Active: @unchecked Sendable {
        var level: KernelLevel
        var table: UnsafePointer<pk_kernels>
    }

    nonisolated(unsafe) static var current: Active = {
        let level = best
        return Active(level: level, table: pk_kernels_for(pk_level(rawValue: UInt32(level.rawValue)))
                      ?? withUnsafePointer(to: pk_kernels_avx2) { $0 })
    }()

    /// The kernel table in use.
    @inline(__always)
    static var table: pk_kernels { current.table.pointee }
}
