import Foundation

/// Runs `body` for indices 0..<count on up to `lanes` threads, handing out indices in order
/// as lanes become free (a shared counter), so that uneven tasks balance themselves.
/// The first error thrown stops new tasks from starting and is rethrown.
public enum Parallel {
    public static func forEach(_ count: Int, lanes: Int, _ body: @Sendable (Int) throws -> Void) throws {
        try forEach(count, lanes: lanes) { index, _ in try body(index) }
    }

    /// As `forEach`, also passing the lane (0..<lanes) running the task: lanes never run two tasks
    /// at once, so per-lane scratch buffers need no locking.
    public static func forEach(_ count: Int, lanes: Int, _ body: @Sendable (_ index: Int, _ lane: Int) throws -> Void) throws {
        guard count > 0 else { return }
        let lanes = max(1, min(lanes, count))
        if lanes == 1 {
            for i in 0..<count { try body(i, 0) }
            return
        }
        let state = SharedState()
        region(lanes) { lane in
            while let i = state.take(below: count) {
                do { try body(i, lane) } catch { state.fail(error) }
            }
        }
        if let error = state.error { throw error }
    }

    /// Splits 0..<count into `lanes` contiguous chunks and runs `body(range)` for each in parallel
    /// (for row-split products and element-wise kernels). Runs inline when `count < minimumChunk · 2`.
    public static func chunks(_ count: Int, lanes: Int, minimumChunk: Int = 1, _ body: @Sendable (Range<Int>) -> Void) {
        let parts = chunkCount(count, lanes: lanes, minimumChunk: minimumChunk)
        if parts == 1 { body(0..<count); return }
        region(parts) { part in body(chunk(part, of: count, lanes: lanes, minimumChunk: minimumChunk)!) }
    }

    /// Runs body(0..<parts) in parallel: on the persistent `LanePool` when it is free, else
    /// (another region running, or more parts than it has workers) with `concurrentPerform`.
    private static func region(_ parts: Int, _ body: @Sendable (Int) -> Void) {
        if LanePool.shared.run(parts: parts, body) { return }
        DispatchQueue.concurrentPerform(iterations: parts, execute: body)
    }

    /// Chunk `part` of the split `chunks` makes of 0..<count, nil when it makes fewer chunks
    /// (for a lane that runs several splits in one parallel pass).
    public static func chunk(_ part: Int, of count: Int, lanes: Int, minimumChunk: Int = 1) -> Range<Int>? {
        let parts = chunkCount(count, lanes: lanes, minimumChunk: minimumChunk)
        guard part < parts else { return nil }
        return (count * part / parts)..<(count * (part + 1) / parts)
    }

    private static func chunkCount(_ count: Int, lanes: Int, minimumChunk: Int) -> Int {
        max(1, min(lanes, count / max(1, minimumChunk)))
    }

    /// As `chunks`, for bodies that capture raw pointers (element-wise kernels): the caller
    /// promises that the chunks read shared memory only and write disjoint memory, which the
    /// compiler cannot check.
    public static func disjointChunks(_ count: Int, lanes: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        withoutActuallyEscaping(body) { body in
            let unchecked = UncheckedBody(body)
            chunks(count, lanes: lanes, minimumChunk: minimumChunk) { unchecked.body($0) }
        }
    }

    private struct UncheckedBody: @unchecked Sendable {
        let body: (Range<Int>) -> Void
        init(_ body: @escaping (Range<Int>) -> Void) { self.body = body }
    }

    private final class SharedState: @unchecked Sendable {
        private let lock = NSLock()
        private var nextIndex = 0
        private(set) var error: Error?

        func take(below count: Int) -> Int? {
            lock.lock(); defer { lock.unlock() }
            guard error == nil, nextIndex < count else { return nil }
            defer { nextIndex += 1 }
            return nextIndex
        }

        func fail(_ e: Error) {
            lock.lock(); defer { lock.unlock() }
            if error == nil { error = e }
        }
    }
}

/// One result per task, written by parallel lanes into distinct indices (`Parallel.forEach`)
/// and read once all have finished.
public final class Slots<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Value?]

    public init(count: Int) { storage = Array(repeating: nil, count: count) }

    public subscript(i: Int) -> Value {
        get { lock.lock(); defer { lock.unlock() }; return storage[i]! }
        set { lock.lock(); defer { lock.unlock() }; storage[i] = newValue }
    }

    /// Every slot's value; each must have been written.
    public var values: [Value] { lock.lock(); defer { lock.unlock() }; return storage.map { $0! } }
}
