@testable import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import TestSupport
import XCTest

/// What an adapter is — recorded by this tool, or shown by a start's factors — and the checks
/// `convert` makes with it; the one target matcher of init and train.
final class AdapterRoleTests: XCTestCase {
    private typealias Loaded = PEFTAdapter.Loaded

    /// A PiSSA start of a random W: A = √S·Vᵀ, B = U·√S (the scale left out), as PEFT splits it.
    private func pissaStart(seed: UInt64) throws -> Loaded {
        var rng = SeededGenerator(seed: seed)
        let w = PiSSAConversionTests.random(12, 8, &rng)
        let svd = try SVD(exact: w)
        let r = 3
        var a = Matrix(rows: r, cols: 8), b = Matrix(rows: 12, cols: r)
        for i in 0..<r {
            let s = svd.S[i].squareRoot()
            for j in 0..<8 { a.storage[i * 8 + j] = s * svd.Vh.storage[i * svd.Vh.cols + j] }
            for o in 0..<12 { b.storage[o * r + i] = s * svd.U.storage[o * svd.U.cols + i] }
        }
        return Loaded(config: config, modules: [("model.layers.0.self_attn.q_proj", LoRAFactors(A: a, B: b))])
    }

    private let config = PEFTAdapterConfig(r: 3, loraAlpha: 3, targetModules: ["q_proj"], useRslora: false, taskType: nil, baseModelNameOrPath: nil)

    private func moved(_ adapter: Loaded, by delta: Float = 1e-2) -> Loaded {
        var m = adapter
        m.modules[0].factors.B.storage[0] += delta
        m.modules[0].factors.A.storage[1] -= delta
        m.role = nil
        return m
    }

    func testRolesAreReadFromTheRecordElseFromAStartsFactors() throws {
        let start = try pissaStart(seed: 1)
        XCTAssertEqual(PiSSAConversion.role(of: start), .initial, "BᵀB = AAᵀ: PiSSA's split")
        var zeroB = start
        zeroB.modules[0].factors.B = Matrix(rows: 12, cols: 3)
        XCTAssertEqual(PiSSAConversion.role(of: zeroB), .initial, "B = 0: a LoRA start")
        XCTAssertNil(PiSSAConversion.role(of: moved(start)), "after a step nothing is claimed")
        var recorded = moved(start)
        recorded.role = .trained
        XCTAssertEqual(PiSSAConversion.role(of: recorded), .trained)
    }

    func testConvertChecksWhichAdapterIsWhich() throws {
        let start = try pissaStart(seed: 2)
        var trained = moved(start)
        trained.role = .trained
        func check(_ initial: Loaded, _ adapter: Loaded) throws -> [String] {
            try PiSSAConversion.checkRoles(initial: initial, trained: adapter, initialPath: "I", trainedPath: "T")
        }
        XCTAssertEqual(try check(start, trained), [])
        XCTAssertThrowsError(try check(trained, start)) { XCTAssertEqual($0 as? ConversionError, .swapped(initial: "I", trained: "T")) }
        XCTAssertThrowsError(try check(start, start)) { XCTAssertEqual($0 as? ConversionError, .identical(initial: "I", trained: "T")) }
        XCTAssertThrowsError(try check(start, try pissaStart(seed: 3))) { XCTAssertEqual($0 as? ConversionError, .notTrained(path: "T")) }
        XCTAssertThrowsError(try check(trained, moved(trained))) { XCTAssertEqual($0 as? ConversionError, .notInitial(path: "I")) }
        var converted = trained
        converted.role = .converted
        XCTAssertThrowsError(try PiSSAConversion.refuseConverted(initial: start, trained: converted, initialPath: "I", trainedPath: "T")) {
            XCTAssertEqual($0 as? ConversionError, .alreadyConverted(option: "--adapter", path: "T"))
        }
        var unmoved = start
        unmoved.role = .trained
        XCTAssertEqual(try check(start, unmoved).count, 1, "training that moved nothing is a warning")
        XCTAssertTrue(try check(start, unmoved)[0].contains("training moved nothing"))
        // Adapters of other tools: nothing claimed, so nothing refused but the same factors twice.
        XCTAssertEqual(try check(moved(start, by: 0.5), moved(start)), [])
    }

    func testTheRoleTravelsInTheAdapterFile() throws {
        let dir = try makeScratchDirectory("pissa-roles").appendingPathComponent("a")
        let start = try pissaStart(seed: 4)
        try PEFTAdapter.write(to: dir, modules: start.modules, config: config, role: .trained)
        XCTAssertEqual(try PEFTAdapter.read(directory: dir).role, .trained)
        let metadata = try SafeTensorsFile(url: dir.appendingPathComponent(PEFTAdapterConfig.weightsFileName)).metadata
        XCTAssertEqual(metadata, ["format": "pt", "pissa.role": "trained"], "PEFT's format key stays; ours is beside it")
    }

    /// PEFT's rule (a module matches when its name equals a target or ends with `.target`), one
    /// matcher for init and train, and `target_modules` written as given (all-linear expanded).
    func testTargetsMatchAsPEFTAndAreWrittenAsGiven() {
        let full = "model.layers.1.self_attn.q_proj"
        func config(layers: Int) -> ModelConfig {
            ModelConfig(architecture: "llama", modelType: "llama", hiddenSize: 8, intermediateSize: 8, numHiddenLayers: layers,
                        numAttentionHeads: 2, numKeyValueHeads: 2, headDim: 4, vocabSize: 8, maxPositionEmbeddings: 8, rmsNormEps: 1e-5,
                        tieWordEmbeddings: true, block: .llama(headDim: 4),
                        layers: Array(repeating: LayerAttention(rope: RopeSpec(theta: 1e4)), count: layers))
        }
        func count(_ targets: [String], layers: Int) throws -> Int { try TargetModules.projections(targets, config: config(layers: layers)).count }
        let three = config(layers: 3)
        XCTAssertEqual(try TargetModules.projections([full], config: three).map { three.modulePath($0.projection, layer: $0.layer) }, [full])
        XCTAssertEqual(try count(["q_proj"], layers: 3), 3)
        XCTAssertEqual(try count(["self_attn.q_proj", "down_proj"], layers: 2), 4)
        XCTAssertEqual(try count(["all-linear"], layers: 2), 14)
        XCTAssertEqual(try count(["layers.1.self_attn.q_proj"], layers: 3), 1)
        XCTAssertEqual(try count(["proj"], layers: 3), 0, "a part of a name is not a suffix")
        XCTAssertEqual(TargetModules.peftTargets([full], matched: [full]), [full])
        XCTAssertEqual(TargetModules.peftTargets(["all-linear"], matched: ["m.layers.0.mlp.up_proj", "m.layers.1.mlp.up_proj", "lm_head"]),
                       ["up_proj"])
        XCTAssertEqual(TargetModules.peftTargets(["q_proj", "q_proj", "v_proj"], matched: []), ["q_proj", "v_proj"])
    }

    /// A mixture's experts are named as PEFT names them (`w1`, `experts.0.w1`, full paths); its
    /// router never: all-linear passes it over and naming it is refused, naming it.
    func testExpertsAreTargetsAsPEFTNamesThemAndTheRouterStaysFrozen() throws {
        let mixtral = try ArchitectureRegistry.config(huggingFace: Data(#"""
            {"model_type": "mixtral", "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
             "vocab_size": 8, "num_local_experts": 4, "num_experts_per_tok": 2}
            """#.utf8), path: "config.json")
        func paths(_ targets: [String]) throws -> [String] {
            try TargetModules.projections(targets, config: mixtral).map { mixtral.modulePath($0.projection, layer: $0.layer) }
        }
        XCTAssertEqual(try paths(["all-linear"]).count, 2 * (4 + 4 * 3), "attention and every expert's w1, w2, w3; no router")
        XCTAssertFalse(try paths(["all-linear"]).contains { $0.hasSuffix("block_sparse_moe.gate") })
        XCTAssertEqual(try paths(["w1", "w3"]).count, 2 * 4 * 2)
        XCTAssertEqual(try paths(["experts.0.w1"]), ["model.layers.0.block_sparse_moe.experts.0.w1", "model.layers.1.block_sparse_moe.experts.0.w1"])
        XCTAssertEqual(try paths(["model.layers.1.block_sparse_moe.experts.3.w2"]), ["model.layers.1.block_sparse_moe.experts.3.w2"])
        XCTAssertThrowsError(try paths(["gate"])) { error in
            XCTAssertEqual("\(error)", "model.layers.0.block_sparse_moe.gate is not an adapter target: the router of a mixture of experts "
                + "stays frozen; its experts' w1, w2, w3 are the targets")
        }
    }
}
