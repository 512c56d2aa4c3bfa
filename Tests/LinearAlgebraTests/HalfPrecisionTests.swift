import LinearAlgebra
import XCTest

final class HalfPrecisionTests: XCTestCase {
    func testBFloat16RoundsToNearestEven() {
        // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties to even → 1.0.
        XCTAssertEqual(HalfPrecision.bfloat16Bits(1 + 0x1p-8), 0x3F80)
        // 1 + 3·2^-8 is halfway between 1.0078125 (odd) and 1.015625 (even) → up.
        XCTAssertEqual(HalfPrecision.bfloat16Bits(1 + 3 * 0x1p-8), 0x3F82)
        // Just above halfway rounds up.
        XCTAssertEqual(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertEqual(HalfPrecision.bfloat16Bits(-2.5), 0xC020)
        XCTAssertTrue(HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits(.nan)).isNaN)
        XCTAssertEqual(HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits(.infinity)), .infinity)
        // The largest float32 rounds to bf16 infinity, as in PyTorch.
        XCTAssertEqual(HalfPrecision.bfloat16Bits(.greatestFiniteMagnitude), 0x7F80)
    }

    func testFloat16RoundTripAndRounding() {
        XCTAssertEqual(HalfPrecision.float16Bits(1), 0x3C00)
        XCTAssertEqual(HalfPrecision.float16Bits(1 + 0x1p-11), 0x3C00, "tie to even")
        XCTAssertEqual(HalfPrecision.float16Bits(1 + 3 * 0x1p-11), 0x3C02, "tie to even, up")
        XCTAssertEqual(HalfPrecision.float16Bits(70000), 0x7C00, "overflow → inf")
        XCTAssertEqual(HalfPrecision.float(float16Bits: 0x0001), 0x1p-24, "smallest subnormal")
        for bits in stride(from: UInt16(0), to: 0x7C00, by: 97) {
            XCTAssertEqual(HalfPrecision.float16Bits(HalfPrecision.float(float16Bits: bits)), bits)
        }
    }

    func testBulkConversionsRoundTrip() {
        let values: [Float] = [0, -0.0, 1, -1.5, 3.140625, 1e-3, 65504, -1e-8]
        var raw = [UInt8](repeating: 0, count: 2 * values.count)
        var back = [Float](repeating: .nan, count: values.count)
        raw.withUnsafeMutableBytes { HalfPrecision.encodeBFloat16(values, into: $0.baseAddress!, count: values.count) }
        raw.withUnsafeBytes { HalfPrecision.decodeBFloat16($0.baseAddress!, into: &back, count: values.count) }
        for (v, b) in zip(values, back) { XCTAssertEqual(b, HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits(v))) }
        raw.withUnsafeMutableBytes { HalfPrecision.encodeFloat16(values, into: $0.baseAddress!, count: values.count) }
        raw.withUnsafeBytes { HalfPrecision.decodeFloat16($0.baseAddress!, into: &back, count: values.count) }
        for (v, b) in zip(values, back) { XCTAssertEqual(b, Float(Float16(v))) }
    }
}
