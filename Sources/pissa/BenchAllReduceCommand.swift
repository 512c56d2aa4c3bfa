import ArgumentParser
import Bench
import Distributed
import Foundation

/// `mpirun -np N pissa bench allreduce`: the fixed-order gradient sum's latency and bandwidth
/// between the ranks (`SumBenchmark`), the figures docs/SCALING.md's model starts from.
struct BenchAllReduce: ParsableCommand, Diagnosable, RankAware {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Time the ranks' fixed-order gradient sum (run under mpirun; e.g. --mca btl self,tcp for TCP).",
        discussion: """
        Sums vectors of 4 B to --max-bytes over the ranks of an mpirun job, --repeats times each, \
        and prints the median and best times, the algorithm bandwidth (bytes / time) and the bus \
        bandwidth (2 (N − 1) / N · bytes / time, what each rank sent), and whether every rank got \
        the rank-ordered sum bit for bit. Alone it times nothing worth reading.
        """)

    @Option(parsing: .unconditional, help: "Largest vector in bytes (sizes go up by 4× from 4 B).")
    var maxBytes: Int = 64 << 20

    @Option(parsing: .unconditional, help: "Timed sums per size; the median is reported.")
    var repeats: Int = 20

    @Flag(help: "Print the results as JSON on standard output.")
    var json = false

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        try ArgumentCheck.integer(maxBytes, "--max-bytes", in: 4...(1 << 32))
        try ArgumentCheck.integer(repeats, "--repeats", in: 1...1_000_000)
    }

    func run() throws {
        let group = Job.current
        let sizes = Array(sequence(first: 1) { $0 * 4 }.prefix { $0 * 4 <= maxBytes })
        let result = SumBenchmark.run(group: group, sizes: sizes, repeats: repeats)
        guard group.isRoot else { return }
        if json { return try printJSON(result) }
        print("fixed-order sum over \(result.ranks) rank(s)")
        print("      bytes    median µs      best µs   algbw GB/s   busbw GB/s  best busbw  exact")
        for row in result.rows {
            print(String(format: "%11d %12.1f %12.1f %12.3f %12.3f %11.3f  %@", row.bytes, row.medianSeconds * 1e6, row.bestSeconds * 1e6,
                         row.algorithmGBPerSecond, row.busGBPerSecond, row.bestBusGBPerSecond, row.exact ? "yes" : "NO"))
        }
    }
}
