import ArgumentParser
import Distributed
import Foundation

/// The processes this invocation runs on: the ranks of an `mpirun -np N` job (N ≥ 2), or this
/// process alone. Set once by `Pissa.main` before the command runs.
enum Job {
    nonisolated(unsafe) private static var group: (any ProcessGroup)?

    static var current: any ProcessGroup { group ?? SingleProcess() }

    /// Under `mpirun -np N` (N ≥ 2): starts MPI for a command that divides its work among the
    /// ranks, or refuses any other command (its ranks would all write the same output).
    static func start(_ command: any ParsableCommand) {
        guard let job = Launch.mpirun, job.size > 1 else { return }
        guard command is any RankAware else {
            if job.rank == 0 {
                let name = type(of: command).configuration.commandName ?? "this command"
                printError("Error: pissa \(name) runs as one process; start it without mpirun (train, eval and bench allreduce use the ranks of an mpirun job)")
            }
            exit(1)
        }
        group = MPIProcessGroup()
    }

    /// Ends MPI after a command that succeeded, or failed at a step where every rank learnt of
    /// the failure (`ProcessGroup.together`): every rank reaches it. After any other failure a
    /// rank exits without it, and `mpirun` ends the others.
    static func finish(failed: Bool = false) {
        guard let mpi = group as? MPIProcessGroup, !failed || mpi.failureAgreed else { return }
        mpi.finalize()
    }

    /// What a rank other than 0 puts before its messages.
    static var messagePrefix: String { Launch.rank == 0 ? "" : "rank \(Launch.rank): " }
}

/// A command that runs on every rank of an `mpirun` job and divides its work among them; rank 0
/// prints and writes.
protocol RankAware {}
