import Formats
import Foundation
import TestSupport
import XCTest

/// Choosing the files of a checkpoint directory and checking the index against the shards.
final class ShardedSafeTensorsTests: XCTestCase {
    private let first = "model-00001-of-00002.safetensors"
    private let second = "model-00002-of-00002.safetensors"

    /// Writes an F32 file with one tensor per name; tensor `name` holds `[Float(name.count), 1]`.
    private func writeShard(_ directory: URL, _ file: String, _ names: [String]) throws {
        try SafeTensorsWriter.write(
            url: directory.appendingPathComponent(file),
            tensors: names.map { (TensorSpec(name: $0, dtype: .f32, shape: [2]), [Float($0.count), 1]) })
    }

    private func writeIndex(_ directory: URL, _ weightMap: [String: String]) throws {
        let index: [String: Any] = ["metadata": ["total_size": 24], "weight_map": weightMap]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: index),
                             to: directory.appendingPathComponent("model.safetensors.index.json"))
    }

    /// Two shards and a consistent index.
    private func makeShardedCheckpoint() throws -> URL {
        let directory = try makeScratchDirectory("FormatsTests")
        try writeShard(directory, second, ["lm_head.weight"])
        try writeShard(directory, first, ["embed.weight", "layers.0.weight"])
        try writeIndex(directory, ["embed.weight": first, "layers.0.weight": first, "lm_head.weight": second])
        return directory
    }

    func testIndexedCheckpoint() throws {
        let directory = try makeShardedCheckpoint()
        let model = try ShardedSafeTensors(directory: directory)
        XCTAssertEqual(model.indexFileName, "model.safetensors.index.json")
        XCTAssertEqual(model.files.map(\.url.lastPathComponent), [first, second])
        XCTAssertEqual(model.tensorNames, ["embed.weight", "layers.0.weight", "lm_head.weight"])
        let located = try XCTUnwrap(model.locate("lm_head.weight"))
        XCTAssertEqual(located.file.url.lastPathComponent, second)
        XCTAssertEqual(try located.file.floats(located.info), [14, 1])
        XCTAssertNil(model.locate("missing"))
    }

    func testIndexNamingMissingTensorFails() throws {
        let directory = try makeShardedCheckpoint()
        try writeIndex(directory, ["embed.weight": first, "layers.0.weight": first, "lm_head.weight": second,
                                   "layers.1.weight": second])
        let index = directory.appendingPathComponent("model.safetensors.index.json").path
        let error = expectSafeTensorsError { try ShardedSafeTensors(directory: directory) }
        XCTAssertEqual(error, .tensorMissingFromShard(index: index, tensor: "layers.1.weight", shard: second))
        XCTAssertTrue(error?.description.contains("model.safetensors.index.json") ?? false)
    }

    func testIndexPointingAtWrongShardFails() throws {
        let directory = try makeShardedCheckpoint()
        try writeIndex(directory, ["embed.weight": first, "layers.0.weight": second, "lm_head.weight": second])
        let index = directory.appendingPathComponent("model.safetensors.index.json").path
        XCTAssertEqual(expectSafeTensorsError { try ShardedSafeTensors(directory: directory) },
                       .tensorMissingFromShard(index: index, tensor: "layers.0.weight", shard: second))
    }

    func testIndexNamingMissingShardFails() throws {
        let directory = try makeShardedCheckpoint()
        try FileManager.default.removeItem(at: directory.appendingPathComponent(second))
        let index = directory.appendingPathComponent("model.safetensors.index.json").path
        XCTAssertEqual(expectSafeTensorsError { try ShardedSafeTensors(directory: directory) },
                       .missingShard(index: index, shard: second))
    }

    func testShardTensorMissingFromIndexFails() throws {
        let directory = try makeShardedCheckpoint()
        try writeIndex(directory, ["embed.weight": first, "lm_head.weight": second])
        let index = directory.appendingPathComponent("model.safetensors.index.json").path
        XCTAssertEqual(expectSafeTensorsError { try ShardedSafeTensors(directory: directory) },
                       .tensorNotInIndex(index: index, tensor: "layers.0.weight", shard: first))
    }

    func testInvalidIndexFails() throws {
        let directory = try makeShardedCheckpoint()
        let indexURL = directory.appendingPathComponent("model.safetensors.index.json")
        let contents = [
            "not json", "[]", "{\"metadata\": {}}", "{\"weight_map\": {}}", "{\"weight_map\": {\"a\": 3}}",
            "{\"weight_map\": {\"a\": \"../model.safetensors\"}}",
        ]
        for contents in contents {
            try AtomicFile.write(Data(contents.utf8), to: indexURL)
            let error = expectSafeTensorsError { try ShardedSafeTensors(directory: directory) }
            guard case let .invalidIndex(path, _)? = error else {
                XCTFail("\(contents): expected invalidIndex, got \(String(describing: error))")
                continue
            }
            XCTAssertEqual(path, indexURL.path)
        }
    }

    func testMalformedShardErrorNamesTheShard() throws {
        let directory = try makeShardedCheckpoint()
        try Data("junk".utf8).write(to: directory.appendingPathComponent(second))
        XCTAssertEqual(expectSafeTensorsError { try ShardedSafeTensors(directory: directory) },
                       .fileTooShort(path: directory.appendingPathComponent(second).path, size: 4))
    }

    /// Without an index, `model.safetensors` wins over other files.
    func testSingleFileCheckpoint() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        try writeShard(directory, "model.safetensors", ["w"])
        try writeShard(directory, "adapter_model.safetensors", ["w"])
        let model = try ShardedSafeTensors(directory: directory)
        XCTAssertNil(model.indexFileName)
        XCTAssertEqual(model.files.map(\.url.lastPathComponent), ["model.safetensors"])
        XCTAssertEqual(model.tensorNames, ["w"])
    }

    /// Otherwise every visible `*.safetensors`, sorted by name; names must be unique across them.
    func testAllFilesSortedAndDuplicatesRejected() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        try writeShard(directory, "b.safetensors", ["x"])
        try writeShard(directory, "a.safetensors", ["y", "z"])
        try Data("ignored".utf8).write(to: directory.appendingPathComponent(".hidden.safetensors"))
        try Data("ignored".utf8).write(to: directory.appendingPathComponent("config.json"))
        let model = try ShardedSafeTensors(directory: directory)
        XCTAssertEqual(model.files.map(\.url.lastPathComponent), ["a.safetensors", "b.safetensors"])
        XCTAssertEqual(model.tensorNames, ["y", "z", "x"])
        XCTAssertEqual(model.locate("x")?.file.url.lastPathComponent, "b.safetensors")

        try writeShard(directory, "c.safetensors", ["z"])
        XCTAssertEqual(expectSafeTensorsError { try ShardedSafeTensors(directory: directory) },
                       .duplicateTensor(tensor: "z", firstFile: directory.appendingPathComponent("a.safetensors").path,
                                        secondFile: directory.appendingPathComponent("c.safetensors").path))
    }

    func testEmptyOrMissingDirectoryFails() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        XCTAssertEqual(expectSafeTensorsError { try ShardedSafeTensors(directory: directory) },
                       .noSafeTensorsFiles(directory: directory.path))
        let missing = directory.appendingPathComponent("absent")
        XCTAssertEqual(expectSafeTensorsError { try ShardedSafeTensors(directory: missing) },
                       .io(path: missing.path, operation: "list directory", errno: ENOENT))
    }
}
