import Adapters
import Distributed
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// Time and check `ProcessGroup.sumInRankOrder` over a range of vector sizes, as OSU's
/// `osu_allreduce` times `MPI_Allreduce`: latency at small sizes, bandwidth at large ones.
///
/// Every rank fills its vector with values that depend on the rank and the index and do not add
/// exactly in Float, so that each rank can compute the rank-ordered sum itself and check the
/// result bit for bit (and that all ranks got the same bits).
public enum SumBenchmark {
    public struct Row: Codable, Sendable {
        public var bytes: Int
        /// Median seconds of one sum (the slowest rank's, as every rank waits for it).
        public var medianSeconds: Double
        /// The fastest of the timed sums: what the transport does when no other process takes
        /// the ranks' cores (on a shared machine the median includes being descheduled).
        public var bestSeconds: Double
        /// bytes / median time: the vector's size over the time to sum it.
        public var algorithmGBPerSecond: Double
        /// 2 (N − 1) / N · bytes / time (median, and best): what each rank sent (and received),
        /// the figure comparable with a link's bandwidth (NCCL's "bus bandwidth").
        public var busGBPerSecond: Double
        public var bestBusGBPerSecond: Double
        /// The result equalled the rank-ordered sum, bit for bit, on every rank.
        public var exact: Bool
    }

    public struct Result: Codable, Sendable {
        public var ranks: Int
        public var rows: [Row]
    }

    /// `repeats` timed sums (after one untimed) per size in `sizes` (floats).
    public static func run(group: any ProcessGroup, sizes: [Int], repeats: Int) -> Result {
        let n = group.size
        var rows: [Row] = []
        for count in sizes {
            let values = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
            defer { values.deallocate() }
            func fill() { for i in 0..<count { values[i] = contribution(rank: group.rank, index: i) } }
            fill()
            group.sumInRankOrder(values, count: count)   // warm-up, and the checked result
            var exact = true
            for i in 0..<count {
                var expected: Float = contribution(rank: 0, index: i)
                for r in 1..<max(1, n) { expected += contribution(rank: r, index: i) }
                if values[i].bitPattern != expected.bitPattern { exact = false; break }
            }
            exact = group.failedRanks(ok: exact).isEmpty
            var times: [Double] = []
            for _ in 0..<repeats {
                fill()
                group.barrier()
                let t0 = DispatchTime.now().uptimeNanoseconds
                group.sumInRankOrder(values, count: count)
                let local = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                times.append(group.allGather([local]).map { $0[0] }.max()!)
            }
            let (median, best) = (times.sorted()[times.count / 2], times.min()!)
            let bytes = count * MemoryLayout<Float>.size
            let sent = 2 * Double(n - 1) / Double(n) * Double(bytes)
            rows.append(Row(bytes: bytes, medianSeconds: median, bestSeconds: best, algorithmGBPerSecond: Double(bytes) / median / 1e9,
                            busGBPerSecond: sent / median / 1e9, bestBusGBPerSecond: sent / best / 1e9, exact: exact))
        }
        return Result(ranks: n, rows: rows)
    }

    /// Rank r's value at index i: a few significant bits that shift with the rank, so that
    /// adding them in another order rounds differently.
    static func contribution(rank: Int, index: Int) -> Float {
        Float(index % 97 + 1) * 1.1e-3 * Float(rank * 7 + 3) + Float(rank + 1) * 1e3
    }
}
