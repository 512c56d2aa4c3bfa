/// Failures of the numerical routines, with the operation and shapes involved.
public enum LinearAlgebraError: Error, CustomStringConvertible, Equatable {
    /// LAPACK reported a failure (`info` ≠ 0) in `routine` on an `rows`×`cols` matrix.
    case lapackFailure(routine: String, info: Int, rows: Int, cols: Int)
    /// A rank that does not fit the matrix.
    case invalidRank(rank: Int, rows: Int, cols: Int)
    /// The matrix holds NaN or infinity.
    case nonFinite(operation: String)

    public var description: String {
        switch self {
        case let .lapackFailure(routine, info, rows, cols):
            return "\(routine) failed with info \(info) on a \(rows)×\(cols) matrix"
                + (info > 0 ? " (did not converge)" : " (invalid argument \(-info))")
        case let .invalidRank(rank, rows, cols):
            return "rank \(rank) does not fit a \(rows)×\(cols) matrix (it must be 1…\(min(rows, cols)))"
        case let .nonFinite(operation):
            return "\(operation): the matrix contains NaN or infinity"
        }
    }
}
