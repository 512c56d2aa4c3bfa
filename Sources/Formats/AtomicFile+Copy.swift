import Foundation

extension AtomicFile {
    /// Copies `source` to `destination` through a temporary file beside the destination and a
    /// rename, so `destination` is either its old contents or the complete copy. Streams in
    /// 16 MiB chunks, so memory stays flat for multi-gigabyte weight files.
    public static func copy(_ source: URL, to destination: URL) throws(SafeTensorsError) {
        guard let input = FileHandle(forReadingAtPath: source.path) else {
            throw .io(path: source.path, operation: "open for reading", errno: errno)
        }
        defer { try? input.close() }
        let temporary = try TemporaryFile(near: destination)
        do throws(SafeTensorsError) {
            var offset = 0
            while true {
                let chunk: Data
                do { chunk = try input.read(upToCount: 16 << 20) ?? Data() } catch {
                    throw .io(path: source.path, operation: "read", errno: errno)
                }
                if chunk.isEmpty { break }
                let written = chunk.withUnsafeBytes { bytes in
                    Result { () throws(SafeTensorsError) in try temporary.write(bytes, at: offset) }
                }
                try written.get()
                offset += chunk.count
            }
            try temporary.commit()
        } catch {
            temporary.abandon()
            throw error
        }
    }
}
