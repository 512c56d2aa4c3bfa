import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An output directory a command is about to write, checked and locked. The rules:
/// - the path is resolved (links, `..`, relative) and may not be, lie inside or contain any
///   input the command reads;
/// - a non-empty directory is written only when it holds this tool's output of the same kind
///   (`Reuse.sameKind`), or with `overwrite`; other files in it are kept;
/// - one writer at a time (`OutputLock`); a second fails at once, naming the first's pid;
/// - temporaries a killed writer left behind are removed (`removedTemporaries`);
/// - a staged output is written into a temporary directory beside `url` and put in place by
///   `commit` in one atomic exchange, so a kill leaves the old output (or none) or the new one.
public final class OutputDirectory {
    /// When a non-empty directory may be written without `overwrite`.
    public enum Reuse: Sendable {
        /// When it holds this tool's output of the same kind (replaced as a whole).
        case sameKind
        /// Never: it must be empty (a new training run).
        case never
        /// Always (continuing a training run).
        case always
    }

    /// An input the command reads, by the option that named it.
    public struct Input: Sendable {
        public var label: String
        public var path: String
        public init(_ label: String, _ path: String) {
            self.label = label
            self.path = path
        }
    }

    /// The directory, resolved.
    public let url: URL
    public let label: String
    public let kind: OutputKind
    /// Where the command writes: a temporary directory beside `url` when staged, else `url`.
    public let writeURL: URL
    /// Stale temporaries of killed writers, removed when the lock was taken.
    public let removedTemporaries: [String]
    /// What a previous command recorded in the directory.
    public let previousKind: OutputKind?
    private let lock: OutputLock
    private let previousEntries: [String]
    private let createdDirectory: Bool
    private let staged: Bool
    private var finished = false

    /// Checks, creates (with its parents) and locks the output directory `path`; with `staged`,
    /// also creates the temporary directory to write into.
    public init(_ path: String, label: String = "--out", kind: OutputKind, inputs: [Input], overwrite: Bool,
                reuse: Reuse = .sameKind, staged: Bool = true) throws(OutputError) {
        let url = try Self.check(path, label: label, kind: kind, inputs: inputs, overwrite: overwrite, reuse: reuse)
        var st = stat()
        let created = stat(url.path, &st) != 0
        if created {
            do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
                throw .io(label: label, path: path, operation: "create the directory", errno: AtomicDirectory.code(of: error))
            }
        }
        let lock: OutputLock
        do { lock = try OutputLock(directory: url, label: label, path: path) } catch {
            if created { rmdir(url.path) }
            throw error
        }
        let record = lock.read()
        func undo() {
            lock.release(removeFile: true)
            if created { rmdir(url.path) }
        }
        do throws(OutputError) {
            // Again under the lock: another writer may have changed the directory since `check`.
            try Self.accept(Self.entries(of: url), found: record?.kind, kind: kind, overwrite: overwrite, reuse: reuse,
                            label: label, path: path)
        } catch {
            undo()
            throw error
        }
        let removed = Temporaries.removeStale(in: url, siblings: true)
        if staged {
            do { writeURL = try AtomicDirectory.makeStaging(for: url) } catch {
                undo()
                let code: Int32 = if case let .io(_, _, e) = error { e } else { EIO }
                throw .io(label: label, path: path, operation: "create a temporary directory beside it", errno: code)
            }
        } else {
            writeURL = url
        }
        // A staged output changes nothing in place until `commit`; an unstaged one is this kind from now on.
        lock.write(.init(kind: staged ? record?.kind : kind, entries: staged ? record?.entries : nil, pid: getpid()))
        self.url = url
        self.label = label
        self.kind = kind
        self.lock = lock
        self.staged = staged
        createdDirectory = created
        previousKind = record?.kind
        previousEntries = record?.entries ?? []
        removedTemporaries = removed
    }

    /// The checks of `init` that change nothing (for a command's `validate()`); returns the
    /// resolved path.
    @discardableResult
    public static func check(_ path: String, label: String = "--out", kind: OutputKind, inputs: [Input], overwrite: Bool,
                             reuse: Reuse = .sameKind) throws(OutputError) -> URL {
        let url = try PathResolution.resolve(path, label: label)
        var st = stat()
        let exists = stat(url.path, &st) == 0
        if exists && (st.st_mode & S_IFMT) != S_IFDIR { throw .notADirectory(label: label, path: path) }
        try refuseOverlap(url, path: path, label: label, inputs: inputs)
        guard exists else { return url }
        try accept(entries(of: url), found: recordedKind(url), kind: kind, overwrite: overwrite, reuse: reuse, label: label, path: path)
        return url
    }

    /// Throws `.overlapsInput` when the resolved output `url` is, lies inside or contains an input.
    static func refuseOverlap(_ url: URL, path: String, label: String, inputs: [Input]) throws(OutputError) {
        for input in inputs {
            let resolved = try PathResolution.resolve(input.path, label: input.label)
            let relation = PathResolution.relation(of: url, to: resolved)
            guard relation == .unrelated else {
                throw .overlapsInput(label: label, path: path, input: input.label, inputPath: input.path, relation: relation,
                                     resolved: (relation == .contains ? resolved : url).path)
            }
        }
    }

    /// What a previous command recorded in `directory`, read without taking the lock.
    public static func recordedKind(_ directory: URL) -> OutputKind? {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(OutputLock.fileName).path) else { return nil }
        return (try? JSONDecoder().decode(OutputLock.Record.self, from: data))?.kind
    }

    /// The entries of `directory` other than the lock file and temporaries.
    public static func entries(of directory: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0 != OutputLock.fileName && !Temporaries.isTemporary($0) }.sorted()
    }

    private static func accept(_ entries: [String], found: OutputKind?, kind: OutputKind, overwrite: Bool, reuse: Reuse,
                               label: String, path: String) throws(OutputError) {
        if entries.isEmpty || overwrite { return }
        switch reuse {
        case .always: return
        case .sameKind where found == kind: return
        default: throw .occupied(label: label, path: path, kind: kind, found: found, entries: entries)
        }
    }

    /// Puts the staged output in place of the directory in one atomic exchange, keeping every
    /// file there that neither this output nor the one it replaces wrote (as hard links). An
    /// unstaged output only records what it is.
    public func commit() throws {
        guard !finished else { return }
        guard staged else {
            finished = true
            return
        }
        let produced = Self.entries(of: writeURL)
        let replaced = Set(produced).union(previousEntries)
        for name in Self.entries(of: url) where !replaced.contains(name) {
            try Self.carry(url.appendingPathComponent(name), to: writeURL.appendingPathComponent(name))
        }
        let record = OutputLock.Record(kind: kind, entries: produced, pid: getpid())
        try AtomicFile.write(JSONEncoder().encode(record), to: writeURL.appendingPathComponent(OutputLock.fileName))
        try AtomicDirectory.install(writeURL, at: url)
        finished = true
        lock.release()
    }

    /// After a failure: removes the staging directory, and the directory itself when this
    /// writer created it and nothing else was put there.
    public func discard() {
        guard !finished else { return }
        finished = true
        if staged { try? FileManager.default.removeItem(at: writeURL) }
        if createdDirectory && Self.entries(of: url).isEmpty {
            lock.release(removeFile: true)
            rmdir(url.path)
        } else {
            lock.release()
        }
    }

    /// A file the user keeps in the directory, linked (not copied, not moved) into the new one.
    private static func carry(_ source: URL, to destination: URL) throws {
        var st = stat()
        guard lstat(source.path, &st) == 0 else { return }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: false)
            for name in try FileManager.default.contentsOfDirectory(atPath: source.path) {
                try carry(source.appendingPathComponent(name), to: destination.appendingPathComponent(name))
            }
        case S_IFLNK:
            try FileManager.default.createSymbolicLink(atPath: destination.path,
                                                       withDestinationPath: FileManager.default.destinationOfSymbolicLink(atPath: source.path))
        default:
            if link(source.path, destination.path) != 0 { try FileManager.default.copyItem(at: source, to: destination) }
        }
    }
}
