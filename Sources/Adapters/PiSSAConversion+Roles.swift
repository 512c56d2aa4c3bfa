import Foundation
import Formats
import LinearAlgebra

/// Converting needs the start (`--initial`) and the adapter trained from it (`--adapter`), in
/// that order: swapped, the result undoes the training. Each adapter says what it is — this
/// tool records it (`AdapterRole`), and for adapters written elsewhere the factors show a start:
/// B = 0 (a LoRA start) or BᵀB = AAᵀ (PiSSA puts √S in both factors).
extension PiSSAConversion {
    /// Relative tolerance of the PiSSA-start test ‖AAᵀ − BᵀB‖ ≤ tol·‖AAᵀ‖: float32 rounding of an
    /// SVD split stays far below it, one optimiser step far above.
    static let startTolerance: Float = 1e-4

    /// What `adapter` is: its recorded role, else `.initial` when its factors have a start's
    /// structure, else nil (unknown: nothing is claimed).
    public static func role(of adapter: PEFTAdapter.Loaded) -> AdapterRole? {
        if let role = adapter.role { return role }
        let factors = adapter.modules.map(\.factors)
        if factors.allSatisfy({ $0.B.storage.allSatisfy { $0 == 0 } }) { return .initial }
        return factors.allSatisfy(isPiSSASplit) ? .initial : nil
    }

    /// Whether AAᵀ = BᵀB to `startTolerance` (both r × r).
    static func isPiSSASplit(_ f: LoRAFactors) -> Bool {
        var aat = Matrix(rows: f.rank, cols: f.rank), btb = Matrix(rows: f.rank, cols: f.rank)
        BLAS.gemm(f.A, f.A, transposeB: true, into: &aat)
        BLAS.gemm(f.B, transposeA: true, f.B, into: &btb)
        return btb.relativeDifference(to: aat) <= Double(startTolerance)
    }

    /// Refuses an adapter `pissa convert` wrote, in either place: it needs no conversion.
    static func refuseConverted(initial: PEFTAdapter.Loaded, trained: PEFTAdapter.Loaded,
                                initialPath: String, trainedPath: String) throws(ConversionError) {
        if initial.role == .converted { throw .alreadyConverted(option: "--initial", path: initialPath) }
        if trained.role == .converted { throw .alreadyConverted(option: "--adapter", path: trainedPath) }
    }

    /// Refuses adapters in the wrong places (swapped, the same one twice, two starts, a trained
    /// one as the start); returns the warnings of a conversion that is possible but likely not
    /// meant (a trained adapter that training did not move). Call after `refuseConverted`.
    static func checkRoles(initial: PEFTAdapter.Loaded, trained: PEFTAdapter.Loaded,
                           initialPath: String, trainedPath: String) throws(ConversionError) -> [String] {
        let (start, end) = (role(of: initial), role(of: trained))
        let identical = sameFactors(initial, trained)
        if identical && trained.role != .trained { throw .identical(initial: initialPath, trained: trainedPath) }
        if end == .initial && start != .initial { throw .swapped(initial: initialPath, trained: trainedPath) }
        if end == .initial { throw .notTrained(path: trainedPath) }
        if start == .trained { throw .notInitial(path: initialPath) }
        return identical ? ["--adapter \(trainedPath) equals --initial \(initialPath): training moved nothing, so the converted "
            + "LoRA is zero and leaves the original model unchanged"] : []
    }

    /// Every module's factors bit for bit equal.
    static func sameFactors(_ a: PEFTAdapter.Loaded, _ b: PEFTAdapter.Loaded) -> Bool {
        guard a.modules.count == b.modules.count else { return false }
        let other = Dictionary(b.modules.map { ($0.path, $0.factors) }, uniquingKeysWith: { x, _ in x })
        return a.modules.allSatisfy { m in
            guard let f = other[m.path] else { return false }
            return f.A.storage == m.factors.A.storage && f.B.storage == m.factors.B.storage
        }
    }
}
