/// Building blocks shared by the element-wise kernels' Swift side. The kernels themselves are C,
/// compiled for AVX2 and for AVX-512 (Sources/CKernels, `CPUKernels`).

/// The element-wise kernels split rows across lanes in chunks of at least this many rows: a
/// chunk then holds ≈ 50 µs of work or more, the cost of waking a second thread; decoding's
/// single rows stay on the calling thread.
let elementwiseRowsPerLane = 128

/// 8 floats (one AVX2 register), for the few small loops still written in Swift.
typealias Vec8 = SIMD8<Float>

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> Vec8 {
    UnsafeRawPointer(p).loadUnaligned(as: Vec8.self)
}

@inline(__always)
func store8(_ v: Vec8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec8.self)
}
