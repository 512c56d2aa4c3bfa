/// Errors of adapter initialisation and model decomposition, naming the model and module involved.
public enum AdapterError: Error, CustomStringConvertible, Equatable {
    case noTargetModules(targets: [String], model: String, sampleModules: [String])
    case unsupportedWeights([String])
    case needsQuantization(method: String)
    /// A data-driven start (CorDA, EVA, LoRA-GA) without its calibration statistics.
    case needsCalibration(method: String)
    /// The calibration data cannot make the start (too few rows, no convergence, …).
    case calibration(String)
    case invalidQuantSettings(String)
    /// A target weight holds NaN or ±Inf: its SVD and residual would be meaningless.
    case nonFiniteWeight(path: String, tensor: String, index: Int, value: Float)
    /// A target names a module that adapters never go on (a mixture of experts' router).
    case frozenModule(module: String, reason: String)

    public var description: String {
        switch self {
        case let .noTargetModules(targets, model, sample):
            return "\(model): no module matches the targets \(targets.joined(separator: ",")); "
                + "modules with 2-D weights include: \(sample.prefix(8).joined(separator: ", "))"
        case let .unsupportedWeights(problems):
            return "cannot put an adapter on these weights:\n  " + problems.joined(separator: "\n  ")
        case let .needsQuantization(method):
            return "--init \(method) quantises the residual: add --quant nf4"
        case let .needsCalibration(method):
            return "--init \(method) is made from calibration data: pass --calib-data FILE (JSONL or .txt, as for training)"
        case let .calibration(problem):
            return "calibration: \(problem)"
        case let .invalidQuantSettings(problem):
            return "invalid NF4 settings: \(problem)"
        case let .nonFiniteWeight(path, tensor, index, value):
            return "\(path): tensor '\(tensor)' holds a non-finite value (\(value) at element \(index)); "
                + "refusing to decompose it"
        case let .frozenModule(module, reason):
            return "\(module) is not an adapter target: \(reason)"
        }
    }
}
