import Foundation
import LinearAlgebra

/// Name, element type and shape of a tensor to be written.
public struct TensorSpec: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    /// Row-major dimensions; `[]` is a scalar.
    public var shape: [Int]

    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }
}

/// Writes a safetensors file whose layout is fixed up front; tensors may then be written in any
/// order and from several threads (pwrite at their offsets). Nothing appears at `url` until
/// `commit()`: data goes to a temporary file in the same directory, then fsync + rename.
///
/// The layout follows the given order of `tensors`, back to back from offset 0. The header is
/// compact JSON (`__metadata__` first with its keys sorted, then the tensors in layout order, each
/// as `{"dtype":…,"shape":…,"data_offsets":…}`) padded with spaces to a multiple of 8 bytes, as the
/// Python `safetensors` library writes it; with the same order and one metadata key the two produce
/// identical files. An empty `metadata` omits `__metadata__`.
///
/// Every tensor must be written exactly once before `commit()`. If neither `commit()` nor
/// `abandon()` is called, the temporary file is deleted when the writer is deinitialised.
public final class SafeTensorsWriter: @unchecked Sendable {
    public let url: URL
    /// The layout: one entry per spec, in the given order, offsets relative to the data section.
    public let tensors: [TensorInfo]
    /// N, the length of the padded JSON header.
    public let headerLength: Int

    private enum Slot { case pending, writing, done }
    private enum Phase { case open, committing, committed, abandoned }

    private let file: TemporaryFile
    private let indexByName: [String: Int]
    /// Guards `slots`, `phase` and `inFlight`; signalled when a write finishes.
    private let condition = NSCondition()
    private var slots: [Slot]
    private var phase = Phase.open
    private var inFlight = 0

    /// Lays out `tensors` and creates the temporary file (sized to the final file, header written).
    /// Throws `.invalidSpec` for an empty, reserved (`__metadata__`) or repeated name, a negative
    /// dimension or a size that overflows; `.io` if the temporary file cannot be created.
    public init(url: URL, tensors specs: [TensorSpec], metadata: [String: String] = ["format": "pt"]) throws(SafeTensorsError) {
        var layout: [TensorInfo] = []
        var indexByName: [String: Int] = [:]
        var offset = 0
        for spec in specs {
            let problem: String? =
                if spec.name.isEmpty { "the name is empty" }
                else if spec.name == "__metadata__" { "the name is reserved for the metadata" }
                else if indexByName[spec.name] != nil { "the name appears twice" }
                else if spec.shape.contains(where: { $0 < 0 }) { "shape \(spec.shape) has a negative dimension" }
                else { nil }
            if let problem { throw .invalidSpec(path: url.path, tensor: spec.name, problem: problem) }
            guard let bytes = spec.dtype.byteCount(shape: spec.shape),
                  case (let end, false) = offset.addingReportingOverflow(bytes) else {
                throw .invalidSpec(path: url.path, tensor: spec.name, problem: "shape \(spec.shape) is too large")
            }
            indexByName[spec.name] = layout.count
            layout.append(TensorInfo(name: spec.name, dtype: spec.dtype, shape: spec.shape, dataRange: offset..<end))
            offset = end
        }
        var header = Array(Self.headerJSON(layout, metadata: metadata).utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
        guard header.count <= SafeTensorsHeader.maximumLength else {
            throw .headerTooLarge(path: url.path, headerLength: header.count, limit: SafeTensorsHeader.maximumLength)
        }
        guard case (let total, false) = (8 + header.count).addingReportingOverflow(offset) else {
            throw .invalidSpec(path: url.path, tensor: specs.last?.name ?? "", problem: "the file would exceed 2^63 bytes")
        }

        let file = try TemporaryFile(near: url)
        try file.resize(to: total)
        let prefix = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        let head = prefix + header
        try withBytes(of: head) { bytes throws(SafeTensorsError) in try file.write(bytes, at: 0) }

        self.url = url
        self.tensors = layout
        self.headerLength = header.count
        self.file = file
        self.indexByName = indexByName
        self.slots = Array(repeating: .pending, count: layout.count)
    }

    deinit {
        if phase == .open { file.abandon() }
    }

    /// The layout entry for `name`.
    public func info(_ name: String) -> TensorInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// Writes the tensor's bytes (little-endian, exactly `byteCount` of them) at its offset.
    /// Safe to call concurrently for different tensors. Throws `.unknownTensor`,
    /// `.byteCountMismatch`, `.alreadyWritten`, `.writerClosed` or `.io`; after an I/O error the
    /// tensor may be written again.
    public func write(_ name: String, bytes: UnsafeRawBufferPointer) throws(SafeTensorsError) {
        guard let index = indexByName[name] else { throw .unknownTensor(path: url.path, tensor: name) }
        let info = tensors[index]
        guard bytes.count == info.byteCount else {
            throw .byteCountMismatch(path: url.path, tensor: name, expected: info.byteCount, actual: bytes.count)
        }
        try claim(index)
        do {
            try file.write(bytes, at: 8 + headerLength + info.dataRange.lowerBound)
        } catch {
            finish(index, succeeded: false)
            throw error
        }
        finish(index, succeeded: true)
    }

    /// Converts `floats` to the tensor's dtype (F32 as is; F16 and BF16 rounded to nearest even)
    /// and writes them. Throws `.notFloatConvertible` for other dtypes and `.elementCountMismatch`
    /// if the count differs from the shape's, besides the errors of `write(_:bytes:)`.
    public func write(_ name: String, floats: [Float]) throws(SafeTensorsError) {
        guard let info = info(name) else { throw .unknownTensor(path: url.path, tensor: name) }
        guard info.dtype.isFloatConvertible else {
            throw .notFloatConvertible(path: url.path, tensor: name, dtype: info.dtype)
        }
        guard floats.count == info.elementCount else {
            throw .elementCountMismatch(path: url.path, tensor: name, expected: info.elementCount, actual: floats.count)
        }
        if info.dtype == .f32 {
            try withBytes(of: floats) { bytes throws(SafeTensorsError) in try self.write(name, bytes: bytes) }
            return
        }
        var encoded = [UInt16](repeating: 0, count: floats.count)
        encoded.withUnsafeMutableBytes { destination in
            floats.withUnsafeBufferPointer { source in
                guard let from = source.baseAddress, let to = destination.baseAddress else { return }
                if info.dtype == .f16 {
                    HalfPrecision.encodeFloat16(from, into: to, count: source.count)
                } else {
                    HalfPrecision.encodeBFloat16(from, into: to, count: source.count)
                }
            }
        }
        try withBytes(of: encoded) { bytes throws(SafeTensorsError) in try self.write(name, bytes: bytes) }
    }

    /// Checks that every tensor was written, then flushes the file to disk and renames it to
    /// `url` (replacing any file there). Throws `.tensorsNotWritten` listing the missing tensors,
    /// leaving the writer open so they can still be written; on an I/O error the temporary file
    /// is deleted and the writer is closed.
    public func commit() throws(SafeTensorsError) {
        condition.lock()
        guard phase == .open else {
            condition.unlock()
            throw .writerClosed(path: url.path)
        }
        let missing = zip(tensors, slots).filter { $0.1 != .done }.map(\.0.name)
        guard missing.isEmpty else {
            condition.unlock()
            throw .tensorsNotWritten(path: url.path, tensors: missing)
        }
        phase = .committing  // all slots done, so no write is in flight
        condition.unlock()

        do {
            try file.commit()
        } catch {
            file.abandon()
            setPhase(.abandoned)
            throw error
        }
        setPhase(.committed)
    }

    /// Waits for writes in flight, then deletes the temporary file. Nothing is left at `url`
    /// (or an existing file there is untouched). Does nothing after `commit()` or `abandon()`.
    public func abandon() {
        condition.lock()
        guard phase == .open else {
            condition.unlock()
            return
        }
        phase = .abandoned
        while inFlight > 0 { condition.wait() }
        condition.unlock()
        file.abandon()
    }

    /// Lays out and writes `tensors` in the given order and commits; on any error nothing is
    /// left behind.
    public static func write(
        url: URL, tensors: [(spec: TensorSpec, floats: [Float])], metadata: [String: String] = ["format": "pt"]
    ) throws(SafeTensorsError) {
        let writer = try SafeTensorsWriter(url: url, tensors: tensors.map(\.spec), metadata: metadata)
        do {
            for (spec, floats) in tensors { try writer.write(spec.name, floats: floats) }
            try writer.commit()
        } catch {
            writer.abandon()
            throw error
        }
    }

    // MARK: Slot bookkeeping

    private func claim(_ index: Int) throws(SafeTensorsError) {
        condition.lock()
        defer { condition.unlock() }
        guard phase == .open else { throw .writerClosed(path: url.path) }
        guard slots[index] == .pending else { throw .alreadyWritten(path: url.path, tensor: tensors[index].name) }
        slots[index] = .writing
        inFlight += 1
    }

    private func finish(_ index: Int, succeeded: Bool) {
        condition.lock()
        slots[index] = succeeded ? .done : .pending
        inFlight -= 1
        condition.broadcast()
        condition.unlock()
    }

    private func setPhase(_ newPhase: Phase) {
        condition.lock()
        phase = newPhase
        condition.unlock()
    }

    // MARK: Header

    /// Compact JSON in the order and spelling of the Python library (serde_json).
    static func headerJSON(_ layout: [TensorInfo], metadata: [String: String]) -> String {
        var entries: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(JSONText.quote($0)):\(JSONText.quote(metadata[$0] ?? ""))" }
            entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        for info in layout {
            let shape = info.shape.map(String.init).joined(separator: ",")
            entries.append("\(JSONText.quote(info.name)):{\"dtype\":\"\(info.dtype.rawValue)\",\"shape\":[\(shape)],"
                + "\"data_offsets\":[\(info.dataRange.lowerBound),\(info.dataRange.upperBound)]}")
        }
        return "{" + entries.joined(separator: ",") + "}"
    }
}
