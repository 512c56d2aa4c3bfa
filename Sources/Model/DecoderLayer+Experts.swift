import Formats
import LinearAlgebra

/// Which experts each token of a sparse mixture goes to (Mixtral's `MixtralTopKRouter`): the
/// router's logits h·W_rᵀ (E per token), their softmax p, the K most probable experts, and
/// their weights w_j = p_j / Σ_chosen p (renormalised). The N·K (token, choice) pairs are laid
/// out expert after expert, tokens ascending within each: the routed rows the experts run on.
struct Routing {
    let topK: Int
    /// Per token n, choice j (`n·K + j`, descending probability): the expert, and its weight.
    private(set) var chosen: [Int]
    private(set) var weight: [Float]
    /// Routed row i is choice `order[i]` (= n·K + j); expert e's rows are `offsets[e] ..< offsets[e + 1]`.
    private(set) var order: [Int]
    private(set) var offsets: [Int]

    /// From the router's probabilities p (N, E).
    init(probabilities p: UnsafePointer<Float>, rows N: Int, experts E: Int, topK K: Int) {
        topK = K
        chosen = [Int](repeating: 0, count: N * K)
        weight = [Float](repeating: 0, count: N * K)
        var counts = [Int](repeating: 0, count: E)
        for n in 0..<N {
            let row = p + n * E
            var sum: Float = 0
            for j in 0..<K {
                // The most probable expert not chosen yet; ties go to the lower index (torch.topk).
                var best = -1
                for e in 0..<E where !chosen[(n * K)..<(n * K + j)].contains(e) && (best < 0 || row[e] > row[best]) { best = e }
                chosen[n * K + j] = best
                counts[best] += 1
                sum += row[best]
            }
            for j in 0..<K { weight[n * K + j] = row[chosen[n * K + j]] / sum }
        }
        offsets = [0]
        for e in 0..<E { offsets.append(offsets[e] + counts[e]) }
        var next = Array(offsets.dropLast())
        order = [Int](repeating: 0, count: N * K)
        for t in 0..<(N * K) {
            order[next[chosen[t]]] = t
            next[chosen[t]] += 1
        }
    }

    /// The rows of expert `e`.
    func rows(_ e: Int) -> Range<Int> { offsets[e]..<offsets[e + 1] }
}

extension DecoderModel {
    /// The MLP of a sparse mixture of experts on h = n₂(x) (N, C), added into the residual x:
    /// `x += Σ_j w_j · down_e(act(gate_e(h)) · up_e(h))` over each token's K chosen experts e,
    /// each expert's projections with their adapters. With a tape, the routed rows' gate and up
    /// pre-activations and the experts' outputs are kept for backward (the routing is recomputed).
    func forwardExperts(_ index: Int, h: UnsafeMutablePointer<Float>, x: UnsafeMutablePointer<Float>, work: Workspace, rows N: Int,
                        adapters: [LoRAAdapter?]?, tape: LayerTape?) {
        let c = config, layout = c.block.layout, layer = layerWeights(index)
        let (E, K) = layout.expertShape
        let (C, F) = (c.hiddenSize, c.intermediateSize)
        func output(_ p: Projection, _ y: UnsafeMutablePointer<Float>, firstRow: Int = 0) -> ProjectionOutput {
            let slot = layout.index(p), rank = tape?.maxRank ?? 0
            return ProjectionOutput(weight: layer.projections[slot], bias: layer.biases[slot], adapter: adapters?[slot], y: y,
                                    xa: tape?.xa[slot].map { $0 + firstRow * rank })
        }
        let routing = route(layer: layer, h: h, probabilities: work.router, rows: N)
        gather(h, rows: routing.order.map { $0 / K }, width: C, into: work.routedIn)
        let gate = tape?.gate ?? work.gate, up = tape?.up ?? work.up, out = tape?.routedOut ?? work.routedOut
        for e in 0..<E where !routing.rows(e).isEmpty {
            let r = routing.rows(e)
            project(work.routedIn + r.lowerBound * C, [output(.expert(e, .gate), gate + r.lowerBound * F, firstRow: r.lowerBound),
                                                        output(.expert(e, .up), up + r.lowerBound * F, firstRow: r.lowerBound)], rows: r.count)
        }
        GatedMLP.forward(c.block.activation, gate: gate, up: up, out: work.act, rows: N * K, width: F, lanes: lanes)
        for e in 0..<E where !routing.rows(e).isEmpty {
            let r = routing.rows(e)
            project(work.act + r.lowerBound * F, [output(.expert(e, .down), out + r.lowerBound * C, firstRow: r.lowerBound)], rows: r.count)
        }
        // Σ over experts in order into a zeroed sum (transformers' index_add_), then the residual add.
        h.update(repeating: 0, count: N * C)
        for (i, t) in routing.order.enumerated() {
            let w = routing.weight[t], y = out + i * C, sum = h + (t / K) * C
            for d in 0..<C { sum[d] += w * y[d] }
        }
        addInPlace(x, h, count: N * C)
    }

    /// Backward of `forwardExperts`: dy (N, C) is the gradient of the MLP's output; on exit
    /// `dh` (N, C) holds the gradient of h = n₂(x) through the experts and the router (routing
    /// weights are differentiated through the renormalisation and the softmax; the choice of
    /// experts is piecewise constant). Expert adapters get their gradients, and with trained
    /// weights (full fine-tuning) the experts and the router too. `work.h` holds h on entry.
    func backwardExperts(_ index: Int, dy: UnsafePointer<Float>, dh: UnsafeMutablePointer<Float>, tape: LayerTape, work: Workspace,
                         grad: BackwardWorkspace, rows N: Int, adapters: [LoRAAdapter?]?) {
        let c = config, layout = c.block.layout, layer = layerWeights(index)
        let (E, K) = layout.expertShape
        let (C, F) = (c.hiddenSize, c.intermediateSize)
        func gradient(_ p: Projection, _ d: UnsafePointer<Float>, firstRow: Int = 0) -> ProjectionGradient {
            let slot = layout.index(p)
            return ProjectionGradient(weight: layer.projections[slot], bias: layer.biases[slot], adapter: adapters?[slot], dy: d,
                                      xa: tape.xa[slot].map { UnsafePointer($0 + firstRow * tape.maxRank) })
        }
        let h = work.h
        let routing = route(layer: layer, h: h, probabilities: work.router, rows: N)
        gather(h, rows: routing.order.map { $0 / K }, width: C, into: work.routedIn)
        GatedMLP.forward(c.block.activation, gate: tape.gate, up: tape.up, out: work.act, rows: N * K, width: F, lanes: lanes)

        // y = Σ_j w_j·out_j: d out_j = w_j·dy, d w_j = dy·out_j.
        var dWeight = [Float](repeating: 0, count: N * K)
        for (i, t) in routing.order.enumerated() {
            let d = dy + (t / K) * C, w = routing.weight[t]
            dWeight[t] = dot(d, tape.routedOut + i * C, C)
            let o = grad.dRoutedOut + i * C
            for j in 0..<C { o[j] = w * d[j] }
        }
        for e in 0..<E where !routing.rows(e).isEmpty {
            let r = routing.rows(e)
            projectBackward([gradient(.expert(e, .down), grad.dRoutedOut + r.lowerBound * C, firstRow: r.lowerBound)],
                            x: work.act + r.lowerBound * F, dx: grad.dAct + r.lowerBound * F, rows: r.count, accumulate: false)
        }
        GatedMLP.backward(c.block.activation, dh: grad.dAct, gate: tape.gate, up: tape.up, dGate: grad.dGate, dUp: grad.dUp,
                          rows: N * K, width: F, lanes: lanes)
        for e in 0..<E where !routing.rows(e).isEmpty {
            let r = routing.rows(e)
            projectBackward([gradient(.expert(e, .gate), grad.dGate + r.lowerBound * F, firstRow: r.lowerBound),
                             gradient(.expert(e, .up), grad.dUp + r.lowerBound * F, firstRow: r.lowerBound)],
                            x: work.routedIn + r.lowerBound * C, dx: grad.dRoutedIn + r.lowerBound * C, rows: r.count, accumulate: false)
        }
        dh.update(repeating: 0, count: N * C)
        for (i, t) in routing.order.enumerated() { addInPlace(dh + (t / K) * C, grad.dRoutedIn + i * C, count: C) }

        // w_j = p_j / S (S = Σ_chosen p): dp_j = (dw_j − Σ_k dw_k·w_k) / S; softmax: dz = p ⊙ (dp − p·dp).
        for n in 0..<N {
            let p = work.router + n * E, dz = grad.dRouter + n * E
            var sum: Float = 0, weighted: Float = 0
            for j in 0..<K {
                sum += p[routing.chosen[n * K + j]]
                weighted += dWeight[n * K + j] * routing.weight[n * K + j]
            }
            for e in 0..<E { dz[e] = 0 }
            for j in 0..<K { dz[routing.chosen[n * K + j]] = (dWeight[n * K + j] - weighted) / sum }
            var pdp: Float = 0
            for e in 0..<E { pdp += p[e] * dz[e] }
            for e in 0..<E { dz[e] = p[e] * (dz[e] - pdp) }
        }
        projectBackward([gradient(.router, grad.dRouter)], x: h, dx: dh, rows: N, accumulate: true)
    }

    /// The router's probabilities softmax(h·W_rᵀ) into `probabilities` (N, E), and the routing.
    private func route(layer: LayerWeightsView, h: UnsafePointer<Float>, probabilities: UnsafeMutablePointer<Float>, rows N: Int) -> Routing {
        let (E, K) = config.block.layout.expertShape
        project(h, [ProjectionOutput(weight: layer[.router], adapter: nil, y: probabilities)], rows: N)
        for n in 0..<N { _ = CPUKernels.softmaxRow(probabilities + n * E, count: E) }
        return Routing(probabilities: probabilities, rows: N, experts: E, topK: K)
    }

    /// Copies row `rows[i]` of x (·, width) to row i of `into`.
    private func gather(_ x: UnsafePointer<Float>, rows: [Int], width: Int, into: UnsafeMutablePointer<Float>) {
        for (i, r) in rows.enumerated() { (into + i * width).update(from: x + r * width, count: width) }
    }
}
