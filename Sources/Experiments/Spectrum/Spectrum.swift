import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// `pissa spectrum`: the singular values of every target weight of a model, and how much of each
/// weight's energy (Σσ²) its top r triplets hold: what PiSSA puts in the adapter at rank r
/// (and MiLoRA leaves in the residual).
public enum Spectrum {
    public struct Module: Codable, Sendable {
        /// PEFT module path, e.g. `model.layers.0.self_attn.q_proj`.
        public var module: String
        public var layer: Int
        /// `q_proj`, `k_proj`, …
        public var kind: String
        /// [out, in].
        public var shape: [Int]
        /// Descending, min(out, in) of them.
        public var singularValues: [Float]
        /// Σ_{i<r} σᵢ² / Σ σᵢ²: the share of ‖W‖_F² in PiSSA's rank-r adapter.
        public var energyTopR: Double
    }

    public struct Report: Codable, Sendable {
        public var model: String
        public var rank: Int
        public var modules: [Module]
        /// Wall time of the decompositions.
        public var seconds: Double

        public static let fileName = "spectrum.json"
    }

    public enum Progress: Sendable { case loaded(modules: Int), moduleDone(index: Int, of: Int) }

    /// The spectra of `targets` (PEFT suffixes or `all-linear`) of the model at `path` (a Hugging
    /// Face directory or GGUF, read whole in float32), `lanes` decompositions at once.
    public static func measure(modelPath path: String, targets: [String], rank: Int, lanes: Int,
                               progress: @escaping @Sendable (Progress) -> Void = { _ in }) throws -> Report {
        let (source, name) = try openWeightSource(path)   // no tokenizer needed
        let weights = try ModelWeights(source: source, sourceName: name)
        let c = weights.config
        let jobs = try TargetModules.projections(targets, config: c)
        guard !jobs.isEmpty else {
            throw AdapterError.noTargetModules(targets: targets, model: path, sampleModules: c.projections.map { c.modulePath($0, layer: 0) })
        }
        progress(.loaded(modules: jobs.count))
        let started = Date()
        let results = Slots<Module>(count: jobs.count), done = Slots<Bool>(count: jobs.count)
        let saved = BLAS.threadCount
        BLAS.threadCount = lanes > 1 ? 1 : saved
        defer { BLAS.threadCount = saved }
        try Parallel.forEach(jobs.count, lanes: lanes) { i in
            let (layer, p) = jobs[i]
            let w = weights.layers[layer][p].dequantized()
            guard rank <= min(w.rows, w.cols) else { throw LinearAlgebraError.invalidRank(rank: rank, rows: w.rows, cols: w.cols) }
            let s = try SVD.singularValues(of: w)
            let total = s.reduce(0.0) { $0 + Double($1) * Double($1) }
            let top = s.prefix(rank).reduce(0.0) { $0 + Double($1) * Double($1) }
            results[i] = Module(module: c.modulePath(p, layer: layer), layer: layer, kind: String(c.moduleName(p).split(separator: ".").last!),
                                shape: [w.rows, w.cols], singularValues: s, energyTopR: total > 0 ? top / total : 0)
            done[i] = true
            progress(.moduleDone(index: i + 1, of: jobs.count))
        }
        return Report(model: path, rank: rank, modules: results.values, seconds: Date().timeIntervalSince(started))
    }

    /// `spectrum.svg`: σᵢ/σ₀ against i, the mean over layers per module kind (log scale), with a
    /// marker line at r; `energy.svg`: the top-r energy share per layer, one line per kind.
    public static func figures(_ report: Report) -> [(name: String, svg: String)] {
        let kinds = report.modules.reduce(into: [String]()) { if !$0.contains($1.kind) { $0.append($1.kind) } }
        let spectra = kinds.map { kind -> SVGPlot.Series in
            let ms = report.modules.filter { $0.kind == kind }
            let count = ms.map(\.singularValues.count).min() ?? 0
            let points = (0..<count).map { i in
                SVGPlot.Point(x: Double(i + 1), y: ms.reduce(0.0) { $0 + Double($1.singularValues[i] / max($1.singularValues[0], .leastNormalMagnitude)) } / Double(ms.count))
            }
            return SVGPlot.Series(name: "\(kind) (mean of \(ms.count))", points: points)
        }
        let rLine = SVGPlot.Series(name: "r = \(report.rank)", points: [.init(x: Double(report.rank), y: 1e-3), .init(x: Double(report.rank), y: 1)],
                                   color: "#888888", lineWidth: 1, dashed: true)
        let energy = kinds.map { kind in
            SVGPlot.Series(name: kind, points: report.modules.filter { $0.kind == kind }.map { .init(x: Double($0.layer), y: $0.energyTopR) },
                           markers: true)
        }
        return [
            ("spectrum.svg", SVGPlot(title: "Singular values σᵢ / σ₁ (mean over layers)", xLabel: "index i", yLabel: "σᵢ / σ₁",
                                     logY: true, series: spectra + [rLine]).render()),
            ("energy.svg", SVGPlot(title: "Share of ‖W‖²_F in the top \(report.rank) singular values", xLabel: "layer",
                                   yLabel: "Σ_{i≤r} σᵢ² / Σ σᵢ²", series: energy).render()),
        ]
    }

    /// Writes `spectrum.json` and the figures into `directory`, each file atomically.
    public static func write(_ report: Report, to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try AtomicFile.write(try Comparison.jsonData(report), to: directory.appendingPathComponent(Report.fileName))
        for (name, svg) in figures(report) { try AtomicFile.write(Data(svg.utf8), to: directory.appendingPathComponent(name)) }
    }
}
