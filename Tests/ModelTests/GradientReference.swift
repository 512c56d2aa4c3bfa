import Formats
import Foundation
@testable import Model

/// Straightforward Double implementations of the model's forward pass, transcribed from the
/// mathematics with naive loops (no shared code with the kernels): what the finite
/// differences differentiate. Row-major layouts as in the kernels.
extension GradientCheck {
    enum Reference {
        /// y = x / √(mean(x²) + ε) ⊙ w per row. x (N, C), w (C).
        static func rmsNorm(_ x: [Double], weight w: [Double], eps: Double) -> [Double] {
            let C = w.count
            var y = x
            for n in 0..<(x.count / C) {
                var squares = 0.0
                for i in 0..<C { squares += x[n * C + i] * x[n * C + i] }
                let r = 1 / (squares / Double(C) + eps).squareRoot()
                for i in 0..<C { y[n * C + i] = x[n * C + i] * r * w[i] }
            }
            return y
        }

        /// h = g·σ(g)·u elementwise.
        static func swiGLU(gate g: [Double], up u: [Double]) -> [Double] {
            g.indices.map { g[$0] / (1 + exp(-g[$0])) * u[$0] }
        }

        /// h = ½·g·(1 + tanh(√(2/π)·(g + 0.044715·g³)))·u elementwise (PyTorch's gelu, tanh form).
        static func geGLU(gate g: [Double], up u: [Double]) -> [Double] {
            g.indices.map { i in
                let x = g[i]
                return 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) * u[i]
            }
        }

        /// Half-split rotary embedding: in each head, (x_i, x_{i+D/2}) rotates by pos·θ^(−2i/D).
        /// x (N, heads, D), row n at position `positions[n]`.
        static func rotary(_ x: [Double], heads: Int, headDim D: Int, positions: [Int], theta: Double) -> [Double] {
            var y = x
            let half = D / 2
            for (n, p) in positions.enumerated() {
                for h in 0..<heads {
                    let base = (n * heads + h) * D
                    for i in 0..<half {
                        let angle = Double(p) * pow(theta, -Double(2 * i) / Double(D))
                        let (c, s) = (cos(angle), sin(angle))
                        let (x1, x2) = (x[base + i], x[base + i + half])
                        y[base + i] = x1 * c - x2 * s
                        y[base + i + half] = x2 * c + x1 * s
                    }
                }
            }
            return y
        }

        /// Causal GQA attention softmax(scale·q·kᵀ)·v over keys t − window < s ≤ t (scale 1/√D and
        /// no window by default); query head h reads KV head h / (H / KV).
        /// q, out (B, T, H, D); k, v (B, T, KV, D).
        static func attention(q: [Double], k: [Double], v: [Double], batch B: Int, time T: Int,
                              heads H: Int, kvHeads KV: Int, headDim D: Int, scale: Double? = nil, window: Int? = nil) -> [Double] {
            let scale = scale ?? 1 / Double(D).squareRoot()
            var out = [Double](repeating: 0, count: B * T * H * D)
            func qi(_ b: Int, _ t: Int, _ h: Int, _ d: Int) -> Int { ((b * T + t) * H + h) * D + d }
            func ki(_ b: Int, _ t: Int, _ h: Int, _ d: Int) -> Int { ((b * T + t) * KV + h) * D + d }
            for b in 0..<B {
                for h in 0..<H {
                    let kvh = h / (H / KV)
                    for t in 0..<T {
                        let first = window.map { max(0, t - $0 + 1) } ?? 0
                        var scores = [Double](repeating: -Double.infinity, count: t + 1)
                        for s in first...t {
                            scores[s] = 0
                            for d in 0..<D { scores[s] += q[qi(b, t, h, d)] * k[ki(b, s, kvh, d)] }
                            scores[s] *= scale
                        }
                        let m = scores.max()!
                        let e = scores.map { exp($0 - m) }
                        let sum = e.reduce(0, +)
                        for s in first...t {
                            for d in 0..<D { out[qi(b, t, h, d)] += e[s] / sum * v[ki(b, s, kvh, d)] }
                        }
                    }
                }
            }
            return out
        }

        /// A LoRA factor pair: A (r, in), B (out, r).
        struct LoRA {
            var a: ArraySlice<Double>, b: ArraySlice<Double>
            var rank: Int, scale: Double
        }

        /// y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ. x (N, in), W (out, in).
        static func linear(_ x: [Double], weight w: [Double], outF: Int, inF: Int, lora: LoRA?) -> [Double] {
            let N = x.count / inF
            var y = [Double](repeating: 0, count: N * outF)
            for n in 0..<N {
                for o in 0..<outF {
                    for i in 0..<inF { y[n * outF + o] += x[n * inF + i] * w[o * inF + i] }
                }
            }
            guard let lora else { return y }
            let r = lora.rank, a = lora.a, b = lora.b, a0 = a.startIndex, b0 = b.startIndex
            for n in 0..<N {
                var xa = [Double](repeating: 0, count: r)
                for j in 0..<r {
                    for i in 0..<inF { xa[j] += x[n * inF + i] * a[a0 + j * inF + i] }
                }
                for o in 0..<outF {
                    for j in 0..<r { y[n * outF + o] += lora.scale * xa[j] * b[b0 + o * r + j] }
                }
            }
            return y
        }

        /// The column blocks of a row-major x (rows, Σ widths), each (rows, w_i): a fused
        /// projection's parts.
        static func splitColumns(_ x: [Double], widths: [Int]) -> [[Double]] {
            let total = widths.reduce(0, +), rows = x.count / total
            var offset = 0
            return widths.map { w in
                defer { offset += w }
                return (0..<rows).flatMap { r in x[(r * total + offset)..<(r * total + offset + w)] }
            }
        }

        /// Σ over rows with target ≥ 0 of logsumexp(z_n·Eᵀ) − z_n·E_target. z (N, C), E (V, C).
        static func crossEntropySum(z: [Double], head e: [Double], vocab V: Int, targets: [Int32]) -> Double {
            let C = e.count / V
            var total = 0.0
            for (n, target) in targets.enumerated() where target >= 0 {
                var logits = [Double](repeating: 0, count: V)
                for j in 0..<V {
                    for c in 0..<C { logits[j] += z[n * C + c] * e[j * C + c] }
                }
                let m = logits.max()!
                let lse = m + log(logits.reduce(0) { $0 + exp($1 - m) })
                total += lse - logits[Int(target)]
            }
            return total
        }
    }
}

// MARK: - The whole tiny model in Double

extension GradientCheck {
    /// The model's weights in Double, with LoRA factors read from a flat parameter vector laid
    /// out as `FlatAdapters`: a straight transcription of the decoder's forward, with the
    /// family's block choices (`BlockSpec`) spelled out.
    struct ReferenceModel {
        struct Linear { var w: [Double]; let outF: Int; let inF: Int }
        /// Norm weights by `LayerNorm.rawValue` (the effective scale: weight + offset); empty when absent.
        /// Projections and their biases (empty when none) by slot.
        struct Layer { var norms: [[Double]]; var projections: [Linear]; var biases: [[Double]] }

        let config: ModelConfig
        var embedding: [Double]           // (V, C), also the tied head
        var layers: [Layer]
        var finalNorm: [Double]
        let slots: [FlatAdapters.Slot]
        let rank: Int, scale: Double

        init(weights: ModelWeights, adapters: FlatAdapters) {
            let offset = Double(weights.config.block.normWeightOffset)
            func d(_ f: [Float]) -> [Double] { f.map(Double.init) }
            func norm(_ f: [Float]) -> [Double] { f.map { Double($0) + offset } }
            config = weights.config
            embedding = d(weights.embedding.storage)
            layers = weights.layers.map { l in
                Layer(norms: l.norms.map(norm),
                      projections: l.projections.map { Linear(w: d($0.dequantized().storage), outF: $0.rows, inF: $0.cols) },
                      biases: l.biases.map(d))
            }
            finalNorm = norm(weights.finalNorm)
            slots = adapters.slots
            rank = adapters.rank
            scale = Double(adapters.scale)
        }

        private func project(_ x: [Double], layer: Int, _ p: Projection, parameters θ: [Double]) -> [Double] {
            let slot = config.block.layout.slot(p)!
            let lin = layers[layer].projections[slot], bias = layers[layer].biases[slot]
            let lora = slots.first { $0.layer == layer && $0.projection == p }.map { s in   // a router has none
                Reference.LoRA(a: θ[s.a..<(s.a + rank * s.inF)], b: θ[s.b..<(s.b + s.outF * rank)], rank: rank, scale: scale)
            }
            var y = Reference.linear(x, weight: lin.w, outF: lin.outF, inF: lin.inF, lora: lora)
            if !bias.isEmpty { for i in y.indices { y[i] += bias[i % lin.outF] } }   // y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ
            return y
        }

        /// One decoder layer on the residual stream x (B·T, C).
        func layer(_ i: Int, x: [Double], batch: Int, parameters θ: [Double]) -> [Double] {
            let c = config, spec = c.block, L = layers[i], eps = c.rmsNormEps
            let T = x.count / c.hiddenSize / batch
            let positions = (0..<(batch * T)).map { $0 % T }
            let theta = c.layers[i].rope.theta
            let h1 = Reference.rmsNorm(x, weight: L.norms[LayerNorm.attentionInput.rawValue], eps: eps)
            var q: [Double], k: [Double], v: [Double]
            if spec.layout.fusedAttention {   // Phi-3: qkv's rows are q's, k's, v's
                let parts = Reference.splitColumns(project(h1, layer: i, .qkv, parameters: θ),
                                                   widths: [c.queryWidth, c.keyValueWidth, c.keyValueWidth])
                (q, k, v) = (parts[0], parts[1], parts[2])
            } else {
                q = project(h1, layer: i, .q, parameters: θ)
                k = project(h1, layer: i, .k, parameters: θ)
                v = project(h1, layer: i, .v, parameters: θ)
            }
            if spec.queryKeyNorm {
                q = Reference.rmsNorm(q, weight: L.norms[LayerNorm.query.rawValue], eps: eps)
                k = Reference.rmsNorm(k, weight: L.norms[LayerNorm.key.rawValue], eps: eps)
            }
            q = Reference.rotary(q, heads: c.numAttentionHeads, headDim: c.headDim, positions: positions, theta: theta)
            k = Reference.rotary(k, heads: c.numKeyValueHeads, headDim: c.headDim, positions: positions, theta: theta)
            let a = Reference.attention(q: q, k: k, v: v, batch: batch, time: T, heads: c.numAttentionHeads,
                                        kvHeads: c.numKeyValueHeads, headDim: c.headDim, scale: spec.attentionScale,
                                        window: c.layers[i].slidingWindow)
            var o = project(a, layer: i, .o, parameters: θ)
            if spec.sandwichNorms { o = Reference.rmsNorm(o, weight: L.norms[LayerNorm.attentionOutput.rawValue], eps: eps) }
            let mid = x.indices.map { x[$0] + o[$0] }
            let h2 = Reference.rmsNorm(mid, weight: L.norms[LayerNorm.mlpInput.rawValue], eps: eps)
            if case let .experts(E, K) = spec.layout.mlp {
                let moe = experts(h2, layer: i, experts: E, topK: K, parameters: θ)
                return mid.indices.map { mid[$0] + moe[$0] }
            }
            let gate: [Double], up: [Double]
            if spec.layout.mlp == .fusedGated {   // Phi-3: gate_up's rows are gate's, then up's
                let parts = Reference.splitColumns(project(h2, layer: i, .gateUp, parameters: θ),
                                                   widths: [c.intermediateSize, c.intermediateSize])
                (gate, up) = (parts[0], parts[1])
            } else {
                (gate, up) = (project(h2, layer: i, .gate, parameters: θ), project(h2, layer: i, .up, parameters: θ))
            }
            let act = spec.activation == .silu ? Reference.swiGLU(gate: gate, up: up) : Reference.geGLU(gate: gate, up: up)
            var down = project(act, layer: i, .down, parameters: θ)
            if spec.sandwichNorms { down = Reference.rmsNorm(down, weight: L.norms[LayerNorm.mlpOutput.rawValue], eps: eps) }
            return mid.indices.map { mid[$0] + down[$0] }
        }

        /// A sparse mixture of experts, token by token: p = softmax(h·W_rᵀ), the K most probable
        /// experts, w = p / Σ_chosen p, and Σ_j w_j · down_j(silu(gate_j(h))·up_j(h)).
        func experts(_ h: [Double], layer i: Int, experts E: Int, topK K: Int, parameters θ: [Double]) -> [Double] {
            let C = config.hiddenSize
            let logits = project(h, layer: i, .router, parameters: θ)
            var out = [Double](repeating: 0, count: h.count)
            for n in 0..<(h.count / C) {
                let z = Array(logits[(n * E)..<(n * E + E)]), m = z.max()!
                let e = z.map { exp($0 - m) }, total = e.reduce(0, +)
                let p = e.map { $0 / total }
                let chosen = Array(p.indices.sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }.prefix(K))
                let sum = chosen.reduce(0.0) { $0 + p[$1] }
                let x = Array(h[(n * C)..<(n * C + C)])
                for expert in chosen {
                    let g = project(x, layer: i, .expert(expert, .gate), parameters: θ)
                    let u = project(x, layer: i, .expert(expert, .up), parameters: θ)
                    let y = project(Reference.swiGLU(gate: g, up: u), layer: i, .expert(expert, .down), parameters: θ)
                    for d in 0..<C { out[n * C + d] += p[expert] / sum * y[d] }
                }
            }
            return out
        }

        /// Σ NLL over supervised targets (embed [× scale] → layers → final norm → tied head → CE).
        func lossSum(tokens: [Int32], targets: [Int32], batch: Int, parameters θ: [Double]) -> Double {
            let C = config.hiddenSize
            let embedScale = Double(config.block.embeddingScale ?? 1)
            var x = tokens.flatMap { embedding[(Int($0) * C)..<(Int($0) * C + C)].map { $0 * embedScale } }
            for i in layers.indices { x = layer(i, x: x, batch: batch, parameters: θ) }
            let z = Reference.rmsNorm(x, weight: finalNorm, eps: config.rmsNormEps)
            return Reference.crossEntropySum(z: z, head: embedding, vocab: config.vocabSize, targets: targets)
        }
    }
}
