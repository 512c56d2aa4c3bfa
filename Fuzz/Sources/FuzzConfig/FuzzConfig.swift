import Foundation
import Formats
import FuzzSupport
import Model

/// `config.json` (every family's decoder, through `ArchitectureRegistry`) and `adapter_config.json`
/// (`PEFTAdapterConfig`) decoding. A decoded config must be usable: the weight sizes the model
/// loader computes from it (with trapping arithmetic, as `ModelWeights` does) must not overflow,
/// and it must encode back to a config.json its family reads.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    if let c = try? ArchitectureRegistry.config(huggingFace: bytes, path: "config.json") {
        let (C, F, V) = (c.hiddenSize, c.intermediateSize, c.vocabSize)
        let qRows = c.numAttentionHeads * c.headDim, kvRows = c.numKeyValueHeads * c.headDim
        let perLayer = 2 * C + qRows * C + 2 * kvRows * C + C * qRows + 3 * F * C
        let total = V * C * 2 + c.numHiddenLayers * perLayer + C
        precondition(total > 0 && c.numAttentionHeads % c.numKeyValueHeads == 0 && c.headDim % 2 == 0)
        precondition(c.rmsNormEps.isFinite && c.layers.count == c.numHiddenLayers && c.layers.allSatisfy { $0.rope.theta.isFinite })
        _ = ModelTensors.expected(c)
        let family = ArchitectureRegistry.architecture(of: c)
        if let json = try? family.huggingFaceConfigJSON(c), var back = try? family.config(huggingFace: json, path: "re-encoded") {
            back.modelType = c.modelType   // written as the family's canonical model_type
            precondition(back == c, "config.json does not round-trip")
        } else {
            preconditionFailure("a decoded config must encode to one its family reads")
        }
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
