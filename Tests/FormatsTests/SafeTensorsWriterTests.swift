import Formats
import Foundation
import Synchronization
import TestSupport
import XCTest

/// Atomicity, bookkeeping and concurrency of `SafeTensorsWriter`, and `AtomicFile`.
final class SafeTensorsWriterTests: XCTestCase {
    private let specs = [
        TensorSpec(name: "a", dtype: .f32, shape: [2, 2]),
        TensorSpec(name: "b", dtype: .bf16, shape: [3]),
        TensorSpec(name: "c", dtype: .u8, shape: [5]),
    ]

    private func writeAll(_ writer: SafeTensorsWriter) throws {
        try writer.write("a", floats: [1, 2, 3, 4])
        try writer.write("b", floats: [0.5, -1, 8])
        try [UInt8](1...5).withUnsafeBytes { try writer.write("c", bytes: $0) }
    }

    func testNothingAppearsBeforeCommit() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        let url = directory.appendingPathComponent("model.safetensors")
        let writer = try SafeTensorsWriter(url: url, tensors: specs)
        try writeAll(writer)
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
        let pending = try directoryListing(directory)
        XCTAssertEqual(pending.count, 1)
        XCTAssertTrue(pending[0].hasPrefix(".model.safetensors.tmp-"), pending[0])

        try writer.commit()
        XCTAssertEqual(try directoryListing(directory), ["model.safetensors"])
        XCTAssertEqual(try SafeTensorsFile(url: url).tensors.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(expectSafeTensorsError { try writer.commit() }, .writerClosed(path: url.path))
        XCTAssertEqual(expectSafeTensorsError { try writer.write("a", floats: [1, 2, 3, 4]) }, .writerClosed(path: url.path))
        writer.abandon()  // no effect after commit
        XCTAssertTrue(FileManager.default.fileExists(atPath: url.path))
    }

    func testExistingFileStaysUntilCommit() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        let url = directory.appendingPathComponent("x.safetensors")
        try Data("old".utf8).write(to: url)
        let writer = try SafeTensorsWriter(url: url, tensors: specs)
        try writeAll(writer)
        XCTAssertEqual(try Data(contentsOf: url), Data("old".utf8))
        try writer.commit()
        XCTAssertEqual(try SafeTensorsFile(url: url).tensors.count, 3)
    }

    func testAbandonLeavesNothing() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        let url = directory.appendingPathComponent("x.safetensors")
        let writer = try SafeTensorsWriter(url: url, tensors: specs)
        try writer.write("a", floats: [1, 2, 3, 4])
        writer.abandon()
        writer.abandon()
        XCTAssertEqual(try directoryListing(directory), [])
        XCTAssertEqual(expectSafeTensorsError { try writer.write("b", floats: [1, 2, 3]) }, .writerClosed(path: url.path))
        XCTAssertEqual(expectSafeTensorsError { try writer.commit() }, .writerClosed(path: url.path))
    }

    func testDeinitRemovesTemporaryFile() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        do {
            let writer = try SafeTensorsWriter(url: directory.appendingPathComponent("x.safetensors"), tensors: specs)
            try writer.write("a", floats: [1, 2, 3, 4])
            XCTAssertEqual(try directoryListing(directory).count, 1)
        }
        XCTAssertEqual(try directoryListing(directory), [])
    }

    func testCommitWithMissingTensorThrowsAndStaysOpen() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        let url = directory.appendingPathComponent("x.safetensors")
        let writer = try SafeTensorsWriter(url: url, tensors: specs)
        try writer.write("b", floats: [1, 2, 3])
        let error = expectSafeTensorsError { try writer.commit() }
        XCTAssertEqual(error, .tensorsNotWritten(path: url.path, tensors: ["a", "c"]))
        XCTAssertTrue(error?.description.contains("'a', 'c'") ?? false, error?.description ?? "")
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))

        try writer.write("a", floats: [1, 2, 3, 4])
        try [UInt8](repeating: 9, count: 5).withUnsafeBytes { try writer.write("c", bytes: $0) }
        try writer.commit()
        XCTAssertEqual(try directoryListing(directory), ["x.safetensors"])
    }

    func testWriteRejectsBadInput() throws {
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("x.safetensors")
        let writer = try SafeTensorsWriter(url: url, tensors: specs)
        XCTAssertEqual(expectSafeTensorsError { try writer.write("zz", floats: [1]) },
                       .unknownTensor(path: url.path, tensor: "zz"))
        XCTAssertEqual(expectSafeTensorsError { try writer.write("a", floats: [1, 2, 3]) },
                       .elementCountMismatch(path: url.path, tensor: "a", expected: 4, actual: 3))
        XCTAssertEqual(expectSafeTensorsError { try [UInt8](repeating: 0, count: 15).withUnsafeBytes { try writer.write("a", bytes: $0) } },
                       .byteCountMismatch(path: url.path, tensor: "a", expected: 16, actual: 15))
        XCTAssertEqual(expectSafeTensorsError { try writer.write("c", floats: [1, 2, 3, 4, 5]) },
                       .notFloatConvertible(path: url.path, tensor: "c", dtype: .u8))
        try writer.write("a", floats: [1, 2, 3, 4])
        XCTAssertEqual(expectSafeTensorsError { try writer.write("a", floats: [1, 2, 3, 4]) },
                       .alreadyWritten(path: url.path, tensor: "a"))
        writer.abandon()
    }

    func testInvalidSpecsAreRejected() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        let url = directory.appendingPathComponent("x.safetensors")
        let cases: [(TensorSpec, String)] = [
            (TensorSpec(name: "a", dtype: .f32, shape: [1]), "appears twice"),
            (TensorSpec(name: "__metadata__", dtype: .f32, shape: [1]), "reserved"),
            (TensorSpec(name: "", dtype: .f32, shape: [1]), "empty"),
            (TensorSpec(name: "n", dtype: .f32, shape: [2, -1]), "negative"),
            (TensorSpec(name: "big", dtype: .f64, shape: [1 << 31, 1 << 31]), "too large"),
        ]
        for (spec, phrase) in cases {
            let tensors = [TensorSpec(name: "a", dtype: .f32, shape: [1]), spec]
            let error = expectSafeTensorsError { try SafeTensorsWriter(url: url, tensors: tensors) }
            guard case let .invalidSpec(path, tensor, problem)? = error else {
                XCTFail("\(spec): expected invalidSpec, got \(String(describing: error))")
                continue
            }
            XCTAssertEqual(path, url.path)
            XCTAssertEqual(tensor, spec.name)
            XCTAssertTrue(problem.contains(phrase), problem)
        }
        XCTAssertEqual(try directoryListing(directory), [], "no temporary file left by a rejected layout")
    }

    /// 64 tensors written from all threads at once, in a scrambled order.
    func testConcurrentWrites() throws {
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("x.safetensors")
        let count = 64
        let specs = (0..<count).map { TensorSpec(name: "t\($0)", dtype: [.f32, .f16, .bf16][$0 % 3], shape: [$0 + 1, 129]) }
        let values = (0..<count).map { i in (0..<(i + 1) * 129).map { Float(($0 * 7 + i) % 256) - 128 } }
        let writer = try SafeTensorsWriter(url: url, tensors: specs)
        let errors = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: count) { k in
            let i = (k * 37) % count
            do { try writer.write("t\(i)", floats: values[i]) } catch { errors.withLock { $0.append("\(error)") } }
        }
        XCTAssertEqual(errors.withLock { $0 }, [])
        try writer.commit()
        let file = try SafeTensorsFile(url: url)
        for i in 0..<count {
            XCTAssertEqual(try file.floats(try XCTUnwrap(file.info("t\(i)"))), values[i], "t\(i)")
        }
    }

    /// The same tensor written from several threads: exactly one write wins.
    func testConcurrentDuplicateWritesOnlyOneSucceeds() throws {
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("x.safetensors")
        let writer = try SafeTensorsWriter(url: url, tensors: [TensorSpec(name: "w", dtype: .f32, shape: [4096])])
        let successes = Atomic<Int>(0)
        let rejections = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            do {
                try writer.write("w", floats: [Float](repeating: 1, count: 4096))
                successes.add(1, ordering: .relaxed)
            } catch SafeTensorsError.alreadyWritten {
                rejections.add(1, ordering: .relaxed)
            } catch {}
        }
        XCTAssertEqual(successes.load(ordering: .relaxed), 1)
        XCTAssertEqual(rejections.load(ordering: .relaxed), 15)
        try writer.commit()
    }

    func testConvenienceWriteLeavesNothingOnError() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        let url = directory.appendingPathComponent("x.safetensors")
        let error = expectSafeTensorsError {
            try SafeTensorsWriter.write(url: url, tensors: [
                (TensorSpec(name: "a", dtype: .f32, shape: [2]), [1, 2]),
                (TensorSpec(name: "b", dtype: .f16, shape: [2]), [1]),
            ])
        }
        XCTAssertEqual(error, .elementCountMismatch(path: url.path, tensor: "b", expected: 2, actual: 1))
        XCTAssertEqual(try directoryListing(directory), [])
    }

    func testWriterInMissingDirectoryFails() throws {
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("no/such/dir/x.safetensors")
        let error = expectSafeTensorsError { try SafeTensorsWriter(url: url, tensors: self.specs) }
        guard case let .io(path, _, code)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(path, url.path)
        XCTAssertEqual(code, ENOENT)
        XCTAssertTrue(error?.description.contains("x.safetensors") ?? false)
    }

    func testAtomicFileWriteReplacesContents() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        let url = directory.appendingPathComponent("index.json")
        try AtomicFile.write(Data("first".utf8), to: url)
        try AtomicFile.write(Data("second, longer".utf8), to: url)
        try AtomicFile.write(Data(), to: directory.appendingPathComponent("empty"))
        XCTAssertEqual(try Data(contentsOf: url), Data("second, longer".utf8))
        XCTAssertEqual(try directoryListing(directory), ["empty", "index.json"])
        let error = expectSafeTensorsError { try AtomicFile.write(Data("x".utf8), to: directory.appendingPathComponent("none/x")) }
        XCTAssertNotNil(error)
        XCTAssertEqual(try directoryListing(directory), ["empty", "index.json"])
    }

    func testAtomicFileCopyStreamsWholeFilesInChunks() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        let source = directory.appendingPathComponent("source.bin"), copy = directory.appendingPathComponent("copy.bin")
        let bytes = Data(pseudoRandomBytes(count: 1001, seed: 7))
        try bytes.write(to: source)
        try AtomicFile.write(Data("old contents".utf8), to: copy)
        for chunk in [1, 64, 1000, 1001, 4096, 16 << 20] {   // several chunks with a short last one, exactly one, more than the file
            try AtomicFile.copy(source, to: copy, chunkBytes: chunk)
            XCTAssertEqual(try Data(contentsOf: copy), bytes, "chunk \(chunk)")
        }
        try Data().write(to: directory.appendingPathComponent("empty"))
        try AtomicFile.copy(directory.appendingPathComponent("empty"), to: directory.appendingPathComponent("empty copy"))
        XCTAssertEqual(try Data(contentsOf: directory.appendingPathComponent("empty copy")), Data())
        let error = expectSafeTensorsError { try AtomicFile.copy(directory.appendingPathComponent("missing"), to: copy) }
        guard case let .io(path, _, code)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(path, directory.appendingPathComponent("missing").path)
        XCTAssertEqual(code, ENOENT)
        XCTAssertEqual(try Data(contentsOf: copy), bytes, "a failed copy leaves the destination as it was")
        XCTAssertEqual(try directoryListing(directory), ["copy.bin", "empty", "empty copy", "source.bin"], "no temporary file left behind")
    }
}
