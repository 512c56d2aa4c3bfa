import Adapters
import ArgumentParser

extension InitMethod: ExpressibleByArgument {
    public init?(argument: String) { self.init(peftName: argument) }
}

/// The options that decide an adapter's start, shared by the commands that create one.
struct AdapterOptions: ParsableArguments {
    @Option(help: "Adapter rank r.")
    var rank: Int = 16

    @Option(help: "lora_alpha; the adapter is scaled by alpha / r (alpha / √r with --use-rslora). Default: the rank, as in the paper.")
    var alpha: Float?

    @Option(name: .customLong("init"),
            help: "Initialisation: pissa (exact SVD), pissa_niter_K (randomized SVD, K subspace iterations), lora (Kaiming-uniform A, B = 0) or gaussian.")
    var initMethod: InitMethod = .pissaNiter(4)

    @Option(help: "Comma-separated module-name suffixes to adapt (PEFT's matching), or all-linear.")
    var targets: String = "all-linear"

    @Option(help: "Extra sketch columns for the randomized SVD (PEFT uses 0; see BENCHMARKS.md).")
    var oversample: Int = AdapterSettings.defaultOversample

    @Flag(help: "Scale by alpha / √r (rsLoRA) instead of alpha / r.")
    var useRslora = false

    @Option(help: "Seed for the randomized SVD and LoRA starts.")
    var seed: UInt64 = 0

    func validate() throws {
        guard rank >= 1 else { throw ValidationError("--rank must be at least 1 (got \(rank)).") }
        if let alpha, !(alpha > 0) { throw ValidationError("--alpha must be positive (got \(alpha)).") }
        guard oversample >= 0 else { throw ValidationError("--oversample must be 0 or more (got \(oversample)).") }
        guard !targetList.isEmpty else { throw ValidationError("--targets names no module; try --targets all-linear.") }
    }

    var targetList: [String] {
        targets.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    var settings: AdapterSettings {
        AdapterSettings(rank: rank, alpha: alpha ?? Float(rank), useRSLoRA: useRslora, targets: targetList,
                        initMethod: initMethod, oversample: oversample, seed: seed)
    }
}

import Foundation
