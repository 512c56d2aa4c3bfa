import Foundation
import Formats
import LinearAlgebra

/// `pissa quant-error`: how much of the NF4 quantisation error a start removes (docs/METHOD.md §3, the
/// paper's Tables 4/8). For each target weight W:
/// - QLoRA: E = W − deq(nf4(W));
/// - QPiSSA (rank r, T iterations, scale 1 as alpha = r): E = W − (deq(Q) + BA), `QuantizedInitializer`
///   with the exact SVD;
/// - LoftQ (optional, same r and T): likewise;
/// each measured by its nuclear norm ‖E‖_* (and Frobenius norm). Per module type (the module
/// path after its layer index: `self_attn.q_proj`, `attention.output.dense`) the table averages over layers the errors and the per-layer reduction
/// ratio (1 − ‖E_method‖_* / ‖E_QLoRA‖_*)·100 %; "total" averages over every module.
public enum QuantErrorAnalysis {
    public struct Options: Sendable {
        public var model: URL
        public var ranks: [Int]
        public var iterations: [Int]
        public var targets: [String]
        /// Only these layer indices (nil: all).
        public var layers: [Int]?
        public var loftq: Bool
        public var doubleQuant: Bool
        public var lanes: Int

        public init(model: URL, ranks: [Int], iterations: [Int], targets: [String] = ["all-linear"], layers: [Int]? = nil,
                    loftq: Bool = false, doubleQuant: Bool = false, lanes: Int = 2) {
            self.model = model
            self.ranks = ranks
            self.iterations = iterations
            self.targets = targets
            self.layers = layers
            self.loftq = loftq
            self.doubleQuant = doubleQuant
            self.lanes = lanes
        }
    }

    /// One start's error on one module.
    public struct Entry: Codable, Sendable {
        public var method: String       // "qpissa" or "loftq"
        public var rank: Int
        public var iterations: Int
        public var error: QuantizationError
    }

    public struct ModuleResult: Codable, Sendable {
        public var module: String
        public var type: String
        public var shape: [Int]
        public var qlora: QuantizationError
        public var entries: [Entry]
    }

    /// A row of the table: one module type (or "total") and one start.
    public struct Row: Codable, Sendable {
        public var type: String
        public var method: String
        public var rank: Int
        public var iterations: Int
        public var modules: Int
        public var qloraNuclear: Double
        public var nuclear: Double
        public var frobenius: Double
        public var qloraFrobenius: Double
        /// Mean over modules of (1 − ‖E‖_* / ‖E_QLoRA‖_*)·100.
        public var reductionPercent: Double
    }

    public struct Report: Codable, Sendable {
        public var model: String
        public var ranks: [Int]
        public var iterations: [Int]
        public var doubleQuant: Bool
        public var modules: [ModuleResult]
        public var rows: [Row]
        public var seconds: Double
    }

    public enum Progress: Sendable {
        case planned(modules: Int)
        case moduleDone(index: Int, of: Int, module: String, elapsed: Double)
    }

    /// Runs on a Hugging Face safetensors directory.
    public static func run(_ options: Options, progress: @escaping @Sendable (Progress) -> Void = { _ in }) throws -> Report {
        let started = Date()
        let model = try ShardedSafeTensors(directory: options.model)
        let settings = AdapterSettings(rank: options.ranks.max() ?? 1, alpha: 1, targets: options.targets, initMethod: .pissa)
        let plan = try DecompositionPlan(model: model, settings: settings)
        let jobs = plan.jobs.filter { job in options.layers.map { $0.contains(layerIndex(of: job.module) ?? -1) } ?? true }
        guard !jobs.isEmpty else { throw AdapterError.invalidQuantSettings("no target module in layers \(options.layers ?? [])") }
        progress(.planned(modules: jobs.count))
        let quant = QuantSettings(iterations: 1, doubleQuant: options.doubleQuant)
        let results = Slots<ModuleResult>(count: jobs.count)
        let savedThreads = BLAS.threadCount
        BLAS.threadCount = options.lanes > 1 ? 1 : savedThreads
        defer { BLAS.threadCount = savedThreads }
        let done = Counter()
        try Parallel.forEach(jobs.count, lanes: options.lanes) { i in
            let job = jobs[i], file = model.files[job.fileIndex]
            let w = Matrix(rows: job.info.shape[0], cols: job.info.shape[1], storage: try file.floats(job.info))
            file.release(job.info)
            let qlora = try QuantizationError.measure(w, residual: quant.quantize(w), factors: nil, scale: 1)
            var entries: [Entry] = []
            for r in options.ranks {
                for method in [InitMethod.pissa] + (options.loftq ? [.loftq] : []) {
                    for t in options.iterations {
                        var rng = SeededGenerator(seed: 0, stream: UInt64(i))
                        var q = quant
                        q.iterations = t
                        let s = AdapterSettings(rank: r, alpha: Float(r), targets: options.targets, initMethod: method)
                        let (factors, residual) = try QuantizedInitializer.initialize(w, settings: s, quant: q, using: &rng)
                        let error = try QuantizationError.measure(w, residual: residual, factors: factors, scale: s.scale)
                        entries.append(Entry(method: method == .pissa ? "qpissa" : "loftq", rank: r, iterations: t, error: error))
                    }
                }
            }
            results[i] = ModuleResult(module: job.module, type: moduleType(of: job.module),
                                      shape: job.info.shape, qlora: qlora, entries: entries)
            let n = done.increment()
            progress(.moduleDone(index: n, of: jobs.count, module: job.module, elapsed: Date().timeIntervalSince(started)))
        }
        let modules = results.values
        return Report(model: options.model.path, ranks: options.ranks, iterations: options.iterations,
                      doubleQuant: options.doubleQuant, modules: modules, rows: table(modules),
                      seconds: Date().timeIntervalSince(started))
    }

    /// Per module type (in order of appearance) and in total, every start's averages.
    public static func table(_ modules: [ModuleResult]) -> [Row] {
        var types: [String] = []
        for m in modules where !types.contains(m.type) { types.append(m.type) }
        guard let first = modules.first else { return [] }
        var rows: [Row] = []
        for type in types + ["total"] {
            let group = modules.filter { type == "total" || $0.type == type }
            for (k, entry) in first.entries.enumerated() {
                func mean(_ f: (ModuleResult) -> Double) -> Double { group.map(f).reduce(0, +) / Double(group.count) }
                rows.append(Row(
                    type: type, method: entry.method, rank: entry.rank, iterations: entry.iterations, modules: group.count,
                    qloraNuclear: mean { $0.qlora.nuclear }, nuclear: mean { $0.entries[k].error.nuclear },
                    frobenius: mean { $0.entries[k].error.frobenius }, qloraFrobenius: mean { $0.qlora.frobenius },
                    reductionPercent: mean { (1 - $0.entries[k].error.nuclear / $0.qlora.nuclear) * 100 }))
            }
        }
        return rows
    }

    /// The module path after `layers.K.` / `layer.K.` (the whole path when there is no layer index).
    static func moduleType(of module: String) -> String {
        let parts = module.split(separator: ".")
        for (i, p) in parts.enumerated() where (p == "layers" || p == "layer") && i + 2 < parts.count && Int(parts[i + 1]) != nil {
            return parts[(i + 2)...].joined(separator: ".")
        }
        return module
    }

    /// K in `….layers.K.…` (Llama) or `….layer.K.…` (BERT), else nil.
    static func layerIndex(of module: String) -> Int? {
        let parts = module.split(separator: ".")
        for (i, p) in parts.enumerated() where (p == "layers" || p == "layer") && i + 1 < parts.count {
            if let k = Int(parts[i + 1]) { return k }
        }
        return nil
    }
}

extension QuantErrorAnalysis {
    /// A Markdown table in the form of the paper's Tables 4/8: one row per module type (and the
    /// total), QLoRA's nuclear-norm error, then each start's error and its reduction ratio; and a
    /// line of Frobenius norms.
    public static func markdown(_ report: Report) -> String {
        let starts = report.rows.filter { $0.type == "total" }
        var header = "| module | QLoRA ‖E‖_* |"
        var rule = "|---|---|"
        for s in starts {
            header += " \(s.method == "qpissa" ? "QPiSSA" : "LoftQ") r\(s.rank) T\(s.iterations) ‖E‖_* (reduction) |"
            rule += "---|"
        }
        var lines = [header, rule]
        var types: [String] = []
        for r in report.rows where !types.contains(r.type) { types.append(r.type) }
        for type in types {
            let rows = report.rows.filter { $0.type == type }
            var line = "| \(type) (\(rows[0].modules)) | " + String(format: "%.2f", rows[0].qloraNuclear) + " |"
            for r in rows { line += String(format: " %.2f (%.1f %%) |", r.nuclear, r.reductionPercent) }
            lines.append(line)
        }
        lines.append("")
        lines.append("Frobenius: " + starts.map {
            String(format: "%@ r%d T%d %.3f vs QLoRA %.3f", $0.method, $0.rank, $0.iterations, $0.frobenius, $0.qloraFrobenius)
        }.joined(separator: "; "))
        return lines.joined(separator: "\n")
    }
}
