import Adapters
import ArgumentParser
import Training

extension InitMethod: ExpressibleByArgument {
    public init?(argument: String) { self.init(peftName: argument) }
}

extension CordaSettings.Method: ExpressibleByArgument {}
extension LoraGASettings.Direction: ExpressibleByArgument {}
extension LoraGASettings.Scale: ExpressibleByArgument {}

/// The options that decide an adapter's start, shared by the commands that create one.
struct AdapterOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Adapter rank r.")
    var rank: Int = AdapterSettings().rank

    @Option(parsing: .unconditional, help: "lora_alpha; the adapter is scaled by alpha / r (alpha / √r with --use-rslora). Default: the rank, as in the paper.")
    var alpha: Float?

    @Option(name: .customLong("init"),
            help: "Initialisation: pissa (exact SVD), pissa_niter_K (randomized SVD, K subspace iterations), lora (Kaiming-uniform A, B = 0), gaussian, loftq (with --quant nf4), olora (QR of W), milora (the bottom r singular triplets), and from --calib-data: corda (SVD of W·C, C the inputs' covariance), eva (A = the inputs' principal components, B = 0), lora_ga (SVD of the gradient).")
    var initMethod: InitMethod = AdapterSettings().initMethod

    @Option(help: "CorDA's mode (PEFT's corda_method): ipm takes the top r triplets of W·C, kpm the bottom r.")
    var cordaMethod: CordaSettings.Method = CordaSettings().method

    @Option(parsing: .unconditional, help: "EVA's rho (≥ 1): a layer's rank may grow to round(rho·r); 1 keeps every rank r.")
    var evaRho: Double = EvaSettings().rho

    @Option(parsing: .unconditional, help: "EVA's tau: components have converged at this cosine similarity between batches.")
    var evaTau: Double = EvaSettings().tau

    @Flag(help: "EVA's whiten: divide each component by √(its singular value).")
    var evaWhiten = false

    @Flag(help: "EVA: use every token's row, not only the supervised ones (PEFT's use_label_mask=False).")
    var evaNoLabelMask = false

    @Flag(help: "EVA: keep lora_alpha when a rank changes (PEFT's adjust_scaling_factors=False).")
    var evaNoAdjustScalingFactors = false

    @Option(help: "LoRA-GA's direction: ArB2r (A from the top r, B from the next r gradient triplets), A2rBr, ArBr or random.")
    var loragaDirection: LoraGASettings.Direction = LoraGASettings().direction

    @Option(help: "LoRA-GA's scale: stable (B × out^¼/√gamma), weight_svd, gd_scale or unit.")
    var loragaScale: LoraGASettings.Scale = LoraGASettings().scale

    @Option(parsing: .unconditional, help: "LoRA-GA's gamma for --loraga-scale stable.")
    var loragaStableGamma: Double = LoraGASettings().stableGamma

    @Option(help: "Comma-separated module-name suffixes to adapt (PEFT's matching), or all-linear.")
    var targets: String = "all-linear"

    @Option(parsing: .unconditional, help: "Extra sketch columns for the randomized SVD (PEFT uses 0; see BENCHMARKS.md).")
    var oversample: Int = AdapterSettings.defaultOversample

    @Flag(help: "Scale by alpha / √r (rsLoRA) instead of alpha / r.")
    var useRslora = false

    @Flag(help: "DoRA (PEFT's use_dora): also train a magnitude per output feature, y = m / ‖W + sBA‖ ⊙ (W + sBA)x.")
    var useDora = false

    @Option(parsing: .unconditional, help: "Seed for the randomized SVD and LoRA starts.")
    var seed: UInt64 = AdapterSettings().seed

    func validate() throws {
        try ArgumentCheck.integer(rank, "--rank", in: 1...Int.max)
        if let alpha { try ArgumentCheck.number(alpha, "--alpha", above: 0) }
        try ArgumentCheck.integer(oversample, "--oversample", in: 0...Int(UInt16.max))
        guard !targetList.isEmpty else { throw ValidationError("--targets names no module; try --targets all-linear.") }
        try ArgumentCheck.number(evaRho, "--eva-rho", above: 1, inclusive: true, atMost: 1000)
        try ArgumentCheck.number(evaTau, "--eva-tau", above: 0, inclusive: true, atMost: 1)
        try ArgumentCheck.number(loragaStableGamma, "--loraga-stable-gamma", above: 0)
    }

    var targetList: [String] {
        targets.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    var settings: AdapterSettings {
        var s = AdapterSettings(rank: rank, alpha: alpha ?? Float(rank), useRSLoRA: useRslora, targets: targetList,
                                initMethod: initMethod, oversample: oversample, seed: seed)
        s.useDoRA = useDora
        s.corda = CordaSettings(method: cordaMethod)
        s.eva = EvaSettings(rho: evaRho, tau: evaTau, useLabelMask: !evaNoLabelMask, whiten: evaWhiten,
                            adjustScalingFactors: !evaNoAdjustScalingFactors)
        s.loraGA = LoraGASettings(direction: loragaDirection, scale: loragaScale, stableGamma: loragaStableGamma)
        return s
    }
}

import Foundation

/// The quantisation of the frozen residual.
enum QuantKind: String, ExpressibleByArgument, CaseIterable {
    case nf4
}

/// `--quant nf4 --iters T --double-quant`: an NF4 residual (QPiSSA with --init pissa…, QLoRA with
/// --init lora, LoftQ with --init loftq), shared by the commands that create or train one.
struct QuantOptions: ParsableArguments {
    @Option(help: "Quantise the frozen residual: nf4 (bitsandbytes' NF4, blocks of 64). Omit for a full-precision residual.")
    var quant: QuantKind?

    @Option(parsing: .unconditional, help: "QPiSSA / LoftQ iterations T (alternating SVD and quantisation; the paper uses 5). Needs --quant.")
    var iters: Int?

    @Flag(help: "Also quantise the absmax values (QLoRA's double quantisation: 8-bit, blocks of 256). Needs --quant.")
    var doubleQuant = false

    func validate() throws {
        if let iters, !(1...1000).contains(iters) {
            throw ValidationError("--iters must be in 1…1000 (got \(iters)); --iters 1 quantises the PiSSA residual once.")
        }
        if quant == nil {
            if iters != nil { throw ValidationError("--iters needs --quant nf4.") }
            if doubleQuant { throw ValidationError("--double-quant needs --quant nf4.") }
        }
    }

    /// The NF4 settings, or nil without --quant.
    var settings: QuantSettings? {
        guard quant != nil else { return nil }
        return QuantSettings(iterations: iters ?? 1, doubleQuant: doubleQuant)
    }
}

/// `--calib-data FILE --calib-batches N`: the data the data-driven starts (corda, eva, lora_ga) learn from.
struct CalibrationOptions: ParsableArguments {
    @Option(help: "Calibration data for --init corda|eva|lora_ga (.jsonl or .txt, as for training; train defaults to --data).")
    var calibData: String?

    @Option(parsing: .unconditional, help: "Calibration batches (EVA cycles through them until it converges).")
    var calibBatches: Int = CalibrationSettings.defaultBatches

    func validate() throws {
        try ArgumentCheck.integer(calibBatches, "--calib-batches", in: 1...1_000_000)
        if let calibData { try PathCheck.existing(calibData, "--calib-data", kind: .file, hint: "a .jsonl or .txt file") }
    }

    var settings: CalibrationSettings { CalibrationSettings(data: calibData, batches: calibBatches) }
}
