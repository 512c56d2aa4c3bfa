import Formats
import Foundation
import XCTest

/// Starting the built `pissa` binary under OpenMPI's `mpirun` on this machine.
enum MPIRun {
    /// `mpirun`, or a skip (a failure when `PISSA_REQUIRE_ASSETS` is set, as in CI).
    static func launcher() throws -> URL {
        let path = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else {
            let message = "mpirun is not installed (scripts/setup.sh installs openmpi-bin)"
            if ProcessInfo.processInfo.environment["PISSA_REQUIRE_ASSETS"] != nil { XCTFail(message) }
            throw XCTSkip(message)
        }
        return URL(fileURLWithPath: path)
    }

    /// One machine, more ranks than cores allowed; as root (CI), mpirun's refusal lifted.
    static var options: [String] {
        ["--oversubscribe", "--bind-to", "none"] + (getuid() == 0 ? ["--allow-run-as-root"] : [])
    }

    private static func process(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = try launcher()
        process.arguments = options + arguments
        process.environment = PissaProcess.environment
        return process
    }

    static func run(ranks: Int, _ arguments: [String]) throws -> PissaProcess.Result {
        try collect(process(["-np", "\(ranks)", PissaProcess.binary.path] + arguments))
    }

    /// One rank per (arguments, working directory) (`mpirun -np 1 -wdir A pissa … : -np 1 -wdir B pissa …`).
    static func runMPMD(_ ranks: [(arguments: [String], directory: URL)]) throws -> PissaProcess.Result {
        let parts = ranks.map { ["-np", "1", "-wdir", $0.directory.path, PissaProcess.binary.path] + $0.arguments }
        return try collect(process(Array(parts.joined(separator: [":"]))))
    }

    /// The job in the background, its output into `log`.
    static func start(ranks: Int, _ arguments: [String], log: URL) throws -> Process {
        let p = try process(["-np", "\(ranks)", PissaProcess.binary.path] + arguments)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        return p
    }

    private static func collect(_ process: Process) throws -> PissaProcess.Result {
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return PissaProcess.Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                                   stderr: String(decoding: stderr, as: UTF8.self), signaled: process.terminationReason == .uncaughtSignal)
    }

    /// The rank processes `mpirun` (pid `launcher`) started on this machine, by rank, read from
    /// /proc (their parent, and `OMPI_COMM_WORLD_RANK` in their environment).
    static func ranks(of launcher: Int32) -> [Int: Int32] {
        var out: [Int: Int32] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, Int32(fields[1]) == launcher,
                  let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
            for entry in environ.split(separator: 0) {
                let text = String(decoding: entry, as: UTF8.self)
                if text.hasPrefix("OMPI_COMM_WORLD_RANK="), let rank = Int(text.dropFirst("OMPI_COMM_WORLD_RANK=".count)) {
                    out[rank] = pid
                }
            }
        }
        return out
    }

    /// Whether `pid` still runs (a zombie counts as gone).
    static func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }
}

/// Comparing two training runs' metrics and adapters.
enum RunComparison {
    static func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    static func metrics(_ run: URL) throws -> [[String: Any]] {
        try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try json(String($0)) }
    }

    static func checkpointSteps(_ run: URL) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path)) ?? []
        return names.compactMap { $0.hasPrefix("step-") ? Int($0.dropFirst(5)) : nil }.sorted()
    }

    /// The same steps with losses within `tolerance` (relative), from step `metricsFrom` on, and
    /// final adapters whose tensors agree within `tolerance` relative to each tensor's largest value.
    static func assertSame(_ run: URL, _ reference: URL, tolerance: Double, metricsFrom: Int = 1,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let a = try metrics(run).filter { ($0["step"] as? Int ?? 0) >= metricsFrom }
        let b = try metrics(reference).filter { ($0["step"] as? Int ?? 0) >= metricsFrom }
        XCTAssertEqual(a.map { $0["step"] as? Int }, b.map { $0["step"] as? Int }, "steps", file: file, line: line)
        for (x, y) in zip(a, b) {
            let (l, m) = (try XCTUnwrap(x["loss"] as? Double), try XCTUnwrap(y["loss"] as? Double))
            XCTAssertLessThanOrEqual(abs(l - m), tolerance * abs(m), "step \(x["step"] ?? "?"): loss \(l) vs \(m)", file: file, line: line)
        }
        let fa = try SafeTensorsFile(url: run.appendingPathComponent("adapter/adapter_model.safetensors"))
        let fb = try SafeTensorsFile(url: reference.appendingPathComponent("adapter/adapter_model.safetensors"))
        XCTAssertEqual(fa.tensors.map(\.name).sorted(), fb.tensors.map(\.name).sorted(), file: file, line: line)
        for info in fb.tensors {
            guard let other = fa.info(info.name) else { continue }
            let (x, y) = (try fa.floats(other), try fb.floats(info))
            let scale = max(1e-30, y.map { abs(Double($0)) }.max() ?? 0)
            let worst = zip(x, y).map { abs(Double($0) - Double($1)) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst / scale, tolerance, "\(info.name): largest difference \(worst) (scale \(scale))", file: file, line: line)
        }
    }
}
