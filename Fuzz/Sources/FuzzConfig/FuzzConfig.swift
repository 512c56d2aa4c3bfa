import Foundation
import Formats
import FuzzSupport

/// `config.json` (`ModelConfig`) and `adapter_config.json` (`PEFTAdapterConfig`) decoding.
/// A decoded config must be usable: the weight sizes the model loader computes from it
/// (with trapping arithmetic, as `ModelWeights` does) must not overflow.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    if let c = try? JSONDecoder().decode(ModelConfig.self, from: bytes) {
        let (C, F, V) = (c.hiddenSize, c.intermediateSize, c.vocabSize)
        let qRows = c.numAttentionHeads * c.headDim, kvRows = c.numKeyValueHeads * c.headDim
        let perLayer = 2 * C + qRows * C + 2 * kvRows * C + C * qRows + 3 * F * C
        let total = V * C * 2 + c.numHiddenLayers * perLayer + C
        precondition(total > 0 && c.numAttentionHeads % c.numKeyValueHeads == 0 && c.headDim % 2 == 0)
        precondition(c.rmsNormEps.isFinite && c.ropeTheta.isFinite)
        _ = try? JSONEncoder().encode(c)
    }
    if let adapter = try? JSONDecoder().decode(PEFTAdapterConfig.self, from: bytes) {
        precondition(adapter.r > 0 && adapter.rankPattern.values.allSatisfy { $0 > 0 })
        precondition(adapter.loraAlpha.isFinite)
        _ = try? adapter.jsonData()
    }
    return 0
}

/// The executable's entry point (see `FuzzSupport.runDriver`).
@_cdecl("FuzzConfig_main")
public func fuzzConfigMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzSupport.runDriver(argc, argv) { data, size in
        guard let data else { return 0 }
        return fuzzConfig(data, size)
    }
}
