import Foundation
import LinearAlgebra
import Model

/// EVA, Explained Variance Adaptation (Paischer et al., arXiv 2410.07170; PEFT's
/// `get_eva_state_dict` and `_load_eva_state_dict`), with PEFT's defaults (`EvaSettings`).
///
/// - Every group of projections that read the same input (q, k, v; gate, up; o; down) keeps an
///   incremental PCA of that input with round(ρ·r) components, over the rows of the supervised
///   tokens (`use_label_mask`); a batch with fewer such rows than components is skipped.
/// - The calibration batches are run in turn, cycling, until every group has converged: its
///   components up to the rank it is currently given have cosine similarity ≥ τ with the
///   previous batch's. A converged group stops updating; it starts again if a later
///   redistribution gives it a rank beyond its converged prefix.
/// - After each batch (once every group has components) the ranks are redistributed: the budget
///   Σ r goes to the largest explained-variance ratios of all modules together (each module at
///   most round(ρ·r)); within a group, the module that owns the PCA (q, o, gate, down) gets the
///   largest count. Ties go to the earlier module (PEFT's order: the owners, then k, v, up).
/// - A module's A = its group's top components (÷ √singular value with `whiten`), B = 0; a
///   module given rank 0 gets no adapter. With `adjust_scaling_factors`, lora_alpha × new rank / r.
public enum EVA {
    /// One module's start.
    public struct Module: Sendable {
        public var path: String
        public var layer: Int
        public var projection: Projection
        /// A (rank, in); rank ≥ 1.
        public var a: Matrix
        public var alpha: Float
    }

    public struct Result: Sendable {
        /// Modules with rank ≥ 1, in target order.
        public var modules: [Module]
        /// Modules the redistribution gave rank 0 (no adapter).
        public var dropped: [String]
        /// Calibration batches run (the data is cycled until convergence).
        public var batchesRun: Int
    }

    /// Batches run at most before giving up on convergence.
    public static let maximumBatches = 1000

    public static func run(model: DecoderModel, targets: CalibrationTargets, batches: [CalibrationBatch],
                           settings: AdapterSettings) throws -> Result {
        guard !batches.isEmpty else { throw AdapterError.calibration("no calibration batches") }
        let eva = settings.eva, r = settings.rank
        guard eva.rho >= 1 else { throw AdapterError.calibration("EVA's rho must be at least 1 (got \(eva.rho))") }
        let maxComponents = Int((Double(r) * eva.rho).rounded(.toNearestOrEven))
        // PEFT's module order for the distribution: each group's owner, then the other members.
        let owners = targets.modules.filter { m in !targets.modules.contains { $0.layer == m.layer && isOwner($0.projection, of: m.projection) } }
        let members = targets.modules.filter { m in !owners.contains { $0.path == m.path } }
        let ordered = owners + members
        func ownerPath(_ m: (path: String, layer: Int, projection: Projection)) -> String {
            owners.first { $0.layer == m.layer && DecoderModel.projectionGroup(of: $0.projection).contains(m.projection) }!.path
        }
        let collector = EVAInputs(owners: owners, model: model, components: maxComponents, settings: eva, seed: settings.seed)
        var converged: [String: Bool] = Dictionary(uniqueKeysWithValues: owners.map { ($0.path, false) })
        var ranks: [String: Int] = Dictionary(uniqueKeysWithValues: targets.modules.map { ($0.path, maxComponents) })
        var run = 0
        while true {
            for o in owners {
                let now = collector.hasConverged(o.path, prefix: ranks[o.path]!)
                if !converged[o.path]! && now { converged[o.path] = true; collector.setActive(o.path, false) }
                else if converged[o.path]! && !now { converged[o.path] = false; collector.setActive(o.path, true) }
            }
            if converged.values.allSatisfy({ $0 }) { break }
            guard run < maximumBatches else {
                let open = owners.filter { !converged[$0.path]! }.map(\.path)
                throw AdapterError.calibration("EVA did not converge after \(run) batches (\(open.count) layers open, e.g. \(open[0])); try more or longer --calib-data, or a lower --eva-tau")
            }
            let batch = batches[run % batches.count]
            run += 1
            try collector.run(batch, model: model)
            if owners.allSatisfy({ collector.hasComponents($0.path) }) {
                ranks = distribute(ordered: ordered, owner: ownerPath, ratios: { collector.ratios(ownerPath($0)) },
                                   budget: r * targets.modules.count, maxComponents: maxComponents)
            }
        }
        var modules: [Module] = [], dropped: [String] = []
        for m in targets.modules {
            let rank = ranks[m.path]!
            guard rank > 0 else { dropped.append(m.path); continue }
            guard collector.hasConverged(ownerPath(m), prefix: rank) else {
                throw AdapterError.calibration("\(m.path) was given rank \(rank) before its components converged")
            }
            let a = collector.components(ownerPath(m), count: rank, whiten: eva.whiten)
            let alpha = eva.adjustScalingFactors && rank != r ? settings.alpha * Float(rank) / Float(r) : settings.alpha
            modules.append(Module(path: m.path, layer: m.layer, projection: m.projection, a: a, alpha: alpha))
        }
        return Result(modules: modules, dropped: dropped, batchesRun: run)
    }

    /// Whether `owner` comes before `p` in p's group (so p is not its group's owner).
    static func isOwner(_ owner: Projection, of p: Projection) -> Bool {
        let group = DecoderModel.projectionGroup(of: p)
        return group.contains(owner) && group.firstIndex(of: owner)! < group.firstIndex(of: p)!
    }

    /// PEFT's `_get_rank_distribution`: the `budget` largest ratios over all modules (each module
    /// offering its group's first `maxComponents`), counted per module; then each owner takes the
    /// largest count of its group.
    static func distribute(ordered: [(path: String, layer: Int, projection: Projection)],
                           owner: ((path: String, layer: Int, projection: Projection)) -> String,
                           ratios: ((path: String, layer: Int, projection: Projection)) -> [Double],
                           budget: Int, maxComponents: Int) -> [String: Int] {
        var entries: [(module: Int, value: Double)] = []
        for (i, m) in ordered.enumerated() { for v in ratios(m).prefix(maxComponents) { entries.append((i, v)) } }
        let sorted = entries.enumerated().sorted { a, b in a.element.value > b.element.value || (a.element.value == b.element.value && a.offset < b.offset) }
        var counts = [String: Int](uniqueKeysWithValues: ordered.map { ($0.path, 0) })
        for e in sorted.prefix(budget) { counts[ordered[e.element.module].path]! += 1 }
        for m in ordered {
            let o = owner(m)
            guard o != m.path, counts[o]! < counts[m.path]! else { continue }
            (counts[o], counts[m.path]) = (counts[m.path], counts[o])
        }
        return counts
    }
}

/// EVA's per-group incremental PCAs, fed by the forward pass. A group's inputs (its supervised
/// rows) are copied as the forward pass shows them, and the PCA updates run on the lanes, one
/// group per task, once the batch has passed or ~64 MB of inputs wait (the forward pass runs
/// on the lanes too, so the two never compete). Each group draws from its own generator, so
/// the result does not depend on which lane ran it.
final class EVAInputs: ProjectionInputObserver {
    private final class Group: @unchecked Sendable {
        var pca: IncrementalPCA
        var converged: [Bool]
        var active = true
        var rng: SeededGenerator
        /// Rows waiting for the next update, and their count.
        var pending: [Float] = []
        var pendingRows = 0
        var failure: Error?

        init(components: Int, features: Int, rng: SeededGenerator) {
            pca = IncrementalPCA(components: components, features: features)
            converged = [Bool](repeating: false, count: components)
            self.rng = rng
        }

        /// Updates the PCA with the pending rows and marks the components that moved less than τ.
        func update(tau: Double) {
            guard pendingRows > 0, failure == nil else { return }
            defer { pending = []; pendingRows = 0 }
            let previous = pca.vectors
            do { try pca.partialFit(pending, rows: pendingRows, using: &rng) } catch { failure = error; return }
            guard let previous, let vectors = pca.vectors else { return }
            let d = pca.features
            for i in 0..<pca.components {
                var dot = 0.0, a = 0.0, b = 0.0
                for j in 0..<d {
                    let u = vectors[i * d + j], v = previous[i * d + j]
                    dot += u * v; a += u * u; b += v * v
                }
                converged[i] = dot / max((a * b).squareRoot(), 1e-8) >= tau
            }
        }
    }

    /// Floats of inputs that may wait before the updates run.
    static let pendingLimit = 16 << 20

    private var groups: [String: Group] = [:]
    private let owners: [(path: String, layer: Int, projection: Projection)]
    private let settings: EvaSettings
    private let lanes: Int
    private var mask: [Bool] = []
    private var pendingFloats = 0

    init(owners: [(path: String, layer: Int, projection: Projection)], model: DecoderModel, components: Int, settings: EvaSettings,
         seed: UInt64) {
        self.owners = owners
        self.settings = settings
        lanes = model.lanes
        for (i, o) in owners.enumerated() {
            let width = model.weights.layers[o.layer][o.projection].cols
            groups[o.path] = Group(components: min(components, width), features: width,
                                   rng: SeededGenerator(seed: seed, stream: 42 + UInt64(i)))
        }
    }

    func setActive(_ path: String, _ active: Bool) { groups[path]!.active = active }
    /// Through the last layer with a group still updating: the layers above it are not run.
    var layersNeeded: Int? { (owners.filter { groups[$0.path]!.active }.map(\.layer).max() ?? -1) + 1 }
    func hasComponents(_ path: String) -> Bool { groups[path]!.pca.vectors != nil }
    func hasConverged(_ path: String, prefix: Int) -> Bool { groups[path]!.converged.prefix(prefix).allSatisfy { $0 } }
    func ratios(_ path: String) -> [Double] { groups[path]!.pca.explainedVarianceRatio }

    func components(_ path: String, count: Int, whiten: Bool) -> Matrix {
        let pca = groups[path]!.pca
        var a = Matrix(rows: count, cols: pca.features)
        for i in 0..<count {
            let row = pca.component(i), divisor = whiten ? pca.singularValues[i].squareRoot() : 1
            for (j, v) in row.enumerated() { a[i, j] = Float(v / divisor) }
        }
        return a
    }

    func run(_ batch: CalibrationBatch, model: DecoderModel) throws {
        mask = settings.useLabelMask ? batch.supervised : [Bool](repeating: true, count: batch.tokens.count)
        model.observe([batch], observer: self)
        updatePending()
        if let failure = owners.lazy.compactMap({ self.groups[$0.path]!.failure }).first { throw failure }
    }

    func observe(layer: Int, projections: [Projection], input: UnsafePointer<Float>, rows: Int, width: Int) {
        guard let owner = owners.first(where: { $0.layer == layer && projections.contains($0.projection) }),
              let group = groups[owner.path], group.active, group.failure == nil else { return }
        let n = (0..<rows).reduce(0) { $0 + (mask[$1] ? 1 : 0) }
        guard n >= group.pca.components else { return }   // PEFT skips a batch with too few rows
        group.pending.reserveCapacity(n * width)
        for i in 0..<rows where mask[i] { group.pending.append(contentsOf: UnsafeBufferPointer(start: input + i * width, count: width)) }
        group.pendingRows = n
        pendingFloats += n * width
        if pendingFloats >= Self.pendingLimit { updatePending() }
    }

    /// Runs the waiting updates, one group per task on the lanes.
    private func updatePending() {
        let waiting = owners.compactMap { o in groups[o.path]!.pendingRows > 0 ? groups[o.path]! : nil }
        pendingFloats = 0
        let tau = settings.tau
        try? Parallel.forEach(waiting.count, lanes: lanes) { i in waiting[i].update(tau: tau) }
    }
}
