import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors as a user reads them: this package's errors by their own description, Foundation's
/// file errors as `PATH: reason` (from the system's error number), decoding errors as
/// `key.path: problem`. Never a Foundation error domain, code or Swift type name.
public enum ErrorText {
    /// The error in plain words (this package's multi-line errors keep their lines).
    public static func plain(_ error: any Error) -> String {
        if let e = error as? DecodingError { return decoding(e) }
        if let e = error as? EncodingError { return encoding(e) }
        let ns = error as NSError
        if ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain { return foundation(ns) }
        return String(describing: error)   // this package's errors: their `description`
    }

    /// What went wrong, without the path a Foundation file error names (for messages that
    /// name the file themselves): `Is a directory`.
    public static func reason(_ error: any Error) -> String {
        let ns = error as NSError
        guard ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain, !(error is DecodingError), !(error is EncodingError) else {
            return plain(error)
        }
        return foundationReason(ns)
    }

    /// `hidden_size: expected Int but found a string`, `missing key 'vocab_size'`, `not valid JSON (…)`.
    public static func decoding(_ error: DecodingError) -> String {
        switch error {
        case let .keyNotFound(key, context):
            let parent = path(context.codingPath)
            return "missing key '\(key.stringValue)'" + (parent.isEmpty ? "" : " in '\(parent)'")
        case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
            var problem = context.debugDescription.trimmingCharacters(in: CharacterSet(charactersIn: ". "))
            if problem == "The given data was not valid JSON" { problem = "not valid JSON" }
            problem = problem.replacingOccurrences(of: "Expected to decode ", with: "expected ")
            if let underlying = context.underlyingError.map({ $0 as NSError }),
               let detail = underlying.userInfo[NSDebugDescriptionErrorKey] as? String {
                problem += " (\(detail.trimmingCharacters(in: CharacterSet(charactersIn: ". "))))"
            }
            let at = path(context.codingPath)
            return at.isEmpty ? problem : "\(at): \(problem)"
        @unknown default:
            return "cannot be decoded"
        }
    }

    /// `cannot write the value of 'learningRate': inf is not a finite number`.
    public static func encoding(_ error: EncodingError) -> String {
        switch error {
        case let .invalidValue(value, context):
            let at = path(context.codingPath)
            return "cannot write \(at.isEmpty ? "a value" : "'\(at)'"): \(value) is not representable in JSON"
        @unknown default:
            return "cannot be encoded"
        }
    }

    /// `a.b[2].c` from a coding path.
    static func path(_ codingPath: [any CodingKey]) -> String {
        var out = ""
        for key in codingPath {
            if let index = key.intValue { out += "[\(index)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
        }
        return out
    }

    /// `PATH: Is a directory` from a Foundation file error.
    static func foundation(_ error: NSError) -> String {
        let path = error.userInfo[NSFilePathErrorKey] as? String ?? (error.userInfo[NSURLErrorKey] as? URL)?.path
        let reason = foundationReason(error)
        return path.map { "\($0): \(reason)" } ?? reason
    }

    private static func foundationReason(_ error: NSError) -> String {
        var code: Int32?
        if error.domain == NSPOSIXErrorDomain { code = Int32(error.code) }
        if let underlying = (error.userInfo[NSUnderlyingErrorKey] as? any Error).map({ $0 as NSError }),
           underlying.domain == NSPOSIXErrorDomain {
            code = Int32(underlying.code)
        }
        return code.map { String(cString: strerror($0)) } ?? cocoaReason(error.code)
    }

    private static func cocoaReason(_ code: Int) -> String {
        switch code {
        case CocoaError.fileNoSuchFile.rawValue, CocoaError.fileReadNoSuchFile.rawValue: "no such file or directory"
        case CocoaError.fileReadNoPermission.rawValue, CocoaError.fileWriteNoPermission.rawValue: "permission denied"
        case CocoaError.fileWriteOutOfSpace.rawValue: "no space left on the device"
        case CocoaError.fileWriteVolumeReadOnly.rawValue: "read-only file system"
        case CocoaError.fileWriteFileExists.rawValue: "already exists"
        case CocoaError.fileReadInapplicableStringEncoding.rawValue, CocoaError.fileReadCorruptFile.rawValue: "not valid UTF-8 text"
        case CocoaError.coderReadCorrupt.rawValue, CocoaError.propertyListReadCorrupt.rawValue: "not in the expected format"
        default: "cannot be read or written"
        }
    }
}
