import Foundation

/// The processes of one job and the few collective operations data-parallel training needs.
///
/// A run started by `mpirun -np N` has N ranks (`MPIProcessGroup`); any other run is one rank
/// (`SingleProcess`), for which every operation is the identity and nothing is communicated.
/// Every rank must call the same collectives in the same order with the same sizes (as MPI
/// requires); the training loop is written so that it does.
///
/// The sums are **fixed-order**: element i of the result is ((x₀ + x₁) + x₂) + … + x_{N−1},
/// the ranks' values added in rank order, computed once and sent to every rank. So a run is
/// deterministic for a given N (not for a different N: float addition is not associative), and
/// every rank holds the same bits afterwards, which keeps the ranks' optimiser states identical
/// without ever sending the parameters.
public protocol ProcessGroup: AnyObject, Sendable {
    /// This process's index, 0..<size; rank 0 does all file output.
    var rank: Int { get }
    var size: Int { get }
    /// Replaces `count` floats at `values` on every rank by their sum over the ranks, in rank order.
    func sumInRankOrder(_ values: UnsafeMutablePointer<Float>, count: Int)
    /// Every rank's `values` (the same count on every rank), in rank order, on every rank.
    func allGather(_ values: [Double]) -> [[Double]]
    /// Every rank's `values` (the same count on every rank), in rank order, on every rank.
    func allGather(_ values: [UInt64]) -> [[UInt64]]
    /// Copies `bytes` bytes at `buffer` on rank `root` into `buffer` on every other rank.
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, from root: Int)
    /// Waits until every rank has called it.
    func barrier()
    /// Whether a `together` step failed on some rank, so that every rank knows and will stop:
    /// then no rank is left inside a collective, and each may end MPI cleanly.
    var failureAgreed: Bool { get set }
}

extension ProcessGroup {
    public var isRoot: Bool { rank == 0 }
    public var isDistributed: Bool { size > 1 }

    /// Σ over ranks of each value, in rank order (the same bits on every rank).
    public func sumInRankOrder(_ values: [Double]) -> [Double] {
        guard size > 1 else { return values }
        let all = allGather(values)
        return values.indices.map { i in all.dropFirst().reduce(all[0][i]) { $0 + $1[i] } }
    }

    /// This rank's part of `count` items cut into `size` contiguous parts as equal as can be
    /// (their lengths differ by at most one).
    public func part(of count: Int) -> Range<Int> {
        (count * rank / size)..<(count * (rank + 1) / size)
    }

    /// Whether every rank passed `true`; all ranks learn which ranks did not.
    public func failedRanks(ok: Bool) -> [Int] {
        allGather([ok ? 0 : 1] as [UInt64]).enumerated().compactMap { $1[0] == 0 ? nil : $0 }
    }

    /// Root's bytes on every rank (the length is sent first).
    public func broadcast(_ bytes: [UInt8], from root: Int = 0) -> [UInt8] {
        guard size > 1 else { return bytes }
        var length = UInt64(rank == root ? bytes.count : 0)
        broadcast(&length, bytes: 8, from: root)
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(length))
        out.withUnsafeMutableBytes { if let base = $0.baseAddress { broadcast(base, bytes: $0.count, from: root) } }
        return out
    }

    /// Root's value on every rank, sent as JSON (`value` is only read on root).
    public func broadcast<T: Codable>(_ value: T?, from root: Int = 0) throws -> T {
        let bytes = rank == root ? [UInt8](try JSONEncoder().encode(value!)) : []
        return try JSONDecoder().decode(T.self, from: Data(broadcast(bytes, from: root)))
    }
}

/// One process on its own: nothing to communicate.
public final class SingleProcess: ProcessGroup, @unchecked Sendable {
    public init() {}
    public var failureAgreed = false
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func sumInRankOrder(_ values: UnsafeMutablePointer<Float>, count: Int) {}
    public func allGather(_ values: [Double]) -> [[Double]] { [values] }
    public func allGather(_ values: [UInt64]) -> [[UInt64]] { [values] }
    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, from root: Int) {}
    public func barrier() {}
}

/// Why a collective step of a job stopped.
public enum DistributedError: Error, CustomStringConvertible, Equatable {
    /// Other ranks failed at the same point of the run (each prints its own error).
    case peerFailed(ranks: [Int], during: String)
    /// Ranks hold different values where they must hold the same.
    case ranksDiffer(what: String, ranks: [Int], hint: String)

    public var description: String {
        switch self {
        case let .peerFailed(ranks, during):
            "stopped: rank\(ranks.count == 1 ? "" : "s") \(ranks.map(String.init).joined(separator: ", ")) failed while \(during) (see \(ranks.count == 1 ? "its" : "their") message)"
        case let .ranksDiffer(what, ranks, hint):
            "\(what) differs between rank 0 and rank\(ranks.count == 1 ? "" : "s") \(ranks.map(String.init).joined(separator: ", ")); \(hint)"
        }
    }
}

extension ProcessGroup {
    /// Runs `body` on every rank, then agrees: if it threw on any rank, it throws on every rank
    /// (its own error where it failed, `peerFailed` elsewhere), so that no rank goes on to a
    /// collective the others will never reach. `during` names the step for that message.
    public func together<T>(_ during: String, _ body: () throws -> T) throws -> T {
        let result: Result<T, any Error>
        do { result = .success(try body()) } catch { result = .failure(error) }
        var ok = true
        if case .failure = result { ok = false }
        let failed = failedRanks(ok: ok)
        if !failed.isEmpty { failureAgreed = true }
        if case let .failure(error) = result { throw error }
        guard failed.isEmpty else { throw DistributedError.peerFailed(ranks: failed, during: during) }
        return try result.get()
    }
}
