import ArgumentParser
import Foundation
import LinearAlgebra

/// `pissa doctor`: what the numerical code runs on, and whether anything stands in its way.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Show the CPU, the BLAS build and the kernels in use, and warn when they are slower than the CPU allows.")

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let m = MachineInfo.current
        if json { try printJSON(m); return }
        let override = m.blasCoreTypeOverride.map { "OPENBLAS_CORETYPE=\($0) set by the environment" } ?? "chosen by the BLAS for this CPU"
        print("""
            CPU            \(m.cpuModel) (\(m.cpuID)), \(m.logicalCores) logical cores
            CPU features   \(m.cpuFeatures.joined(separator: " "))
            BLAS           \(m.blasBuild)
            BLAS kernels   \(m.blasKernel) (\(override))
            pissa kernels  \(m.kernelLevel) (this CPU runs: \(m.kernelLevels.joined(separator: ", ")))
            status         \(m.blasWarning.map { "warning: " + $0 } ?? "ok: every kernel in use is the best this CPU runs")
            """)
    }
}

extension Pissa {
    /// Before any command: if the BLAS runs generic kernels on a CPU that has better ones, say so
    /// once on standard error (`pissa doctor` says it in its report instead).
    static func warnAboutSlowKernels() {
        if CommandLine.arguments.dropFirst().first != "doctor", let warning = MachineInfo.current.blasWarning {
            FileHandle.standardError.write(Data("warning: \(warning)\n".utf8))
        }
    }
}
