import Formats

/// Errors of the optimiser state: parameter registration, schedules and optimiser checkpoints.
public enum OptimError: Error, CustomStringConvertible, Equatable, Sendable {
    /// `register(name:shape:)` was given an empty or repeated name, or a negative dimension.
    case invalidParameter(name: String, shape: [Int], problem: String)
    /// A schedule or optimiser setting out of range (what and why).
    case invalidSetting(String)
    /// A checkpoint whose tensors do not match the registered parameters: every problem found
    /// (missing, unexpected, wrong dtype or shape), not only the first.
    case layoutMismatch(path: String, problems: [String])
    /// The JSON state is missing, unreadable, of an unknown version, or disagrees with the tensors.
    case invalidState(path: String, problem: String)
    /// Reading or writing `optimizer.safetensors` (or writing the JSON state) failed.
    case safeTensors(SafeTensorsError)

    public var description: String {
        switch self {
        case let .invalidParameter(name, shape, problem):
            "cannot register parameter '\(name)' with shape \(shape): \(problem)"
        case let .invalidSetting(message):
            message
        case let .layoutMismatch(path, problems):
            "\(path) does not match the registered parameters:\n  " + problems.joined(separator: "\n  ")
        case let .invalidState(path, problem):
            "\(path): \(problem)"
        case let .safeTensors(error):
            error.description
        }
    }
}
