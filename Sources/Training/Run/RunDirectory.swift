import Adapters
import Foundation
import Formats

/// A training run's directory: every name in it is spelled here, and every command that reads
/// or writes a run goes through this type.
///
///     RUN/config.json            the run's settings (`TrainConfig`), compared on --resume
///     RUN/pissa_init/            the initial adapter: pissa_init, lora_init, loftq_init, olora_init, … as
///                                `pissa init` names it, initial_adapter for an --adapter-path start
///     RUN/adapter/               the trained adapter (PEFT), valid on the residual model
///     RUN/model/                 full fine-tuning's model instead (Hugging Face directory)
///     RUN/lora_converted/        `train --convert`: the adapter as a LoRA on the original model
///     RUN/metrics.jsonl          one line per step; RUN/loss.svg its curves
///     RUN/checkpoints/step-N/    adapter, optimiser and trainer state (`RunDirectory+Checkpoints`)
///     RUN/.pissa.lock            the lock a writing process holds (`OutputDirectory`)
///
/// Every directory in it is written whole (checkpoints and adapters into a temporary beside,
/// then renamed), so a killed run leaves complete ones; the next process that opens the run
/// removes the temporaries.
public struct RunDirectory: Sendable {
    public let url: URL

    public init(_ url: URL) { self.url = url }

    public static let configName = "config.json"
    public static let adapterName = "adapter"
    public static let modelName = "model"
    public static let convertedName = "lora_converted"
    public static let checkpointsName = "checkpoints"
    /// The initial adapter of a start read from `--adapter-path`.
    public static let loadedStartName = "initial_adapter"
    /// Every initial adapter name, PiSSA's first.
    public static let initialAdapterNames = ModelDecomposer.adapterDirectoryNames + [loadedStartName]

    /// The initial adapter's name for a run of `config`.
    public static func initialAdapterName(for config: TrainConfig) -> String {
        config.adapterPath == nil ? ModelDecomposer.adapterDirectoryName(for: config.adapter.initMethod) : loadedStartName
    }

    /// What a run writes at its top level: what `--overwrite` deletes, and nothing else.
    static var ownNames: [String] {
        [checkpointsName, configName, adapterName, modelName, convertedName, MetricsLog.fileName, LossCurves.fileName] + initialAdapterNames
    }

    public var configURL: URL { url.appendingPathComponent(Self.configName) }
    public var adapterURL: URL { url.appendingPathComponent(Self.adapterName) }
    public var modelURL: URL { url.appendingPathComponent(Self.modelName) }
    public var convertedURL: URL { url.appendingPathComponent(Self.convertedName) }
    public var checkpointsURL: URL { url.appendingPathComponent(Self.checkpointsName) }
    public var metricsURL: URL { url.appendingPathComponent(MetricsLog.fileName) }
    public var lossCurveURL: URL { url.appendingPathComponent(LossCurves.fileName) }

    public func initialAdapterURL(for config: TrainConfig) -> URL {
        url.appendingPathComponent(Self.initialAdapterName(for: config))
    }

    /// The run's initial adapter directory, whichever name it has; nil when there is none.
    public var existingInitialAdapter: URL? {
        Self.initialAdapterNames.map(url.appendingPathComponent)
            .first { FileManager.default.fileExists(atPath: $0.appendingPathComponent(PEFTAdapterConfig.configFileName).path) }
    }

    /// The run's settings; nil when there is no readable `config.json`.
    public func readConfig() -> TrainConfig? {
        guard let data = try? Data(contentsOf: configURL) else { return nil }
        return try? JSONDecoder().decode(TrainConfig.self, from: data)
    }

    /// The run an adapter directory belongs to: `RUN/adapter` or `RUN/checkpoints/step-N/adapter`
    /// of a directory with a readable `config.json`; nil otherwise.
    public static func enclosing(adapter path: String) -> (run: RunDirectory, config: TrainConfig)? {
        let adapter = URL(fileURLWithPath: path).standardizedFileURL
        guard adapter.lastPathComponent == adapterName else { return nil }
        let parent = adapter.deletingLastPathComponent()
        let checkpoints = parent.deletingLastPathComponent()
        let candidates = [parent] + (checkpoints.lastPathComponent == checkpointsName ? [checkpoints.deletingLastPathComponent()] : [])
        for dir in candidates {
            let run = RunDirectory(dir)
            if let config = run.readConfig() { return (run, config) }
        }
        return nil
    }
}

extension RunDirectory {
    /// Opens `config.output` for writing, locked for as long as the returned handle lives:
    /// a new run (`resume` false) only in an empty or new directory, or with `overwrite` (whose
    /// old run is deleted by `prepareNew` once the new one has loaded); `resume` continues the
    /// run there. Paths the run reads may not be, lie inside or contain it.
    static func open(_ config: TrainConfig, resume: Bool, overwrite: Bool) throws -> (RunDirectory, OutputDirectory) {
        let label = resume ? "--resume" : "--out", path = config.output
        let inputs = Self.inputs(model: config.model, data: config.data, valid: config.valid, adapterPath: config.adapterPath)
        if resume {
            guard RunDirectory(try PathResolution.resolve(path, label: label)).readConfig() != nil else {
                throw TrainerError.notResumable(path: path, reason: "no readable config.json; is it a run directory?")
            }
        } else {
            try checkNew(path, inputs: inputs, overwrite: overwrite)
        }
        let output = try OutputDirectory(path, label: label, kind: .run, inputs: inputs, overwrite: overwrite,
                                         reuse: resume ? .always : .never, staged: false)
        return (RunDirectory(output.url), output)
    }

    /// The checks of opening `path` for a new run that change nothing (for `validate()`): it
    /// holds no run (unless `overwrite`) and is none of `inputs`.
    public static func checkNew(_ path: String, inputs: [OutputDirectory.Input], overwrite: Bool) throws(OutputError) {
        let url = try OutputDirectory.check(path, kind: .run, inputs: inputs, overwrite: true, reuse: .never)
        let run = RunDirectory(url)
        if !overwrite && run.readConfig() != nil {
            throw .occupied(label: "--out", path: path, kind: .run, found: .run, entries: OutputDirectory.entries(of: url))
        }
        try OutputDirectory.check(path, kind: .run, inputs: [], overwrite: overwrite, reuse: .never)
    }

    /// What a run reads, by option: it may not write where it reads.
    public static func inputs(model: String, data: String, valid: String?, adapterPath: String?) -> [OutputDirectory.Input] {
        [.init("--model", model), .init("--data", data)] + (valid.map { [.init("--valid", $0)] } ?? [])
            + (adapterPath.map { [.init("--adapter-path", $0)] } ?? [])
    }

    /// Before a new run writes anything: deletes what an earlier run wrote here (checkpoints
    /// first), keeping every other file.
    func prepareNew() {
        for name in Self.ownNames { AtomicDirectory.remove(url.appendingPathComponent(name)) }
    }

    /// Starts a new run: config.json is its first entry, so that a run killed at any moment is
    /// either empty (a new `train` may start there) or resumable (`--resume` finds its config).
    /// With `checkpoints/` made first, a kill between the two left a run that neither could use.
    func create(config: TrainConfig) throws {
        prepareNew()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(encoder.encode(config), to: configURL)
        try FileManager.default.createDirectory(at: checkpointsURL, withIntermediateDirectories: true)
    }

    func checkResumable(_ config: TrainConfig) throws {
        guard let saved = readConfig() else {
            throw TrainerError.notResumable(path: url.path, reason: "no readable config.json")
        }
        guard saved.isResumable(as: config) else {
            throw TrainerError.notResumable(path: url.path, reason: "its configuration differs from this command's (only --steps, --save-every, --eval-every and --lanes may change)")
        }
    }
}
