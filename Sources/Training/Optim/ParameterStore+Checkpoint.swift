import Foundation
import Formats

/// The small JSON half of an optimiser checkpoint (`optimizer_state.json`); the buffers go to
/// `optimizer.safetensors`.
public struct OptimizerState: Codable, Sendable, Equatable {
    public static let currentVersion = 1

    public struct Entry: Codable, Sendable, Equatable {
        public var name: String
        public var shape: [Int]
    }

    public var formatVersion: Int
    /// Optimiser updates taken (`ParameterStore.step`).
    public var step: Int
    /// The registered tensors in order.
    public var parameters: [Entry]
    /// The optimiser's hyperparameters, if the caller passed them to `save`.
    public var adamW: AdamW?
    /// The learning-rate schedule, if the caller passed it to `save`.
    public var schedule: LRSchedule?

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", step, parameters, adamW = "adamw", schedule
    }
}

extension ParameterStore {
    /// The tensors: for each parameter `<name>`, `param/<name>`, `exp_avg/<name>` and
    /// `exp_avg_sq/<name>` (float32, the registered shape; PyTorch's state names); metadata
    /// `step`. Gradients are not saved (a checkpoint is taken between steps).
    public static let tensorsFileName = "optimizer.safetensors"
    /// The JSON state (`OptimizerState`).
    public static let stateFileName = "optimizer_state.json"

    /// A complete in-memory copy of the state (parameters, moments, step, layout), e.g. to roll
    /// back a diverged step. `Codable`, but `save(to:)` is the checkpoint format: JSON cannot
    /// hold NaN and spends ~10 bytes per value.
    public struct Snapshot: Codable, Sendable, Equatable {
        public var step: Int
        public var views: [ParameterView]
        /// The flat buffers, padding included.
        public var parameters: [Float]
        public var expAvg: [Float]
        public var expAvgSq: [Float]
    }

    public func snapshot() -> Snapshot {
        Snapshot(step: step, views: views,
                 parameters: Array(UnsafeBufferPointer(start: parameters, count: count)),
                 expAvg: Array(UnsafeBufferPointer(start: expAvg, count: count)),
                 expAvgSq: Array(UnsafeBufferPointer(start: expAvgSq, count: count)))
    }

    /// Restores a snapshot taken from a store with the same layout (else `.layoutMismatch`).
    public func restore(_ snapshot: Snapshot) throws(OptimError) {
        guard snapshot.views == views, snapshot.parameters.count == count,
              snapshot.expAvg.count == count, snapshot.expAvgSq.count == count else {
            throw .layoutMismatch(path: "snapshot", problems: ["the snapshot's layout differs from the registered parameters"])
        }
        parameters.update(from: snapshot.parameters, count: count)
        expAvg.update(from: snapshot.expAvg, count: count)
        expAvgSq.update(from: snapshot.expAvgSq, count: count)
        step = snapshot.step
    }

    // MARK: Files

    /// Writes `optimizer.safetensors` and then `optimizer_state.json` into `directory` (which
    /// must exist), each atomically (temporary file, fsync, rename). The step is recorded in
    /// both, and `load` rejects a pair that disagrees, so a crash between the two renames is
    /// detected rather than resumed from silently. Bit-exact: the raw float32 bytes are written.
    public func save(to directory: URL, adamW: AdamW? = nil, schedule: LRSchedule? = nil) throws(OptimError) {
        let tensorsURL = directory.appendingPathComponent(Self.tensorsFileName)
        var specs: [TensorSpec] = []
        for prefix in Self.prefixes {
            for view in views { specs.append(TensorSpec(name: prefix + view.name, dtype: .f32, shape: view.shape)) }
        }
        do throws(SafeTensorsError) {
            let writer = try SafeTensorsWriter(url: tensorsURL, tensors: specs,
                                               metadata: ["format": "pt", "step": String(step)])
            do throws(SafeTensorsError) {
                for (prefix, buffer) in zip(Self.prefixes, [parameters, expAvg, expAvgSq]) {
                    for view in views {
                        try writer.write(prefix + view.name, bytes: UnsafeRawBufferPointer(
                            start: buffer + view.offset, count: view.count * MemoryLayout<Float>.stride))
                    }
                }
                try writer.commit()
            } catch {
                writer.abandon()
                throw error
            }
        } catch {
            throw .safeTensors(error)
        }

        let state = OptimizerState(formatVersion: OptimizerState.currentVersion, step: step,
                                   parameters: views.map { .init(name: $0.name, shape: $0.shape) },
                                   adamW: adamW, schedule: schedule)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let stateURL = directory.appendingPathComponent(Self.stateFileName)
        let data: Data
        do { data = try encoder.encode(state) } catch {
            throw .invalidState(path: stateURL.path, problem: "cannot encode the state: \(ErrorText.plain(error))")
        }
        do { try AtomicFile.write(data, to: stateURL) } catch { throw .safeTensors(error) }
    }

    /// Reads a checkpoint written by `save(to:)` into this store, whose registered layout must
    /// match the file's (names, order-independent; shapes; dtype F32): otherwise
    /// `.layoutMismatch` lists every difference and nothing is changed. Sets the parameters,
    /// moments and `step`; leaves the gradients alone. Returns the JSON state (hyperparameters,
    /// schedule) for the caller to check or reuse.
    @discardableResult
    public func load(from directory: URL) throws(OptimError) -> OptimizerState {
        let stateURL = directory.appendingPathComponent(Self.stateFileName)
        let tensorsURL = directory.appendingPathComponent(Self.tensorsFileName)
        let state: OptimizerState
        do {
            state = try JSONDecoder().decode(OptimizerState.self, from: Data(contentsOf: stateURL))
        } catch {
            throw .invalidState(path: stateURL.path, problem: "cannot read the optimizer state: \(ErrorText.plain(error))")
        }
        guard state.formatVersion == OptimizerState.currentVersion else {
            throw .invalidState(path: stateURL.path, problem: "format_version \(state.formatVersion) is not \(OptimizerState.currentVersion)")
        }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(url: tensorsURL) } catch { throw .safeTensors(error) }
        guard file.metadata["step"] == String(state.step) else {
            throw .invalidState(path: tensorsURL.path, problem: "step \(file.metadata["step"] ?? "(none)") disagrees with "
                + "step \(state.step) in \(Self.stateFileName): the checkpoint was not written completely")
        }

        var problems: [String] = []
        var expected = Set<String>()
        for prefix in Self.prefixes {
            for view in views {
                let name = prefix + view.name
                expected.insert(name)
                guard let info = file.info(name) else {
                    problems.append("\(name): missing")
                    continue
                }
                if info.dtype != .f32 { problems.append("\(name): dtype \(info.dtype.rawValue), expected F32") }
                if info.shape != view.shape { problems.append("\(name): shape \(info.shape), expected \(view.shape)") }
            }
        }
        for info in file.tensors where !expected.contains(info.name) {
            problems.append("\(info.name): not a registered parameter")
        }
        guard problems.isEmpty else { throw .layoutMismatch(path: tensorsURL.path, problems: problems) }

        for (prefix, buffer) in zip(Self.prefixes, [parameters, expAvg, expAvgSq]) {
            for view in views {
                let bytes = file.rawBytes(file.info(prefix + view.name)!)  // checked above
                UnsafeMutableRawPointer(buffer + view.offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            }
        }
        step = state.step
        return state
    }

    private static let prefixes = ["param/", "exp_avg/", "exp_avg_sq/"]
}
