import Foundation
import TestSupport
import XCTest
@testable import Formats

/// The library side of issue 17's output rules: path resolution (links, `..`, loops), the
/// overlap and reuse checks, the lock, staged outputs swapped in whole, stale temporaries, and
/// errors in plain words.
final class OutputDirectoryTests: XCTestCase {
    private var scratch: URL!
    private let fm = FileManager.default

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-output-dir").resolvingSymlinksInPath() }

    private func url(_ name: String) -> URL { scratch.appendingPathComponent(name) }

    func testResolutionFollowsLinksDotDotAndMissingTails() throws {
        try fm.createDirectory(at: url("real/sub"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(at: url("link"), withDestinationURL: url("real"))
        try fm.createSymbolicLink(atPath: url("relative").path, withDestinationPath: "real/sub")
        try fm.createSymbolicLink(at: url("dangling"), withDestinationURL: url("later/out"))
        XCTAssertEqual(PathResolution.resolved(url("link").path)?.path, url("real").path)
        XCTAssertEqual(PathResolution.resolved(url("link/sub/../sub/new/x").path)?.path, url("real/sub/new/x").path)
        XCTAssertEqual(PathResolution.resolved(url("relative").path)?.path, url("real/sub").path)
        XCTAssertEqual(PathResolution.resolved(url("dangling").path)?.path, url("later/out").path, "a link to nothing yet is followed")
        let cwd = fm.currentDirectoryPath
        XCTAssertEqual(PathResolution.resolved("a/../b")?.path, PathResolution.resolved(cwd)!.appendingPathComponent("b").path)
    }

    func testLoopsAreLoopsNotMissingFiles() throws {
        try fm.createSymbolicLink(at: url("a"), withDestinationURL: url("b"))
        try fm.createSymbolicLink(at: url("b"), withDestinationURL: url("a"))
        XCTAssertNil(PathResolution.resolved(url("a/x").path))
        XCTAssertTrue(PathResolution.isSymlinkLoop(url("a").path))
        XCTAssertFalse(PathResolution.isSymlinkLoop(url("nothing").path))
        XCTAssertThrowsError(try PathResolution.resolve(url("a").path, label: "--out")) { error in
            XCTAssertEqual(error as? OutputError, .symlinkLoop(label: "--out", path: url("a").path))
        }
    }

    func testRelations() {
        let a = URL(fileURLWithPath: "/x/y"), inside = URL(fileURLWithPath: "/x/y/z"), other = URL(fileURLWithPath: "/x/yz")
        XCTAssertEqual(PathResolution.relation(of: a, to: a), .same)
        XCTAssertEqual(PathResolution.relation(of: inside, to: a), .inside)
        XCTAssertEqual(PathResolution.relation(of: a, to: inside), .contains)
        XCTAssertEqual(PathResolution.relation(of: other, to: a), .unrelated, "a common prefix of characters is not containment")
    }

    func testAnOutputMayNotTouchAnInput() throws {
        try fm.createDirectory(at: url("model"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(at: url("link"), withDestinationURL: url("model"))
        let inputs = [OutputDirectory.Input("--model", url("model").path)]
        for (out, relation) in [("link", PathResolution.Relation.same), ("model/x", .inside), ("", .contains)] {
            XCTAssertThrowsError(try OutputDirectory.check(url(out).path, kind: .residualModel, inputs: inputs, overwrite: true)) { error in
                guard case let .overlapsInput(_, _, input, _, found, _)? = error as? OutputError else { return XCTFail("\(error)") }
                XCTAssertEqual(input, "--model")
                XCTAssertEqual(found, relation, out)
            }
        }
        XCTAssertNoThrow(try OutputDirectory.check(url("elsewhere").path, kind: .residualModel, inputs: inputs, overwrite: false))
    }

    func testReuseRules() throws {
        let out = url("out")
        try fm.createDirectory(at: out, withIntermediateDirectories: true)
        XCTAssertNoThrow(try OutputDirectory.check(out.path, kind: .adapter, inputs: [], overwrite: false), "empty")
        try Data("x".utf8).write(to: out.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try OutputDirectory.check(out.path, kind: .adapter, inputs: [], overwrite: false)) { error in
            XCTAssertEqual(error as? OutputError, .occupied(label: "--out", path: out.path, kind: .adapter, found: nil, entries: ["config.json"]))
        }
        XCTAssertNoThrow(try OutputDirectory.check(out.path, kind: .adapter, inputs: [], overwrite: true))
        try JSONEncoder().encode(OutputLock.Record(kind: .adapter, entries: ["config.json"], pid: 1)).write(to: out.appendingPathComponent(".pissa.lock"))
        XCTAssertNoThrow(try OutputDirectory.check(out.path, kind: .adapter, inputs: [], overwrite: false), "own output, same kind")
        XCTAssertThrowsError(try OutputDirectory.check(out.path, kind: .model, inputs: [], overwrite: false), "another kind")
        XCTAssertThrowsError(try OutputDirectory.check(out.path, kind: .adapter, inputs: [], overwrite: false, reuse: .never))
        XCTAssertNoThrow(try OutputDirectory.check(out.path, kind: .run, inputs: [], overwrite: false, reuse: .always))
        try Data("x".utf8).write(to: url("file"))
        XCTAssertThrowsError(try OutputDirectory.check(url("file").path, kind: .adapter, inputs: [], overwrite: true)) { error in
            XCTAssertEqual(error as? OutputError, .notADirectory(label: "--out", path: url("file").path))
        }
    }

    /// A staged output replaces the directory whole: the new entries, the user's other files
    /// (hard links, not copies), none of the previous output's entries it does not write again.
    func testAStagedOutputIsSwappedInWhole() throws {
        let out = url("out")
        let first = try OutputDirectory(out.path, kind: .residualModel, inputs: [], overwrite: false)
        XCTAssertNotEqual(first.writeURL, first.url)
        XCTAssertEqual(OutputDirectory.entries(of: out), [], "nothing in place before the commit")
        try Data("old".utf8).write(to: first.writeURL.appendingPathComponent("old_only.json"))
        try Data("1".utf8).write(to: first.writeURL.appendingPathComponent("model.safetensors"))
        try first.commit()
        XCTAssertEqual(OutputDirectory.entries(of: out), ["model.safetensors", "old_only.json"])
        XCTAssertEqual(OutputDirectory.recordedKind(out), .residualModel)
        try Data("mine".utf8).write(to: out.appendingPathComponent("notes.txt"))
        let inode = try fm.attributesOfItem(atPath: out.appendingPathComponent("notes.txt").path)[.systemFileNumber] as? Int

        let second = try OutputDirectory(out.path, kind: .residualModel, inputs: [], overwrite: false)
        try Data("2".utf8).write(to: second.writeURL.appendingPathComponent("model.safetensors"))
        try second.commit()
        XCTAssertEqual(OutputDirectory.entries(of: out), ["model.safetensors", "notes.txt"])
        XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("model.safetensors"), encoding: .utf8), "2")
        XCTAssertEqual(try fm.attributesOfItem(atPath: out.appendingPathComponent("notes.txt").path)[.systemFileNumber] as? Int, inode,
                       "the user's file is the same file")
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: scratch.path).filter { $0.contains(".tmp-") }, [], "no staging left")
    }

    func testDiscardLeavesTheOldOutputAndRemovesWhatItCreated() throws {
        let fresh = try OutputDirectory(url("fresh").path, kind: .adapter, inputs: [], overwrite: false)
        try Data("x".utf8).write(to: fresh.writeURL.appendingPathComponent("a"))
        fresh.discard()
        XCTAssertFalse(fm.fileExists(atPath: url("fresh").path), "a directory this writer created is removed")
        try fm.createDirectory(at: url("kept"), withIntermediateDirectories: true)
        let kept = try OutputDirectory(url("kept").path, kind: .adapter, inputs: [], overwrite: false)
        kept.discard()
        XCTAssertTrue(fm.fileExists(atPath: url("kept").path))
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: scratch.path).filter { $0.contains(".tmp-") }, [])
    }

    func testOneWriterAtATime() throws {
        let holder = try OutputDirectory(url("out").path, kind: .run, inputs: [], overwrite: false, reuse: .never, staged: false)
        XCTAssertThrowsError(try OutputDirectory(url("out").path, kind: .run, inputs: [], overwrite: true, reuse: .always, staged: false)) { error in
            guard case .locked(let label, let path, _)? = error as? OutputError else { return XCTFail("\(error)") }
            XCTAssertEqual(label, "--out")
            XCTAssertEqual(path, url("out").path)
        }
        try holder.commit()
        withExtendedLifetime(holder) {}
    }

    /// A killed writer's temporaries go; a live writer's temporary file (locked) stays.
    func testStaleTemporariesAreRemovedButLiveOnesKept() throws {
        let out = url("out")
        try fm.createDirectory(at: out.appendingPathComponent("sub/.half.tmp-dir"), withIntermediateDirectories: true)
        try Data().write(to: out.appendingPathComponent(".a.json.tmp-1"))
        try Data().write(to: url(".out.tmp-2"))
        let live = out.appendingPathComponent(".b.json.tmp-3")
        try Data().write(to: live)
        let fd = open(live.path, O_RDONLY)
        XCTAssertEqual(flock(fd, LOCK_EX), 0)
        defer { close(fd) }
        let removed = Temporaries.removeStale(in: out, siblings: true)
        XCTAssertEqual(Set(removed), [out.appendingPathComponent("sub/.half.tmp-dir").path, out.appendingPathComponent(".a.json.tmp-1").path,
                                      url(".out.tmp-2").path])
        XCTAssertTrue(fm.fileExists(atPath: live.path), "a locked temporary belongs to a live writer")
    }

    func testAtomicDirectoryReplacesAndRemovesWhole() throws {
        let dir = url("adapter")
        try AtomicDirectory.write(dir) { try Data("1".utf8).write(to: $0.appendingPathComponent("a")) }
        try AtomicDirectory.write(dir) { try Data("2".utf8).write(to: $0.appendingPathComponent("b")) }
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir.path), ["b"])
        XCTAssertThrowsError(try AtomicDirectory.write(dir) { _ in throw CocoaError(.fileWriteUnknown) })
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir.path), ["b"], "a failed write leaves the old directory")
        AtomicDirectory.remove(dir)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: scratch.path), [])
    }

    func testErrorsInPlainWords() throws {
        struct Config: Decodable { var hiddenSize: Int; enum CodingKeys: String, CodingKey { case hiddenSize = "hidden_size" } }
        for (json, expected) in [(#"{"hidden_size": "wide"}"#, "hidden_size: expected Int but found a string instead"),
                                 ("{}", "missing key 'hidden_size'"), ("{", "not valid JSON")] {
            XCTAssertThrowsError(try JSONDecoder().decode(Config.self, from: Data(json.utf8))) { error in
                XCTAssertTrue(ErrorText.plain(error).hasPrefix(expected), ErrorText.plain(error))
            }
        }
        XCTAssertThrowsError(try Data(contentsOf: scratch)) { error in
            XCTAssertEqual(ErrorText.plain(error), "\(scratch.path): Is a directory")
            XCTAssertEqual(ErrorText.reason(error), "Is a directory")
        }
        XCTAssertThrowsError(try JSONEncoder().encode([Double.infinity])) { error in
            XCTAssertEqual(ErrorText.plain(error), "cannot write '[0]': inf is not representable in JSON")
        }
    }
}
