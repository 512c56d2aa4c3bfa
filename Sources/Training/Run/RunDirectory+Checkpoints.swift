import Foundation
import Formats

/// A run's checkpoints: `checkpoints/step-N/` holds the adapter (or nothing, in full
/// fine-tuning), the optimiser's state and the trainer's.
///
/// A checkpoint is written into `checkpoints/.step-N.tmp-…` and renamed to `checkpoints/step-N`
/// only when complete, so a directory named `step-N` is always whole; older ones beyond
/// `keepCheckpoints` are then removed. A killed run's unfinished one is removed when the run is
/// next opened (`OutputDirectory`).
extension RunDirectory {
    /// What besides the optimiser a checkpoint needs to continue exactly.
    struct TrainerState: Codable {
        var step: Int
        var sampler: SamplerState
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
        let step = trainer.store.step
        let final = checkpointsURL.appendingPathComponent("step-\(step)")
        try AtomicDirectory.write(final) { temporary in
            if let adapters = trainer.trainable, let config = trainer.adapterConfig {
                try adapters.writePEFT(to: temporary.appendingPathComponent(Self.adapterName), config: config, role: .trained)
            }
            try trainer.store.save(to: temporary, adamW: trainer.optimizer, schedule: trainer.schedule)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(encoder.encode(TrainerState(step: step, sampler: trainer.sampler.state)),
                                 to: temporary.appendingPathComponent("trainer_state.json"))
        }
        // Renamed away before deletion, so that a kill midway never leaves a partial `step-N`.
        for old in checkpoints().dropLast(max(1, trainer.config.keepCheckpoints)) { AtomicDirectory.remove(old.url) }
        return final.path
    }

    /// Loads the newest complete checkpoint into the trainer; nil when there is none.
    func restoreLatest(into trainer: Trainer) throws -> Int? {
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
