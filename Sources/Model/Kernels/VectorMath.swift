/// SIMD building blocks for the element-wise kernels (8 floats = one AVX2 register).
///
/// Built with `-march=x86-64-v3` (Package.swift) these compile to FMA/AVX2 code; see
/// PLATFORM.md for why `pointwiseMax` and friends are avoided.
typealias Vec8 = SIMD8<Float>

/// The element-wise kernels split rows across lanes in chunks of at least this many rows: a
/// chunk then holds ≈ 50 µs of work or more, the cost of waking a second thread; decoding's
/// single rows stay on the calling thread.
let elementwiseRowsPerLane = 128

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> Vec8 {
    UnsafeRawPointer(p).loadUnaligned(as: Vec8.self)
}

@inline(__always)
func store8(_ v: Vec8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec8.self)
}

@inline(__always)
func max8(_ a: Vec8, _ b: Vec8) -> Vec8 { a.replacing(with: b, where: a .< b) }

/// e^x for 8 lanes: range reduction x = n·ln2 + r, |r| ≤ ln2/2, degree-6 polynomial for e^r,
/// 2^n through the exponent bits. Max relative error ≈ 2e-7 on [−87, 88]; inputs below −87
/// give 0 (as softmax wants), above 88 are clamped.
///
/// n is rounded with the 1.5·2²³ trick (adding it leaves n in the low mantissa bits), so no
/// float→int conversion is needed: Swift's generic SIMD conversions compile to scalar code.
@inline(__always)
func exp8(_ x: Vec8) -> Vec8 {
    let lo = Vec8(repeating: -87.0), hi = Vec8(repeating: 88.0)
    var v = x.replacing(with: hi, where: x .> hi)
    let underflow = v .< lo
    v = v.replacing(with: lo, where: underflow)
    let magic = Vec8(repeating: 12_582_912)                    // 1.5 · 2²³
    let shifted = v * 1.442_695_04 + magic
    let n = shifted - magic                                    // round(v / ln2), exactly
    let r = v - n * 0.693_145_75 - n * 1.428_606_8e-6
    var p = Vec8(repeating: 1.0 / 720)
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    // bits(shifted) = 0x4B40_0000 + n, so (bits − 0x4B40_0000 + 127) << 23 is 2ⁿ.
    let bits = (unsafeBitCast(shifted, to: SIMD8<UInt32>.self) &- 0x4B3F_FF81) &<< 23
    return (p * unsafeBitCast(bits, to: Vec8.self)).replacing(with: 0, where: underflow)
}

extension SIMD8 where Scalar == Float {
    init(bitPattern bits: SIMD8<UInt32>) {
        self = unsafeBitCast(bits, to: SIMD8<Float>.self)
    }
}

/// Scalar e^x with the same polynomial, for tails.
@inline(__always)
func exp1(_ x: Float) -> Float { exp8(Vec8(repeating: x))[0] }

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
    while i + 8 <= count { acc.addProduct(load8(a + i), load8(b + i)); i += 8 }
    var s = acc.sum()
    while i < count { s += a[i] * b[i]; i += 1 }
    return s
}

extension SIMD8 where Scalar == Float {
    @inline(__always) mutating func addProduct(_ a: Self, _ b: Self) { self = self.addingProduct(a, b) }
}
