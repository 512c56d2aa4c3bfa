import Foundation

/// Runs `body(i)` for i in 0..<count on up to `lanes` threads, handing out indices in order
/// as lanes become free (a shared counter), so that uneven tasks balance themselves.
/// The first error thrown stops new tasks from starting and is rethrown.
public enum Parallel {
    public static func forEach(
        _ count: Int, lanes: Int, _ body: @Sendable (Int) throws -> Void
    ) throws {
        guard count > 0 else { return }
        let lanes = max(1, min(lanes, count))
        if lanes == 1 {
            for i in 0..<count { try body(i) }
            return
        }
        let state = SharedState()
        DispatchQueue.concurrentPerform(iterations: lanes) { _ in
            while let i = state.take(below: count) {
                do { try body(i) } catch { state.fail(error) }
            }
        }
        if let error = state.error { throw error }
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
