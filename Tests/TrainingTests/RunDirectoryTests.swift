import Adapters
import Formats
import Foundation
import Model
import TestSupport
@testable import Training
import XCTest

/// One type owns a run directory's names: the initial adapter under each start's name, the run
/// an adapter belongs to, the rules for opening a run; and the activation memory a run needs is
/// known before it is allocated.
final class RunDirectoryTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-run-directory") }

    private func config(_ output: URL, initMethod: InitMethod = .pissa, adapterPath: String? = nil) -> TrainConfig {
        var c = TrainConfig(model: "/m", data: "/d.jsonl", output: output.path, adapter: AdapterSettings(initMethod: initMethod))
        c.adapterPath = adapterPath
        return c
    }

    private func write(_ config: TrainConfig, to run: URL) throws {
        try FileManager.default.createDirectory(at: run.appendingPathComponent("checkpoints/step-3/adapter"), withIntermediateDirectories: true)
        try JSONEncoder().encode(config).write(to: run.appendingPathComponent("config.json"))
    }

    func testTheInitialAdapterHasTheStartsName() {
        let run = scratch.appendingPathComponent("run")
        XCTAssertEqual(RunDirectory.initialAdapterName(for: config(run)), "pissa_init")
        XCTAssertEqual(RunDirectory.initialAdapterName(for: config(run, initMethod: .pissaNiter(4))), "pissa_init")
        XCTAssertEqual(RunDirectory.initialAdapterName(for: config(run, initMethod: .loftq)), "loftq_init")
        XCTAssertEqual(RunDirectory.initialAdapterName(for: config(run, initMethod: .gaussian)), "lora_init")
        XCTAssertEqual(RunDirectory.initialAdapterName(for: config(run, adapterPath: "/a")), "initial_adapter")
        XCTAssertEqual(RunDirectory.initialAdapterName(for: config(run, initMethod: .olora)), "olora_init")
        XCTAssertEqual(RunDirectory.initialAdapterName(for: config(run, initMethod: .milora)), "milora_init")
        XCTAssertEqual(RunDirectory.initialAdapterName(for: config(run, initMethod: .eva)), "eva_init")
        XCTAssertEqual(Set(RunDirectory.initialAdapterNames), ["pissa_init", "loftq_init", "lora_init", "olora_init", "milora_init", "corda_init",
                                                               "eva_init", "lora_ga_init", "initial_adapter"])
    }

    func testAnAdapterKnowsItsRun() throws {
        let run = scratch.appendingPathComponent("run")
        try write(config(run, initMethod: .loftq), to: run)
        try FileManager.default.createDirectory(at: run.appendingPathComponent("loftq_init"), withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: run.appendingPathComponent("loftq_init/adapter_config.json"))
        for adapter in ["run/adapter", "run/checkpoints/step-3/adapter"] {
            let found = try XCTUnwrap(RunDirectory.enclosing(adapter: scratch.appendingPathComponent(adapter).path), adapter)
            XCTAssertEqual(found.run.url.standardizedFileURL.path, run.standardizedFileURL.path)
            XCTAssertEqual(found.config.adapter.initMethod, .loftq)
            XCTAssertEqual(found.run.existingInitialAdapter?.lastPathComponent, "loftq_init")
        }
        XCTAssertNil(RunDirectory.enclosing(adapter: scratch.appendingPathComponent("run/loftq_init").path), "a start is not a run's adapter")
        XCTAssertNil(RunDirectory.enclosing(adapter: scratch.appendingPathComponent("elsewhere/adapter").path))
    }

    func testANewRunNeedsAnEmptyDirectoryOrOverwrite() throws {
        let run = scratch.appendingPathComponent("run")
        try write(config(run), to: run)
        XCTAssertThrowsError(try RunDirectory.checkNew(run.path, inputs: [], overwrite: false)) { error in
            guard case let .occupied(_, _, kind, found, _)? = error as? OutputError else { return XCTFail("\(error)") }
            XCTAssertEqual(kind, .run)
            XCTAssertEqual(found, .run, "recognised as a run by its config.json, with or without a lock record")
        }
        XCTAssertNoThrow(try RunDirectory.checkNew(run.path, inputs: [], overwrite: true))
        XCTAssertThrowsError(try RunDirectory.checkNew(run.appendingPathComponent("data").path,
                                                       inputs: RunDirectory.inputs(model: "/m", data: run.appendingPathComponent("data/d.jsonl").path,
                                                                                   valid: nil, adapterPath: nil),
                                                       overwrite: true))
        XCTAssertNoThrow(try RunDirectory.checkNew(scratch.appendingPathComponent("fresh").path, inputs: [], overwrite: false))
    }

    /// The estimate grows with every size it depends on, and absurd sizes give a large finite
    /// number (or infinity), never a trap.
    func testActivationMemoryIsEstimatedWithoutOverflow() throws {
        let c = try ArchitectureRegistry.config(huggingFace: Data(#"""
            {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_attention_heads": 9, "num_key_value_heads": 3,
             "num_hidden_layers": 30, "vocab_size": 49152, "rms_norm_eps": 1e-5, "max_position_embeddings": 8192}
            """#.utf8), path: "config.json")
        let base = TrainingScratch.estimatedBytes(config: c, capacityRows: 2048, maxRank: 16, checkpointing: false, lanes: 2)
        XCTAssertGreaterThan(TrainingScratch.estimatedBytes(config: c, capacityRows: 4096, maxRank: 16, checkpointing: false, lanes: 2), base)
        XCTAssertGreaterThan(TrainingScratch.estimatedBytes(config: c, capacityRows: 2048, maxRank: 16, checkpointing: false, lanes: 1000), base)
        XCTAssertGreaterThan(TrainingScratch.estimatedBytes(config: c, capacityRows: 2048, maxRank: 16, checkpointing: false, lanes: 1000,
                                                            trainedHead: true), 25e9,
                             "1000 lanes of a trained head's full logits rows: the 25 GB the issue saw")
        XCTAssertLessThan(TrainingScratch.estimatedBytes(config: c, capacityRows: 2048, maxRank: 16, checkpointing: true, lanes: 2), base)
        let huge = TrainingScratch.estimatedBytes(config: c, capacityRows: Int.max, maxRank: Int.max / 8, checkpointing: false, lanes: Int.max / 256)
        XCTAssertGreaterThan(huge, Double(ProcessInfo.processInfo.physicalMemory))
    }
}
