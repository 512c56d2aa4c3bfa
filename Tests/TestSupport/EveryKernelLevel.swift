import LinearAlgebra
import XCTest

/// Runs `body` with each set of kernels this CPU can run (`CPUKernels`): the AVX2 level, the
/// AVX-512 level where the CPU has it, and every kernel's AVX-512 copy (the AVX-512 level keeps
/// the AVX2 copy of kernels that measured no faster), so that each compiled copy of the C kernels
/// is checked against the same references. `body` gets a label for failure messages:
/// "avx2", "avx512", "avx512 copies".
public func forEachKernelLevel(_ body: (String) throws -> Void) rethrows {
    for level in CPUKernels.supported { try CPUKernels.with(level) { try body(level.description) } }
    if CPUKernels.supported.contains(.avx512) {
        try CPUKernels.withCompiledCopies(.avx512) { try body("avx512 copies") }
    }
}
