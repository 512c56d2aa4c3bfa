#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a command writes into an output directory. A directory holding one kind may be replaced
/// by the same kind without `--overwrite` (except a training run, which is continued with
/// `--resume`); any other non-empty directory needs `--overwrite`.
public enum OutputKind: String, Codable, Sendable, CaseIterable {
    /// `pissa init`: a residual model and its initial adapter.
    case residualModel = "init"
    /// `pissa train`: a run directory.
    case run = "train"
    /// `pissa convert`: a PEFT LoRA adapter for the original model.
    case adapter = "convert"
    /// `pissa merge` and `pissa convert-model`: a Hugging Face model directory.
    case model = "model"
    /// `pissa export --format mlx`: an mlx-lm adapter directory.
    case mlxAdapter = "mlx-adapter"
    /// `pissa compare`: a report directory with its runs.
    case comparison = "compare"
    /// `pissa data math`: generated training data.
    case mathData = "math-data"
    /// `pissa spectrum`: singular values of a model's target weights (JSON and figures).
    case spectrum = "spectrum"

    /// What it is, for messages: "the output of `pissa init` (a residual model and its initial adapter)".
    public var phrase: String {
        switch self {
        case .residualModel: "the output of `pissa init` (a residual model and its initial adapter)"
        case .run: "a training run of `pissa train`"
        case .adapter: "an adapter written by `pissa convert`"
        case .model: "a model written by `pissa merge` or `pissa convert-model`"
        case .mlxAdapter: "an mlx adapter written by `pissa export`"
        case .comparison: "a report of `pissa compare`"
        case .mathData: "data written by `pissa data math`"
        case .spectrum: "the spectra written by `pissa spectrum`"
        }
    }
}

/// Why an output path cannot be written. Every message names the option and the path and says
/// what to type instead.
public enum OutputError: Error, CustomStringConvertible, Equatable, Sendable {
    case symlinkLoop(label: String, path: String)
    /// The output is, lies inside, or contains an input (`relation` of the output to the input).
    /// `resolved` is where the two meet, links followed.
    case overlapsInput(label: String, path: String, input: String, inputPath: String, relation: PathResolution.Relation, resolved: String)
    case notADirectory(label: String, path: String)
    case isADirectory(label: String, path: String, hint: String)
    /// A non-empty directory that this kind of output may not replace without `--overwrite`;
    /// `found` is what a previous command recorded there (nil: not written by this tool).
    case occupied(label: String, path: String, kind: OutputKind, found: OutputKind?, entries: [String])
    /// A non-empty file output that this tool did not write.
    case foreignFile(label: String, path: String, expected: String)
    /// Another process holds the directory's lock (`pid` nil when it could not be read).
    case locked(label: String, path: String, pid: Int32?)
    case io(label: String, path: String, operation: String, errno: Int32)

    /// Whether the user asked for something that cannot be right (a usage error), rather than
    /// something that went wrong while doing it.
    public var isUsageError: Bool {
        switch self {
        case .locked, .io: false
        default: true
        }
    }

    public var description: String {
        switch self {
        case let .symlinkLoop(label, path):
            return "\(label) \(path) is a loop of symbolic links (too many levels of links); point \(label) at a real directory"
        case let .overlapsInput(label, path, input, inputPath, relation, resolved):
            let how = switch relation {
            case .same: "is the same place as"
            case .inside: "lies inside"
            case .contains, .unrelated: "contains"
            }
            let spelled = relation == .same && path != inputPath ? " (both are \(resolved))" : ""
            return "\(label) \(path) \(how) \(input) \(inputPath)\(spelled), which this command reads; "
                + "pissa never writes where it reads: choose another \(label)"
        case let .notADirectory(label, path):
            return "\(label) \(path) is a file; pass a directory (it is created if needed)"
        case let .isADirectory(label, path, hint):
            return "\(label) \(path) is a directory; pass \(hint)"
        case let .occupied(label, path, kind, found, entries):
            if kind == .run && found == .run {
                return "\(label) \(path) already holds a training run; continue it with `pissa train --resume \(path)`, "
                    + "or add --overwrite to start a new run there (its checkpoints, adapter and metrics are deleted first)"
            }
            if let found {
                return "\(label) \(path) holds \(found.phrase), not \(kind.phrase); choose another \(label), "
                    + "or add --overwrite to replace it"
            }
            let shown = entries.sorted().prefix(3).joined(separator: ", ") + (entries.count > 3 ? ", …" : "")
            return "\(label) \(path) is not empty and was not written by pissa (it holds \(shown)); choose a new or empty "
                + "directory, or add --overwrite to replace files of the same names (other files are kept)"
        case let .foreignFile(label, path, expected):
            return "\(label) \(path) exists and is not \(expected) written by pissa; choose another \(label), or add --overwrite to replace it"
        case let .locked(label, path, pid):
            let holder = pid.map { "another pissa process (pid \($0))" } ?? "another pissa process"
            return "\(label) \(path) is being written by \(holder); wait for it to finish, or choose another \(label)"
        case let .io(label, path, operation, code):
            var text = "\(label) \(path): cannot \(operation): \(String(cString: strerror(code)))"
            if code == EROFS || code == EACCES || code == EPERM { text += "; choose a writable \(label)" }
            return text
        }
    }
}
