import Foundation
import Formats
import LinearAlgebra

/// `pissa init` as a library call: decomposes every target weight of a Hugging Face safetensors
/// model and writes, as the PiSSA reference code does,
/// - `out/`: the residual model (every non-weight file copied; each target weight replaced by
///   `W_res` in its original dtype; every other tensor byte-identical; same shard layout), and
/// - `out/pissa_init/` (`out/lora_init/` for LoRA starts): the PEFT adapter, with `init_lora_weights: true`.
///
/// Memory stays near the largest target matrix per lane plus the adapters: tensors are read from
/// the memory map one at a time, their pages released after use, and results written straight
/// to their final offsets.
public enum ModelDecomposer {
    public struct Options: Sendable {
        public var model: URL
        public var output: URL
        public var settings: AdapterSettings
        /// Also measure each rank-r product against the exact SVD's (costs one exact SVD per module).
        public var check: Bool
        /// Matrices decomposed at once; with 2 lanes OpenBLAS runs single-threaded in each.
        public var lanes: Int
        /// Store the residual in NF4 (QPiSSA / QLoRA / LoftQ starts, `QuantizedInitializer`).
        public var quant: QuantSettings?
        /// With `quant`: write deq(Q) in the weight's original dtype instead of the NF4 tensors.
        public var dequantized: Bool
        /// The statistics of a data-driven start (CorDA, EVA, LoRA-GA), by module path.
        public var calibration: CalibrationResult?

        public init(model: URL, output: URL, settings: AdapterSettings, check: Bool = false, lanes: Int = 2,
                    quant: QuantSettings? = nil, dequantized: Bool = false, calibration: CalibrationResult? = nil) {
            self.calibration = calibration
            self.model = model
            self.output = output
            self.settings = settings
            self.check = check
            self.lanes = lanes
            self.quant = quant
            self.dequantized = dequantized
        }
    }

    public enum Progress: Sendable {
        case planned(modules: Int)
        case moduleDone(index: Int, of: Int, module: String, elapsed: Double)
        case writingAdapter
    }

    /// `pissa_init` for PiSSA (the reference code's name), `lora_init` for LoRA's starts, else
    /// `<peft name>_init` (`loftq_init`, `olora_init`, `milora_init`, `corda_init`, `eva_init`, `lora_ga_init`).
    public static func adapterDirectoryName(for method: InitMethod) -> String {
        method.isPiSSA ? "pissa_init" : method == .lora || method == .gaussian ? "lora_init" : "\(method.peftName)_init"
    }

    /// Every name `adapterDirectoryName(for:)` gives, PiSSA's first.
    public static var adapterDirectoryNames: [String] {
        var names: [String] = []
        for m in InitMethod.named where !names.contains(adapterDirectoryName(for: m)) { names.append(adapterDirectoryName(for: m)) }
        return names
    }

    public static func run(_ options: Options, progress: @escaping @Sendable (Progress) -> Void = { _ in }) throws -> InitReport {
        let started = Date()
        let settings = options.settings
        let model = try ShardedSafeTensors(directory: options.model)
        if settings.initMethod == .loftq && options.quant == nil {
            throw AdapterError.needsQuantization(method: settings.initMethod.peftName)
        }
        if settings.initMethod.needsCalibration && options.calibration == nil {
            throw AdapterError.needsCalibration(method: settings.initMethod.peftName)
        }
        let plan = try DecompositionPlan(model: model, settings: settings)
        progress(.planned(modules: plan.jobs.count))
        let createdOutput = !FileManager.default.fileExists(atPath: options.output.path)
        try FileManager.default.createDirectory(at: options.output, withIntermediateDirectories: true)
        do {
            return try decompose(model: model, plan: plan, options: options, started: started, progress: progress)
        } catch {
            // Every file is written atomically; a directory this run created is removed too.
            if createdOutput { try? FileManager.default.removeItem(at: options.output) }
            throw error
        }
    }

    private static func decompose(
        model: ShardedSafeTensors, plan: DecompositionPlan, options: Options, started: Date,
        progress: @escaping @Sendable (Progress) -> Void
    ) throws -> InitReport {
        let settings = options.settings

        let results = (factors: Slots<LoRAFactors>(count: plan.jobs.count), reports: Slots<ModuleReport>(count: plan.jobs.count))
        if let quant = options.quant {
            try writeQuantizedResidualModel(model: model, plan: plan, options: options, quant: quant, results: results,
                                            started: started, progress: progress)
        } else if settings.initMethod.rewritesBase {
            try writeResidualModel(model: model, plan: plan, options: options, results: results, started: started, progress: progress)
        } else {
            for file in model.files {   // the residual is the weight itself: copy the files unchanged
                try AtomicFile.copy(file.url, to: options.output.appendingPathComponent(file.url.lastPathComponent))
            }
            for (i, job) in plan.jobs.enumerated() {
                var rng = SeededGenerator(seed: settings.seed, stream: UInt64(i))
                var shapeOnly = Matrix(rows: job.info.shape[0], cols: job.info.shape[1])
                let t0 = Date()
                if options.calibration?.dropped.contains(job.module) == true {   // EVA gave it rank 0: no adapter
                    results.factors[i] = LoRAFactors(A: Matrix(rows: 0, cols: shapeOnly.cols), B: Matrix(rows: shapeOnly.rows, cols: 0))
                    results.reports[i] = ModuleReport(job: job, seconds: 0)
                    continue
                }
                var factors = try AdapterInitializer.initialize(&shapeOnly, settings: settings,
                                                                calibration: options.calibration?.modules[job.module], using: &rng)
                if settings.useDoRA {
                    factors.magnitude = LoRAFactors.doraMagnitude(frozen: try loadTarget(job, from: model), A: factors.A, B: factors.B,
                                                                  scale: settings.scale)
                }
                results.factors[i] = factors
                results.reports[i] = ModuleReport(job: job, seconds: Date().timeIntervalSince(t0))
                progress(.moduleDone(index: i + 1, of: plan.jobs.count, module: job.module, elapsed: Date().timeIntervalSince(started)))
            }
        }
        // An NF4 residual's shards hold more tensors than the source's: its index is written anew.
        let quantizedIndex = options.quant != nil && !options.dequantized && model.indexFileName != nil
        try copyOtherFiles(from: options.model, to: options.output,
                           except: quantizedIndex ? [ShardedSafeTensors.standardIndexFileName] : [])
        if let quant = options.quant, !options.dequantized {
            try QuantizationConfig.addToModelConfig(in: options.output, quant: quant, plan: plan)
        }

        progress(.writingAdapter)
        let adapterDir = options.output.appendingPathComponent(adapterDirectoryName(for: settings.initMethod))
        let dropped = options.calibration?.dropped ?? []
        let adapted = zip(plan.jobs, results.factors.values).filter { !dropped.contains($0.0.module) }.map { ($0.0.module, $0.1) }
        var config = PEFTAdapterConfig(
            r: settings.rank, loraAlpha: settings.alpha, targetModules: TargetModules.peftTargets(settings.targets, matched: adapted.map(\.0)),
            useRslora: settings.useRSLoRA, taskType: plan.taskType(modelDirectory: options.model),
            baseModelNameOrPath: options.model.path)
        if let calibration = options.calibration {   // EVA's redistributed ranks and alphas
            let patterns = calibration.patterns(ranks: Dictionary(uniqueKeysWithValues: adapted.map { ($0.0, $0.1.rank) }), settings: settings)
            (config.rankPattern, config.alphaPattern) = (patterns.ranks, patterns.alphas)
        }
        try PEFTAdapter.write(to: adapterDir, modules: adapted, config: config, role: .initial)
        let modules = results.reports.values
        return InitReport(
            model: options.model.path, output: options.output.path, adapter: adapterDir.path, settings: settings,
            quant: options.quant, lanes: options.lanes, modules: modules.filter { !dropped.contains($0.module) },
            decompositionSeconds: modules.reduce(0) { $0 + $1.seconds },
            totalSeconds: Date().timeIntervalSince(started), calibrationSeconds: options.calibration?.seconds,
            calibrationBatches: options.calibration?.batchesRun, droppedModules: dropped.sorted())
    }

    // MARK: - Residual model

    private static func writeResidualModel(
        model: ShardedSafeTensors, plan: DecompositionPlan, options: Options, results: (factors: Slots<LoRAFactors>, reports: Slots<ModuleReport>),
        started: Date, progress: @escaping @Sendable (Progress) -> Void
    ) throws {
        let settings = options.settings, check = options.check
        try writeResidualShards(
            model: model, plan: plan, options: options, results: results, started: started, progress: progress,
            specs: { _, info in [TensorSpec(name: info.name, dtype: info.dtype, shape: info.shape)] }
        ) { job, rng, writer in
            var w = try loadTarget(job, from: model)
            let original = check ? w : nil
            let t0 = Date()
            var factors = try AdapterInitializer.initialize(&w, settings: settings, calibration: options.calibration?.modules[job.module],
                                                            using: &rng)
            var report = ModuleReport(job: job, seconds: Date().timeIntervalSince(t0))
            try writer.write(job.info.name, floats: w.storage)
            if settings.useDoRA {   // the norm of the residual as stored, in its dtype (as PEFT's, after its cast)
                factors.magnitude = LoRAFactors.doraMagnitude(frozen: storedAs(job.info.dtype, w), A: factors.A, B: factors.B,
                                                              scale: settings.scale)
            }
            if let original {
                try report.measure(original: original, residual: w, factors: factors, settings: settings)
            }
            return (factors, report)
        }
    }

    /// What both residual models share: one writer per shard, holding `specs(fileIndex, tensor)`
    /// for each of its tensors; every tensor that is not a target copied byte for byte; then each
    /// target job run on the lanes by `residual`, which writes what replaces the target into the
    /// writer it is given and returns the job's factors and report. The shards are committed at
    /// the end, or all abandoned if anything fails.
    static func writeResidualShards(
        model: ShardedSafeTensors, plan: DecompositionPlan, options: Options,
        results: (factors: Slots<LoRAFactors>, reports: Slots<ModuleReport>),
        started: Date, progress: @escaping @Sendable (Progress) -> Void,
        specs: (_ fileIndex: Int, _ tensor: TensorInfo) -> [TensorSpec],
        residual: @escaping @Sendable (DecompositionJob, inout SeededGenerator, SafeTensorsWriter) throws -> (LoRAFactors, ModuleReport)
    ) throws {
        let writers = try model.files.enumerated().map { f, file in
            try SafeTensorsWriter(url: options.output.appendingPathComponent(file.url.lastPathComponent),
                                  tensors: file.tensors.flatMap { specs(f, $0) },
                                  metadata: file.metadata.isEmpty ? ["format": "pt"] : file.metadata)
        }
        do {
            for (f, file) in model.files.enumerated() {
                for info in file.tensors where !plan.isTarget(fileIndex: f, name: info.name) {
                    try writers[f].write(info.name, bytes: file.rawBytes(info))
                    file.release(info)
                }
            }
            let savedThreads = BLAS.threadCount
            BLAS.threadCount = options.lanes > 1 ? 1 : savedThreads
            defer { BLAS.threadCount = savedThreads }
            let done = Counter()
            let seed = options.settings.seed, jobs = plan.jobs
            try Parallel.forEach(jobs.count, lanes: options.lanes) { i in
                let job = jobs[i]
                var rng = SeededGenerator(seed: seed, stream: UInt64(i))
                let (factors, report) = try residual(job, &rng, writers[job.fileIndex])
                results.factors[i] = factors
                results.reports[i] = report
                let n = done.increment()
                progress(.moduleDone(index: n, of: jobs.count, module: job.module, elapsed: Date().timeIntervalSince(started)))
            }
            for writer in writers { try writer.commit() }
        } catch {
            for writer in writers { writer.abandon() }
            throw error
        }
    }

    /// Copies config, tokenizer and every other top-level file that is not a weight file, but
    /// none named in `except`.
    static func copyOtherFiles(from source: URL, to destination: URL, except: Set<String> = []) throws {
        let weightExtensions: Set<String> = ["safetensors", "bin", "pt", "pth", "ckpt", "h5", "msgpack", "onnx", "gguf"]
        let fm = FileManager.default
        for name in try fm.contentsOfDirectory(atPath: source.path).sorted() where !name.hasPrefix(".") && !except.contains(name) {
            let url = source.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue,
                  !weightExtensions.contains(url.pathExtension.lowercased()) || name.hasSuffix(".index.json")
            else { continue }
            try AtomicFile.copy(url, to: destination.appendingPathComponent(name))
        }
    }
}

extension ModelDecomposer {
    /// A target weight in float32, its pages of the memory map released; a NaN or ±Inf entry is
    /// refused (its SVD and residual would be meaningless).
    static func loadTarget(_ job: DecompositionJob, from model: ShardedSafeTensors) throws -> Matrix {
        let file = model.files[job.fileIndex]
        let w = Matrix(rows: job.info.shape[0], cols: job.info.shape[1], storage: try file.floats(job.info))
        file.release(job.info)
        if let bad = w.storage.firstIndex(where: { !$0.isFinite }) {
            throw AdapterError.nonFiniteWeight(path: file.url.path, tensor: job.info.name, index: bad, value: w.storage[bad])
        }
        return w
    }
}

extension ModelDecomposer {
    /// `w` rounded to `dtype` (bf16, f16) and back, as a reader of the written tensor sees it.
    static func storedAs(_ dtype: DType, _ w: Matrix) -> Matrix {
        switch dtype {
        case .bf16: Matrix(rows: w.rows, cols: w.cols, storage: w.storage.map { HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits($0)) })
        case .f16: Matrix(rows: w.rows, cols: w.cols, storage: w.storage.map { HalfPrecision.float(float16Bits: HalfPrecision.float16Bits($0)) })
        default: w
        }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func increment() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}
