import Foundation
import Formats
import LinearAlgebra
import Model

/// Converting a QPiSSA run is only approximate (docs/METHOD.md §2): training saw `nf4(W_res) + s·B′A′`,
/// while the converted LoRA on the original gives `W + s·(B′A′ − B₀A₀) = W_res + s·B′A′`; the two
/// differ by the residual's quantisation error `W_res − nf4(W_res)` in every module.
extension PiSSAConversion {
    /// Evidence that the residual the adapter was trained on was quantised, or nil: a run's
    /// `config.json` (`RUN/` above `RUN/adapter` or `RUN/pissa_init`) naming a `quant` /
    /// `quantization` other than none, or a residual model's `config.json` (`OUT/` above
    /// `OUT/pissa_init`) with a `quantization_config`.
    public static func quantizationEvidence(initialDirectory: URL, adapterDirectory: URL) -> String? {
        for dir in [adapterDirectory, initialDirectory] {
            let config = dir.deletingLastPathComponent().appendingPathComponent("config.json")
            guard let data = try? Data(contentsOf: config),
                  let probe = try? JSONDecoder().decode(QuantizationProbe.self, from: data) else { continue }
            if let q = probe.quantization { return "\(config.path) says \(q)" }
        }
        return nil
    }

    /// Reads the few keys that say a model or run is quantised, whatever else the file holds.
    struct QuantizationProbe: Decodable {
        var quantization: String?

        enum Keys: String, CodingKey { case quant, quantization, quantizationConfig = "quantization_config", adapter }
        struct Method: Decodable {
            var quantMethod: String?
            var bnb4bitQuantType: String?
            enum CodingKeys: String, CodingKey { case quantMethod = "quant_method", bnb4bitQuantType = "bnb_4bit_quant_type" }
        }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            func named(_ key: Keys, in c: KeyedDecodingContainer<Keys>) -> String? {
                guard let s = try? c.decodeIfPresent(String.self, forKey: key) else { return nil }
                return ["", "none", "f32", "float32", "dense"].contains(s.lowercased()) ? nil : "\(key.stringValue): \(s)"
            }
            if let q = try? c.decodeIfPresent(QuantSettings.self, forKey: .quant) {   // `pissa train --quant nf4`'s config.json
                quantization = "quant: nf4 (block \(q.blockSize), \(q.iterations) QPiSSA iteration\(q.iterations == 1 ? "" : "s"))"
            } else if let s = named(.quant, in: c) ?? named(.quantization, in: c) {
                quantization = s
            } else if let nested = try? c.nestedContainer(keyedBy: Keys.self, forKey: .adapter),
                      let s = named(.quant, in: nested) ?? named(.quantization, in: nested) {
                quantization = "adapter." + s
            } else if c.contains(.quantizationConfig), (try? c.decodeNil(forKey: .quantizationConfig)) == false {
                let m = try? c.decode(Method.self, forKey: .quantizationConfig)
                quantization = "quantization_config: " + ([m?.quantMethod, m?.bnb4bitQuantType].compactMap { $0 }.joined(separator: " ")
                    .nonEmpty ?? "present")
            }
        }
    }

    /// One module's measured gap: `‖W_res − nf4(W_res)‖_F / ‖W‖_F` with `W_res = W − s·B₀A₀`.
    public struct QuantizationGap: Codable, Sendable {
        public var module: String
        public var relativeError: Double
    }

    /// Measures, for every module of `initial`, the relative Frobenius gap between the converted
    /// LoRA on the original weights and the QPiSSA model it was trained as (NF4, block size 64,
    /// float32 absmax). `original` is the model before decomposition.
    public static func quantizationGap(original: WeightSource, initial: PEFTAdapter.Loaded) throws -> [QuantizationGap] {
        try initial.scaledModules.map { (path, f, scale) in
            let t = try original.tensor(path + ".weight")
            guard t.shape == [f.B.rows, f.A.cols] else {
                throw ModelError.shapeMismatch(source: "original model", name: path + ".weight", expected: [f.B.rows, f.A.cols], found: t.shape)
            }
            let w = Matrix(rows: t.shape[0], cols: t.shape[1], storage: t.floats)
            let residual = w - f.delta(scale: scale)
            let q = NF4Matrix(quantizing: residual).dequantized()
            return QuantizationGap(module: path, relativeError: Double((residual - q).frobeniusNorm / max(w.frobeniusNorm, .leastNormalMagnitude)))
        }
    }

    /// What the user is told when no original weights are at hand.
    public static let unmeasuredGapNote = "NF4's relative error is about 0.09–0.10 of ‖W_res‖ on Gaussian-like weights; "
        + "pass --model ORIGINAL to measure ‖W_res − nf4(W_res)‖ / ‖W‖ per module."
}

private extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
