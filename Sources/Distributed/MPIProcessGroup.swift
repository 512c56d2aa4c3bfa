import CMPI
import Foundation

/// The ranks of an `mpirun` job (OpenMPI's `MPI_COMM_WORLD`), called from one thread only
/// (`MPI_THREAD_FUNNELED`: the lanes of a step never call MPI).
///
/// Errors: MPI's default handler is kept (`MPI_ERRORS_ARE_FATAL`), so a failed transfer ends the
/// process; when any process of the job dies or exits non-zero, `mpirun` ends all the others.
/// A collective therefore never returns a partial result.
///
/// `sumInRankOrder` is a reduce-scatter followed by an all-gather, both bandwidth-optimal:
/// the vector is cut into N chunks; `MPI_Alltoall` brings chunk k of every rank to rank k, which
/// adds them in rank order 0, 1, …, N−1; `MPI_Allgather` sends each sum to every rank. Each rank
/// sends and receives 2·(N−1)/N of the vector, as a ring all-reduce does, and the result has a
/// fixed summation order (`MPI_Allreduce` promises none). Long vectors go in segments of
/// `segmentFloats`, so the scratch stays small (3 × 16 MB).
public final class MPIProcessGroup: ProcessGroup, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// Floats per segment of `sumInRankOrder`.
    public static let segmentFloats = 1 << 22
    private let world: MPI_Comm
    private var send: UnsafeMutablePointer<Float>?
    private var receive: UnsafeMutablePointer<Float>?
    private var own: UnsafeMutablePointer<Float>?
    private var finalized = false
    public var failureAgreed = false

    /// Initialises MPI (once per process); every rank of the job must call it.
    public init() {
        var provided: Int32 = 0
        Self.check(MPI_Init_thread(nil, nil, cmpi_thread_funneled(), &provided), "MPI_Init_thread")
        world = cmpi_comm_world()
        var r: Int32 = 0, n: Int32 = 0
        Self.check(MPI_Comm_rank(world, &r), "MPI_Comm_rank")
        Self.check(MPI_Comm_size(world, &n), "MPI_Comm_size")
        rank = Int(r)
        size = Int(n)
    }

    deinit {
        for b in [send, receive, own] { b?.deallocate() }
    }

    /// Ends MPI in this process (call once, on every rank, before a normal exit).
    public func finalize() {
        guard !finalized else { return }
        finalized = true
        MPI_Finalize()
    }

    public func sumInRankOrder(_ values: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1, count > 0 else { return }
        let n = size, segmentCapacity = Self.segmentFloats
        let chunkCapacity = (segmentCapacity + n - 1) / n
        if send == nil {
            send = .allocate(capacity: chunkCapacity * n)
            receive = .allocate(capacity: chunkCapacity * n)
            own = .allocate(capacity: chunkCapacity)
        }
        let (send, receive, own) = (send!, receive!, own!)
        var offset = 0
        while offset < count {
            let segment = min(segmentCapacity, count - offset)
            let chunk = (segment + n - 1) / n   // floats each rank sums
            send.update(from: values + offset, count: segment)
            (send + segment).update(repeating: 0, count: chunk * n - segment)
            Self.check(MPI_Alltoall(send, Int32(chunk), cmpi_float(), receive, Int32(chunk), cmpi_float(), world), "MPI_Alltoall")
            own.update(from: receive, count: chunk)
            for r in 1..<n {
                let theirs = receive + r * chunk
                for i in 0..<chunk { own[i] += theirs[i] }
            }
            Self.check(MPI_Allgather(own, Int32(chunk), cmpi_float(), send, Int32(chunk), cmpi_float(), world), "MPI_Allgather")
            (values + offset).update(from: send, count: segment)
            offset += segment
        }
    }

    public func allGather(_ values: [Double]) -> [[Double]] {
        let k = values.count
        var out = [Double](repeating: 0, count: k * size)
        values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                Self.check(MPI_Allgather(v.baseAddress, Int32(k), cmpi_double(), o.baseAddress, Int32(k), cmpi_double(), world), "MPI_Allgather")
            }
        }
        return (0..<size).map { Array(out[($0 * k)..<(($0 + 1) * k)]) }
    }

    public func allGather(_ values: [UInt64]) -> [[UInt64]] {
        let k = values.count
        var out = [UInt64](repeating: 0, count: k * size)
        values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                Self.check(MPI_Allgather(v.baseAddress, Int32(k), cmpi_uint64(), o.baseAddress, Int32(k), cmpi_uint64(), world), "MPI_Allgather")
            }
        }
        return (0..<size).map { Array(out[($0 * k)..<(($0 + 1) * k)]) }
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, from root: Int) {
        guard size > 1 else { return }
        var offset = 0
        repeat {   // MPI counts are 32-bit: 1 GiB at a time
            let n = min(1 << 30, bytes - offset)
            Self.check(MPI_Bcast(buffer + offset, Int32(n), cmpi_byte(), Int32(root), world), "MPI_Bcast")
            offset += n
        } while offset < bytes
    }

    public func barrier() {
        Self.check(MPI_Barrier(world), "MPI_Barrier")
    }

    /// Under the fatal error handler a failing call does not return; this guards the others.
    private static func check(_ code: Int32, _ call: String) {
        precondition(code == cmpi_success(), "\(call) failed with MPI error \(code)")
    }
}
