import Foundation

/// How this process was started: by `mpirun` (OpenMPI sets `OMPI_COMM_WORLD_RANK` and
/// `OMPI_COMM_WORLD_SIZE` in every process it launches) or on its own.
///
/// MPI is initialised only when `mpirun` started more than one process: a plain `pissa train`,
/// and `mpirun -np 1 pissa train`, never touch MPI and behave exactly as without it.
public enum Launch {
    /// The rank and size `mpirun` gave this process; nil when it was not started by `mpirun`.
    public static var mpirun: (rank: Int, size: Int)? {
        let env = ProcessInfo.processInfo.environment
        guard let r = env["OMPI_COMM_WORLD_RANK"].flatMap(Int.init), let n = env["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init),
              n >= 1, (0..<n).contains(r) else { return nil }
        return (r, n)
    }

    /// This process's rank as `mpirun` set it (0 without `mpirun`), known before MPI starts:
    /// the command line uses it to leave output checks to rank 0.
    public static var rank: Int { mpirun?.rank ?? 0 }

    /// The job's process group: MPI's world when `mpirun` started two or more processes, else
    /// `SingleProcess`.
    public static func processGroup() -> any ProcessGroup {
        guard let job = mpirun, job.size > 1 else { return SingleProcess() }
        return MPIProcessGroup()
    }
}
