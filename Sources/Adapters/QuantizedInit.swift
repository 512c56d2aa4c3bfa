import LinearAlgebra

/// Adapter starts on an NF4-quantised frozen weight (docs/METHOD.md §3), all in float32. With s the
/// adapter scale, nf4 the block-wise quantiser of `QuantSettings` and deq its dequantisation:
///
/// - QPiSSA (`--init pissa|pissa_niter_K`), the T-iteration Algorithm 1 of the paper, as the
///   reference `utils/init_qpissa.py` runs it: (A, B) = PiSSA(W), W_res = W − sBA, Q = nf4(W_res);
///   then T − 1 times: (A, B) = PiSSA(W − deq(Q)), W_res = W − sBA, Q = nf4(W_res).
///   Each PiSSA step takes the top-r SVD of its input (exact or randomized, as the init method
///   says), A = diag(√(S_r/s))·Vh_r, B = U_r·diag(√(S_r/s)).
/// - QLoRA (`--init lora|gaussian`): Q = nf4(W), the usual zero-B LoRA start.
/// - OLoRA / MiLoRA with NF4: their start from W, then Q = nf4(W − sBA) once (T must be 1).
/// - LoftQ (`--init loftq`, PEFT's `loftq_init`): Q = nf4(W); then T times: (A, B) = the rank-r
///   SVD of W − deq(Q) (split as PiSSA splits it, exact SVD), and, except after the last,
///   Q = nf4(W − sBA). PEFT's version ignores the scale (it stores L = U√S, R = √S·Vh); dividing by
///   s here makes sBA the same product for any lora_alpha (identical when alpha = r).
///
/// The quantisation error of a start is ‖W − (deq(Q) + sBA)‖; `QuantizationError` measures it.
public enum QuantizedInitializer {
    /// The adapter and the quantised residual Q for one weight `w` (out×in).
    public static func initialize(
        _ w: Matrix, settings: AdapterSettings, quant: QuantSettings, using rng: inout SeededGenerator
    ) throws -> (factors: LoRAFactors, residual: NF4Matrix) {
        guard quant.iterations >= 1 else { throw AdapterError.invalidQuantSettings("iterations must be at least 1 (got \(quant.iterations))") }
        guard quant.blockSize > 0, quant.blockSize % 2 == 0 else {
            throw AdapterError.invalidQuantSettings("block size must be positive and even (got \(quant.blockSize))")
        }
        let scale = settings.scale
        switch settings.initMethod {
        case .lora, .gaussian:
            var unchanged = w
            let factors = try AdapterInitializer.initialize(&unchanged, settings: settings, using: &rng)
            return (factors, quant.quantize(w))

        case .pissa, .pissaNiter:
            var residual = w
            var factors = try AdapterInitializer.initialize(&residual, settings: settings, using: &rng)
            var q = quant.quantize(residual)
            for _ in 1..<quant.iterations {
                var target = subtracting(q, from: w)                     // W − deq(Q)
                factors = try AdapterInitializer.initialize(&target, settings: settings, using: &rng)
                q = quant.quantize(residualOf(w, factors, scale: scale))  // nf4(W − sBA)
            }
            return (factors, q)

        case .corda, .eva, .loraGA:
            throw AdapterError.invalidQuantSettings("--init \(settings.initMethod) is made from float32 calibration statistics; it does not start on an NF4 base (as PEFT's LoRA-GA refuses quantised layers)")

        case .olora, .milora:
            // Like QPiSSA with T = 1: the start from W, then its residual quantised once (PEFT's
            // OLoRA on a 4-bit layer does the same). Algorithm 1's alternation is PiSSA's own.
            guard quant.iterations == 1 else {
                throw AdapterError.invalidQuantSettings("--iters \(quant.iterations): only PiSSA and LoftQ alternate; --init \(settings.initMethod) quantises its residual once (--iters 1)")
            }
            var residual = w
            let factors = try AdapterInitializer.initialize(&residual, settings: settings, using: &rng)
            return (factors, quant.quantize(residual))

        case .loftq:
            var exact = settings
            exact.initMethod = .pissa
            var q = quant.quantize(w)
            var factors = LoRAFactors(A: Matrix(rows: settings.rank, cols: w.cols), B: Matrix(rows: w.rows, cols: settings.rank))
            for i in 0..<quant.iterations {
                var target = subtracting(q, from: w)                     // W − deq(Q)
                factors = try AdapterInitializer.initialize(&target, settings: exact, using: &rng)
                if i + 1 == quant.iterations { break }
                q = quant.quantize(residualOf(w, factors, scale: scale))
            }
            return (factors, q)
        }
    }

    /// W − deq(Q), dequantised row block by row block into the copy of W.
    static func subtracting(_ q: NF4Matrix, from w: Matrix) -> Matrix {
        var out = w
        let rowsPerChunk = max(1, 16384 / max(1, w.cols))
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rowsPerChunk * w.cols) { buffer in
            out.storage.withUnsafeMutableBufferPointer { o in
                var r = 0
                while r < w.rows {
                    let end = min(w.rows, r + rowsPerChunk)
                    q.dequantizeRows(r..<end, into: buffer.baseAddress!)
                    let base = r * w.cols
                    for i in 0..<(end - r) * w.cols { o[base + i] -= buffer[i] }
                    r = end
                }
            }
        }
        return out
    }

    /// W − s·B·A.
    static func residualOf(_ w: Matrix, _ f: LoRAFactors, scale: Float) -> Matrix {
        var out = w
        BLAS.gemm(f.B, f.A, into: &out, alpha: -scale, beta: 1)
        return out
    }
}
