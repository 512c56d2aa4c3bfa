import Foundation
import Formats
import LinearAlgebra
import Model

/// One target weight: where it is and which module it belongs to.
package struct DecompositionJob: Sendable {
    package var module: String
    package var fileIndex: Int
    package var info: TensorInfo
}

/// The validated list of target weights of a model, in file order. Every problem is collected
/// (all unsupported dtypes, all ranks too large) and reported at once, before anything is written.
package struct DecompositionPlan: Sendable {
    package var jobs: [DecompositionJob]
    private var targetNames: Set<String>   // "fileIndex/name"

    package init(model: ShardedSafeTensors, settings: AdapterSettings) throws {
        var jobs: [DecompositionJob] = [], problems: [String] = [], twoD: [String] = []
        // A family this package knows may have modules that are never targets (a mixture's routers).
        let config = try? SafeTensorsWeightSource.readConfig(directory: model.directory)
        let frozen = config.map(TargetModules.frozenModules) ?? []
        for (f, file) in model.files.enumerated() {
            for info in file.tensors {
                guard let module = TargetModules.modulePath(ofTensor: info.name, shape: info.shape) else { continue }
                twoD.append(module)
                if frozen.contains(module) {
                    guard let config, TargetModules.matches(module: module, targets: settings.targets.filter { $0 != TargetModules.allLinear })
                    else { continue }
                    _ = try TargetModules.projections(settings.targets, config: config)   // refuses the router by name
                }
                guard TargetModules.matches(module: module, targets: settings.targets) else { continue }
                let (out, inFeatures) = (info.shape[0], info.shape[1])
                if !info.dtype.isFloatConvertible {
                    problems.append("\(file.url.lastPathComponent): \(info.name) has dtype \(info.dtype.rawValue); only F32, F16 and BF16 weights can be decomposed")
                } else if settings.rank > min(out, inFeatures) {
                    problems.append("\(info.name): rank \(settings.rank) exceeds min(\(out), \(inFeatures)) of its \(out)×\(inFeatures) weight")
                }
                jobs.append(DecompositionJob(module: module, fileIndex: f, info: info))
            }
        }
        guard !jobs.isEmpty else {
            throw AdapterError.noTargetModules(targets: settings.targets, model: model.directory.path, sampleModules: twoD)
        }
        guard problems.isEmpty else { throw AdapterError.unsupportedWeights(problems) }
        self.jobs = jobs
        let targeted = Set(jobs.map(\.module))
        self.otherModules = twoD.filter { !targeted.contains($0) }
        self.targetNames = Set(jobs.map { "\($0.fileIndex)/\($0.info.name)" })
    }

    /// The 2-D modules (Linear layers) of the model that are not targets.
    var otherModules: [String] = []

    func isTarget(fileIndex: Int, name: String) -> Bool { targetNames.contains("\(fileIndex)/\(name)") }

    /// `CAUSAL_LM` when config.json names a `…ForCausalLM` architecture, else nil (PEFT's base model).
    func taskType(modelDirectory: URL) -> String? {
        struct Architectures: Decodable { var architectures: [String]? }
        guard let data = try? Data(contentsOf: modelDirectory.appendingPathComponent("config.json")),
              let config = try? JSONDecoder().decode(Architectures.self, from: data),
              config.architectures?.contains(where: { $0.hasSuffix("ForCausalLM") }) == true
        else { return nil }
        return "CAUSAL_LM"
    }
}

/// What happened to one module, for `--json` and the progress display.
public struct ModuleReport: Codable, Sendable {
    public var module: String
    public var shape: [Int]
    public var dtype: String
    /// Seconds spent decomposing (SVD + residual), excluding reading and writing.
    public var seconds: Double
    /// ‖W_res + scale·B·A − W‖ / ‖W‖ in float32, before the residual is cast to its dtype (`--check`).
    public var reconstructionError: Double?
    /// ‖scale·B·A − P_r‖ / ‖P_r‖ against the exact SVD's best rank-r product P_r (`--check`, PiSSA only).
    public var rankProductError: Double?
    /// ‖W − (deq(Q) + scale·B·A)‖_F / ‖W‖_F of a quantised start (`--quant nf4`).
    public var quantizationError: Double?

    init(job: DecompositionJob, seconds: Double) {
        module = job.module
        shape = job.info.shape
        dtype = job.info.dtype.rawValue
        self.seconds = seconds
    }

    mutating func measure(original: Matrix, residual: Matrix, factors: LoRAFactors, settings: AdapterSettings) throws {
        var rebuilt = residual
        BLAS.gemm(factors.B, factors.A, into: &rebuilt, alpha: settings.scale, beta: 1)
        reconstructionError = rebuilt.relativeDifference(to: original)
        if settings.initMethod.isPiSSA {
            let best = try SVD(exact: original).reconstruct(rank: settings.rank)
            rankProductError = factors.delta(scale: settings.scale).relativeDifference(to: best)
        }
    }
}

/// The summary `pissa init --json` prints.
public struct InitReport: Codable, Sendable {
    public var model: String
    public var output: String
    public var adapter: String
    public var settings: AdapterSettings
    /// The NF4 settings of a quantised start (`--quant nf4`), nil for a full-precision residual.
    public var quant: QuantSettings?
    public var lanes: Int
    public var modules: [ModuleReport]
    /// Sum over modules of the decomposition time (CPU-lane seconds).
    public var decompositionSeconds: Double
    /// Wall time of the decomposition and writing (the calibration pass excluded).
    public var totalSeconds: Double
    /// The calibration pass of a data-driven start (CorDA, EVA, LoRA-GA): wall seconds and batches run.
    public var calibrationSeconds: Double?
    public var calibrationBatches: Int?
    /// EVA: the target modules given rank 0 (no adapter).
    public var droppedModules: [String]?
}

extension InitReport {
    /// The adapted modules grouped by their name with layer numbers replaced by `*`, in first-seen
    /// order, with how many of each: `[("model.layers.*.self_attn.q_proj", 30), …]`. `pissa init`
    /// works on any model by tensor names; this says what it matched.
    public var adaptedModulePatterns: [(pattern: String, count: Int)] {
        var order: [String] = [], counts: [String: Int] = [:]
        for m in modules {
            let pattern = m.module.split(separator: ".", omittingEmptySubsequences: false)
                .map { $0.allSatisfy(\.isNumber) && !$0.isEmpty ? "*" : String($0) }.joined(separator: ".")
            if counts[pattern] == nil { order.append(pattern) }
            counts[pattern, default: 0] += 1
        }
        return order.map { ($0, counts[$0]!) }
    }
}
