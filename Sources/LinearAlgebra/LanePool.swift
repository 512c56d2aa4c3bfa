import CKernels
import Dispatch
import Foundation
import Synchronization

/// Persistent worker threads for the parallel regions of `Parallel`: one per extra core.
///
/// A region's parts are claimed from one atomic word (generation, part count, next part), the
/// caller first: on a loaded machine, where a worker may not be scheduled for a while, the caller
/// takes the parts nobody has claimed instead of waiting. Threads that wait (a worker for a
/// region, the caller for a claimed part to finish) poll, yielding the core between polls, for up
/// to `spinNanoseconds`, then sleep on a semaphore. Measured on a heavily shared machine (load
/// average 11–13 on 2 cores, decoding SmolLM2 from its blocks, three alternated pairs): pure
/// polling for 100 µs lost a quarter of the decoding speed against `concurrentPerform` alone;
/// yielding between polls brought it level (medians 30.6 against 29.6 tok/s).
///
/// Handing out a region costs about a microsecond here, against ≈ 20–40 µs for
/// `DispatchQueue.concurrentPerform` to wake a sleeping thread (docs/PLATFORM.md); decoding runs
/// ≈ 240 regions of 10–100 µs per token. One region at a time: a caller that finds the pool
/// busy (another thread's region, or a region started inside a region) is told so and runs its
/// region another way.
final class LanePool: @unchecked Sendable {
    static let shared = LanePool(workers: max(0, ProcessInfo.processInfo.activeProcessorCount - 1))

    /// How long a waiting thread polls before it sleeps: long enough to span the gaps between a
    /// decoding step's regions, short enough not to hold a core while the process does other work.
    static let spinNanoseconds: UInt64 = 100_000

    let workers: Int
    private let busy = Atomic<Bool>(false)
    /// generation << 32 | parts << 16 | next unclaimed part, of the current region.
    private let claims = Atomic<UInt64>(0)
    private let unfinished = Atomic<Int>(0)
    private let workerWaits: [Waiter]
    private let callerWait = Waiter()
    /// The region's body: written before `claims` announces the region, read after a claim.
    private var body: ((Int) -> Void)?

    init(workers: Int) {
        self.workers = workers
        workerWaits = (0..<workers).map { _ in Waiter() }
        for waiter in workerWaits {
            let thread = Thread { [unowned self] in self.work(waiter) }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Runs `body(part)` for part 0..<parts (at most 65535) and returns when all are done; false
    /// (nothing run) when the pool is busy.
    func run(parts: Int, _ body: (Int) -> Void) -> Bool {
        guard parts >= 1, parts < 1 << 16,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { body in
            self.body = body
            unfinished.store(parts, ordering: .relaxed)
            let generation = (claims.load(ordering: .relaxed) >> 32) &+ 1
            claims.store(generation << 32 | UInt64(parts) << 16, ordering: .sequentiallyConsistent)
            for w in workerWaits { w.wake() }
            runParts(of: generation)
            callerWait.wait { unfinished.load(ordering: .sequentiallyConsistent) == 0 }
            self.body = nil
        }
        return true
    }

    /// Claims and runs parts of region `generation` (nil: the current one) until none is left; the
    /// thread that finishes the region's last part wakes the caller. A claim succeeds only on the
    /// region it read, so a worker late for one region never takes a part of the next.
    private func runParts(of generation: UInt64?) {
        var word = claims.load(ordering: .sequentiallyConsistent)
        while true {
            let (gen, parts, part) = (word >> 32, (word >> 16) & 0xFFFF, word & 0xFFFF)
            guard generation.map({ $0 == gen }) ?? true, part < parts else { return }
            let (claimed, current) = claims.compareExchange(expected: word, desired: word + 1, ordering: .sequentiallyConsistent)
            guard claimed else { word = current; continue }
            body!(Int(part))   // the region cannot end (and its body change) before this part is done
            if unfinished.subtract(1, ordering: .sequentiallyConsistent).newValue == 0 { callerWait.wake() }
            word = claims.load(ordering: .sequentiallyConsistent)
        }
    }

    private func work(_ waiter: Waiter) {
        var seen: UInt64 = 0
        while true {
            waiter.wait { claims.load(ordering: .sequentiallyConsistent) >> 32 != seen }
            seen = claims.load(ordering: .sequentiallyConsistent) >> 32
            runParts(of: seen)
        }
    }

    /// A thread that may be asleep on its semaphore, and the flag that says so.
    private final class Waiter: @unchecked Sendable {
        let asleep = Atomic<Bool>(false)
        let semaphore = DispatchSemaphore(value: 0)

        /// Polls `done`, then sleeps until woken, until `done()` holds. A wake-up may be stale
        /// (meant for an earlier wait): the loop checks again.
        func wait(until done: () -> Bool) {
            var polls = 0
            let start = DispatchTime.now().uptimeNanoseconds
            while !done() {
                // Yielding (after a short pure spin) lets other runnable threads, ours included,
                // take the core on a loaded machine; on an idle one sched_yield returns at once.
                if polls < 64 { pk_pause() } else { sched_yield() }
                polls += 1
                guard polls & 63 == 0, DispatchTime.now().uptimeNanoseconds - start > LanePool.spinNanoseconds else { continue }
                asleep.store(true, ordering: .sequentiallyConsistent)
                if !done() { semaphore.wait() }
                asleep.store(false, ordering: .sequentiallyConsistent)
            }
        }

        /// Wakes the thread if it is asleep (after the condition it waits for became true).
        func wake() {
            if asleep.exchange(false, ordering: .sequentiallyConsistent) { semaphore.signal() }
        }
    }
}
