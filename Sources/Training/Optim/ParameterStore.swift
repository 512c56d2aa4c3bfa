import Foundation

/// Where one trainable tensor lives in the flat buffers of a `ParameterStore`.
public struct ParameterView: Sendable, Hashable, Codable {
    /// The tensor's name (for adapters, its PEFT name, e.g. `…q_proj.lora_A.weight`).
    public let name: String
    /// Row-major dimensions; `[]` is a scalar.
    public let shape: [Int]
    /// First element in the flat buffers (a multiple of `ParameterStore.alignment`).
    public let offset: Int
    /// Number of elements, the product of `shape`.
    public let count: Int

    public var range: Range<Int> { offset..<(offset + count) }
}

/// All trainable parameters in one flat float32 buffer, with three buffers of the same layout:
/// the gradients and AdamW's two moments (PyTorch's `exp_avg` and `exp_avg_sq`). One layout for
/// all four makes the optimiser one loop and a checkpoint four memcpys.
///
/// Layout: each registered tensor starts at a multiple of `alignment` elements (64 bytes, one cache
/// line), so threads writing the gradients of different tensors never share a line. The padding
/// between tensors is zero in every buffer and stays zero under AdamW (g = 0 ⇒ m = v = 0 ⇒ p = 0),
/// so whole-buffer loops (`zeroGradients`, `gradientNorm`, the optimiser) need not skip it.
///
/// Buffers:
///
///     parameters  (count)   p, the values kernels read in the forward pass
///     gradients   (count)   dL/dp; backward kernels *add* into it, `zeroGradients()` clears it
///     expAvg      (count)   m, AdamW's first moment
///     expAvgSq    (count)   v, AdamW's second moment
///
/// `step` counts optimiser updates taken (PyTorch's `state["step"]`, the t of the bias corrections).
///
/// Register every tensor before taking pointers: `register` may move the buffers. Not thread-safe
/// for registration; kernels may write disjoint ranges from several threads (hence
/// `@unchecked Sendable`).
public final class ParameterStore: @unchecked Sendable {
    /// Alignment of every tensor's offset, in elements (16 floats = 64 bytes).
    public static let alignment = 16

    /// The registered tensors in registration order.
    public private(set) var views: [ParameterView] = []
    /// Length of each flat buffer in elements, padding included.
    public private(set) var count = 0
    /// Optimiser updates taken so far.
    public var step = 0

    /// Number of trainable values (padding excluded).
    public var parameterCount: Int { views.reduce(0) { $0 + $1.count } }

    private var indexByName: [String: Int] = [:]
    private var capacity: Int
    public private(set) var parameters: UnsafeMutablePointer<Float>
    public private(set) var gradients: UnsafeMutablePointer<Float>
    public private(set) var expAvg: UnsafeMutablePointer<Float>
    public private(set) var expAvgSq: UnsafeMutablePointer<Float>

    public init() {
        capacity = Self.alignment
        parameters = Self.allocate(capacity)
        gradients = Self.allocate(capacity)
        expAvg = Self.allocate(capacity)
        expAvgSq = Self.allocate(capacity)
    }

    /// A store with `layout` registered in order.
    public convenience init(layout: [(name: String, shape: [Int])]) throws(OptimError) {
        self.init()
        if let total = Self.paddedTotal(layout.map(\.shape)) { reserveCapacity(total) }
        for entry in layout { try register(name: entry.name, shape: entry.shape) }
    }

    /// The buffer length that tensors of these shapes take, padding included; nil when a
    /// dimension is negative or a count overflows (`register` then reports which).
    public static func paddedTotal(_ shapes: [[Int]]) -> Int? {
        var total = 0
        for shape in shapes {
            var elements = 1
            for dim in shape {
                guard dim >= 0 else { return nil }
                let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
                if overflow { return nil }
                elements = product
            }
            guard elements <= Int.max - alignment else { return nil }
            let (sum, overflow) = total.addingReportingOverflow(paddedCount(elements))
            if overflow { return nil }
            total = sum
        }
        return total
    }

    deinit {
        for buffer in [parameters, gradients, expAvg, expAvgSq] { buffer.deallocate() }
    }

    /// Adds a tensor (parameters, gradients and moments all zero) and returns its view. Throws
    /// `.invalidParameter` for an empty or repeated name or a negative dimension. Invalidates
    /// pointers taken before.
    @discardableResult
    public func register(name: String, shape: [Int]) throws(OptimError) -> ParameterView {
        if name.isEmpty { throw .invalidParameter(name: name, shape: shape, problem: "the name is empty") }
        if indexByName[name] != nil { throw .invalidParameter(name: name, shape: shape, problem: "the name is already registered") }
        if shape.contains(where: { $0 < 0 }) { throw .invalidParameter(name: name, shape: shape, problem: "a dimension is negative") }
        var elements = 1
        for dim in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
            if overflow { throw .invalidParameter(name: name, shape: shape, problem: "the element count overflows") }
            elements = product
        }
        let offset = count
        let padded = Self.paddedCount(elements)
        reserve(offset + padded)
        let view = ParameterView(name: name, shape: shape, offset: offset, count: elements)
        indexByName[name] = views.count
        views.append(view)
        learningRateScales?.append(1)
        count = offset + padded
        return view
    }

    /// Allocates room for `elements` elements (padding included) in each buffer at once, so that
    /// registering a known layout (e.g. every weight of a model) neither grows the buffers by
    /// doubling, which would hold two copies for a moment and leave up to twice the room, nor
    /// moves them. Invalidates pointers taken before.
    public func reserveCapacity(_ elements: Int) {
        if elements > capacity { grow(to: elements) }
    }

    /// The padded length a tensor of `count` elements takes in the buffers.
    public static func paddedCount(_ count: Int) -> Int {
        (count + alignment - 1) / alignment * alignment
    }

    /// The view registered as `name`.
    public func view(named name: String) -> ParameterView? {
        indexByName[name].map { views[$0] }
    }

    // MARK: Access

    /// The tensor's parameters, a view into the flat buffer (valid until the next `register`).
    public func parameters(of view: ParameterView) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: parameters + view.offset, count: view.count)
    }

    /// The tensor's gradient, a view into the flat buffer (valid until the next `register`).
    public func gradients(of view: ParameterView) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: gradients + view.offset, count: view.count)
    }

    /// A copy of the tensor's parameters.
    public func values(_ view: ParameterView) -> [Float] { Array(parameters(of: view)) }

    /// A copy of the tensor's gradient.
    public func gradientValues(_ view: ParameterView) -> [Float] { Array(gradients(of: view)) }

    /// Copies `values` (exactly `view.count` of them) into the tensor's parameters.
    public func setValues(_ view: ParameterView, _ values: [Float]) {
        precondition(values.count == view.count, "\(view.name): \(values.count) values for \(view.count) elements")
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { (parameters + view.offset).update(from: base, count: view.count) }
        }
    }

    /// Copies `values` (exactly `view.count` of them) into the tensor's gradient.
    public func setGradients(_ view: ParameterView, _ values: [Float]) {
        precondition(values.count == view.count, "\(view.name): \(values.count) gradients for \(view.count) elements")
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { (gradients + view.offset).update(from: base, count: view.count) }
        }
    }

    // MARK: Learning-rate groups

    /// Per-view learning-rate factors (nil: every factor is 1, one group).
    private var learningRateScales: [Double]?

    /// Whether any tensor has a learning-rate factor other than 1.
    public var hasLearningRateScales: Bool { learningRateScales != nil }

    /// The factor AdamW multiplies the learning rate by for `view` (1 unless set).
    public func learningRateScale(of view: ParameterView) -> Double {
        learningRateScales.flatMap { scales in indexByName[view.name].map { scales[$0] } } ?? 1
    }

    /// Gives `view` its own learning rate, `factor` times the schedule's (a PyTorch param group;
    /// LoRA+ gives every lora_B and magnitude vector `loraplus_lr_ratio`).
    public func setLearningRateScale(_ factor: Double, for view: ParameterView) {
        guard let index = indexByName[view.name] else { preconditionFailure("\(view.name) is not registered") }
        var scales = learningRateScales ?? [Double](repeating: 1, count: views.count)
        if scales.count < views.count { scales += [Double](repeating: 1, count: views.count - scales.count) }
        scales[index] = factor
        learningRateScales = scales
    }

    // MARK: Gradients

    /// Sets every gradient to zero (backward kernels accumulate).
    public func zeroGradients() {
        gradients.update(repeating: 0, count: count)
    }

    /// The global L2 norm of all gradients, ‖g‖₂ = sqrt(Σ g²), accumulated in Double (the norm of
    /// the concatenation of all tensors, as `torch.nn.utils.clip_grad_norm_` reports it).
    /// Non-finite if any gradient is.
    public func gradientNorm() -> Double {
        var low = SIMD4<Double>(), high = SIMD4<Double>()
        var i = 0
        while i + 8 <= count {
            let g = UnsafeRawPointer(gradients + i).loadUnaligned(as: SIMD8<Float>.self)
            let gLow = SIMD4<Double>(g.lowHalf), gHigh = SIMD4<Double>(g.highHalf)
            low.addProduct(gLow, gLow)
            high.addProduct(gHigh, gHigh)
            i += 8
        }
        var sum = (low + high).sum()
        while i < count {
            let g = Double(gradients[i])
            sum += g * g
            i += 1
        }
        return sum.squareRoot()
    }

    /// Scales the gradients down so that their global norm is at most `maxNorm`, as PyTorch's
    /// `clip_grad_norm_(parameters, max_norm)` does: with the total norm N rounded to float32,
    /// `coefficient = Float(maxNorm) / (N + Float(1e-6))` in float32, and every gradient is
    /// multiplied by it when it is below 1 (PyTorch clamps it to 1 and always multiplies, which is
    /// the same). A non-finite norm gives a NaN or zero coefficient, which is applied as in
    /// PyTorch; callers should check the returned norm and skip the update when it is not finite.
    ///
    /// PyTorch accumulates the norm in float32 (per tensor across SIMD lanes, then the norm of the
    /// per-tensor norms), so its float32 norm, and with it the coefficient, can be one ulp away
    /// from the correctly rounded Double norm used here (gradients then differ by ≤ 1.2e-7 relative).
    ///
    /// Returns the norm before clipping (Double; PyTorch returns it as a float32 tensor).
    @discardableResult
    public func clipGradients(maxNorm: Double) -> Double {
        let norm = gradientNorm()
        let coefficient = Float(maxNorm) / (Float(norm) + Float(1e-6))
        if !(coefficient >= 1) { scaleGradients(by: coefficient) }
        return norm
    }

    /// Multiplies every gradient by `factor` (e.g. 1 / accumulation steps).
    public func scaleGradients(by factor: Float) {
        let f = SIMD8<Float>(repeating: factor)
        var i = 0
        while i + 8 <= count {
            let raw = UnsafeMutableRawPointer(gradients + i)
            raw.storeBytes(of: raw.loadUnaligned(as: SIMD8<Float>.self) * f, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            gradients[i] *= factor
            i += 1
        }
    }

    // MARK: Storage

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
        let pointer = raw.bindMemory(to: Float.self, capacity: count)
        pointer.initialize(repeating: 0, count: count)
        return pointer
    }

    /// Grows the four buffers (doubling) to hold at least `needed` elements, keeping their contents.
    private func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        grow(to: max(needed, 2 * capacity))
    }

    /// Moves the four buffers into new ones of `newCapacity` elements, keeping their contents.
    private func grow(to newCapacity: Int) {
        func grow(_ old: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
            let new = Self.allocate(newCapacity)
            new.update(from: old, count: count)
            old.deallocate()
            return new
        }
        parameters = grow(parameters)
        gradients = grow(gradients)
        expAvg = grow(expAvg)
        expAvgSq = grow(expAvgSq)
        capacity = newCapacity
    }
}
