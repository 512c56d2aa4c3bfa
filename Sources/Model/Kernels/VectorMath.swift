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

/// x += y over `count` floats.
func addInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count { store8(load8(x + i) + load8(y + i), x + i); i += 8 }
    while i < count { x[i] += y[i]; i += 1 }
}

/// Σ a[i]·b[i] over `count` elements.
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc = Vec8(), i = 0
    while i + 8 <= count { acc = acc.addingProduct(load8(a + i), load8(b + i)); i += 8 }
    var s = acc.sum()
    while i < count { s += a[i] * b[i]; i += 1 }
    return s
}
