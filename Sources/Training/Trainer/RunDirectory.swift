import Foundation
import Formats

/// The layout of a run directory and its checkpoints.
///
/// A checkpoint is written into `checkpoints/.step-N.tmp-…` and renamed to `checkpoints/step-N`
/// only when complete, so a directory named `step-N` is always whole; older ones beyond
/// `keepCheckpoints` are then removed.
struct RunDirectory {
    let url: URL

    init(_ url: URL) { self.url = url }

    var configURL: URL { url.appendingPathComponent("config.json") }
    var metricsURL: URL { url.appendingPathComponent(MetricsLog.fileName) }
    var checkpointsURL: URL { url.appendingPathComponent("checkpoints") }

    /// What besides the optimiser a checkpoint needs to continue exactly.
    struct TrainerState: Codable {
        var step: Int
        var sampler: SamplerState
    }

    func create(config: TrainConfig) throws {
        try FileManager.default.createDirectory(at: checkpointsURL, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(encoder.encode(config), to: configURL)
        if FileManager.default.fileExists(atPath: metricsURL.path) { try FileManager.default.removeItem(at: metricsURL) }
    }

    func checkResumable(_ config: TrainConfig) throws {
        guard let data = try? Data(contentsOf: configURL),
              let saved = try? JSONDecoder().decode(TrainConfig.self, from: data) else {
            throw TrainerError.notResumable(path: url.path, reason: "no readable config.json")
        }
        guard saved.isResumable(as: config) else {
            throw TrainerError.notResumable(path: url.path, reason: "its configuration differs from this command's (only --steps, --save-every, --eval-every and --lanes may change)")
        }
    }

    /// Complete checkpoints, oldest first.
    func checkpoints() -> [(step: Int, url: URL)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpointsURL.path)) ?? []
        return names.compactMap { name -> (Int, URL)? in
            guard name.hasPrefix("step-"), let step = Int(name.dropFirst(5)) else { return nil }
            return (step, checkpointsURL.appendingPathComponent(name))
        }.sorted { $0.0 < $1.0 }
    }

    func latestCheckpointPath() -> String? { checkpoints().last?.url.path }

    func saveCheckpoint(_ trainer: Trainer) throws -> String {
        let fm = FileManager.default
        try fm.createDirectory(at: checkpointsURL, withIntermediateDirectories: true)
        let step = trainer.store.step
        let final = checkpointsURL.appendingPathComponent("step-\(step)")
        let temporary = checkpointsURL.appendingPathComponent(".step-\(step).tmp-\(UUID().uuidString)")
        do {
            try fm.createDirectory(at: temporary, withIntermediateDirectories: false)
            if let adapters = trainer.trainable, let config = trainer.adapterConfig {
                try adapters.writePEFT(to: temporary.appendingPathComponent("adapter"), config: config)
            }
            try trainer.store.save(to: temporary, adamW: trainer.optimizer, schedule: trainer.schedule)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(encoder.encode(TrainerState(step: step, sampler: trainer.sampler.state)),
                                 to: temporary.appendingPathComponent("trainer_state.json"))
            if fm.fileExists(atPath: final.path) { try fm.removeItem(at: final) }
            guard rename(temporary.path, final.path) == 0 else {
                throw TrainerError.notResumable(path: final.path, reason: "could not rename the checkpoint into place (errno \(errno))")
            }
        } catch {
            try? fm.removeItem(at: temporary)
            throw error
        }
        for old in checkpoints().dropLast(max(1, trainer.config.keepCheckpoints)) { try? fm.removeItem(at: old.url) }
        return final.path
    }

    /// Loads the newest complete checkpoint into the trainer; nil when there is none.
    func restoreLatest(into trainer: Trainer) throws -> Int? {
        // Checkpoints a killed run was writing (`.step-N.tmp-…`) are incomplete: remove them.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: checkpointsURL.path)) ?? []
        where name.hasPrefix(".step-") && name.contains(".tmp-") {
            try? FileManager.default.removeItem(at: checkpointsURL.appendingPathComponent(name))
        }
        guard let latest = checkpoints().last else { return nil }
        let stateURL = latest.url.appendingPathComponent("trainer_state.json")
        let state = try JSONDecoder().decode(TrainerState.self, from: Data(contentsOf: stateURL))
        try trainer.store.load(from: latest.url)
        guard trainer.store.step == state.step else {
            throw TrainerError.notResumable(path: latest.url.path, reason: "optimizer step \(trainer.store.step) ≠ trainer step \(state.step)")
        }
        trainer.sampler.state = state.sampler
        return state.step
    }
}
