import LinearAlgebra
import XCTest

/// Runs `body` once per kernel level this CPU supports (`CPUKernels`: AVX2, and AVX-512 where the
/// CPU has it), that level selected, so that each compiled copy of the C kernels is checked
/// against the same references. Put the level in failure labels.
public func forEachKernelLevel(_ body: (KernelLevel) throws -> Void) rethrows {
    for level in CPUKernels.supported { try CPUKernels.with(level) { try body(level) } }
}
