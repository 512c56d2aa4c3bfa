import COpenBLAS
import Foundation

/// What the numerical code runs on: the CPU, the BLAS build and the kernels it chose, and the level
/// of pissa's own kernels (`CPUKernels`). Every benchmark records it beside its figures.
public struct MachineInfo: Codable, Sendable, Equatable {
    /// `/proc/cpuinfo`'s model name, e.g. "AMD EPYC 9R14" or "Intel(R) Xeon(R) Platinum 8488C".
    public var cpuModel: String
    /// Vendor, family and model numbers, e.g. "AuthenticAMD family 25 model 17" (Zen 4).
    public var cpuID: String
    public var logicalCores: Int
    /// The SIMD features that decide which kernels can run (a subset of the CPU's flags).
    public var cpuFeatures: [String]
    /// The BLAS build (`openblas_get_config`), e.g. "OpenBLAS 0.3.34.481.3 DYNAMIC_ARCH … SkylakeX …".
    public var blasBuild: String
    /// The BLAS kernel family in use (`openblas_get_corename`), e.g. "SkylakeX", "Haswell", "Prescott".
    public var blasKernel: String
    /// `OPENBLAS_CORETYPE` as the environment set it (pissa never sets it), nil when unset.
    public var blasCoreTypeOverride: String?
    /// pissa's own kernel level in use, and every level this CPU supports.
    public var kernelLevel: String
    public var kernelLevels: [String]

    /// Flags worth reporting, in this order.
    static let reportedFeatures = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl",
                                   "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"]

    public static var current: MachineInfo {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        func field(_ name: String) -> String? {
            for line in cpu.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
            return nil
        }
        let flags = Set((field("flags") ?? "").split(separator: " ").map(String.init))
        return MachineInfo(
            cpuModel: field("model name") ?? "unknown",
            cpuID: "\(field("vendor_id") ?? "?") family \(field("cpu family") ?? "?") model \(field("model") ?? "?")",
            logicalCores: ProcessInfo.processInfo.activeProcessorCount,
            cpuFeatures: reportedFeatures.filter(flags.contains),
            blasBuild: String(cString: openblas_get_config()).trimmingCharacters(in: .whitespaces),
            blasKernel: String(cString: openblas_get_corename()),
            blasCoreTypeOverride: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"],
            kernelLevel: CPUKernels.level.description,
            kernelLevels: CPUKernels.supported.map(\.description))
    }

    /// The SIMD level of an OpenBLAS kernel family: 2 for its AVX-512 kernels, 1 for AVX2 + FMA,
    /// 0 for the older or generic ones (Prescott, Nehalem, Sandybridge, …).
    static func blasLevel(_ kernel: String) -> Int {
        switch kernel.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": 2
        case "haswell", "zen": 1
        default: 0
        }
    }

    /// A warning when the BLAS runs kernels of a lower SIMD level than this CPU has (a BLAS that
    /// does not recognise the CPU, or an `OPENBLAS_CORETYPE` from the environment); nil when not.
    public var blasWarning: String? {
        let cpuLevel = kernelLevels.contains("avx512") ? 2 : kernelLevels.contains("avx2") ? 1 : 0
        guard Self.blasLevel(blasKernel) < cpuLevel else { return nil }
        let has = cpuLevel == 2 ? "AVX-512" : "AVX2", better = cpuLevel == 2 ? "SkylakeX" : "Haswell"
        var text = "the BLAS runs its \(blasKernel) kernels on this CPU (\(cpuModel)), which has \(has): matrix products "
            + "run several times slower than they can. "
        if let set = blasCoreTypeOverride {
            text += "OPENBLAS_CORETYPE=\(set) in the environment chose them (pissa leaves it as set); unset it or set OPENBLAS_CORETYPE=\(better)."
        } else {
            text += "This BLAS build (\(blasBuild)) does not recognise the CPU; OPENBLAS_CORETYPE=\(better) selects its \(has) kernels."
        }
        return text
    }
}
