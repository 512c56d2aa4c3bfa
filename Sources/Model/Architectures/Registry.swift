import Foundation
import Formats

/// The one place that maps a model to its family: Hugging Face `model_type` (else the
/// `architectures` class names) or GGUF `general.architecture` → an `Architecture`. Nothing is
/// ever run as Llama by default: an unknown family, or a known one with a feature its block does
/// not implement, is refused with a message naming it and listing what is supported.
public enum ArchitectureRegistry {
    /// Every family this package runs. Adding a family: its folder under `Architectures/`, and
    /// one line here.
    public static let all: [any Architecture.Type] = [
        LlamaArchitecture.self,
        Gemma3Architecture.self,
        Qwen2Architecture.self,
        Qwen3Architecture.self,
        MistralArchitecture.self,
        Phi3Architecture.self,
        MixtralArchitecture.self,
    ]

    /// Families transformers has that this package does not run yet, with what they need.
    static let notYetSupported: [String: String] = [
        "qwen2_moe": "a mixture of experts with shared experts",
        "qwen3_moe": "Qwen3's mixture of experts",
        "deepseek_v2": "a mixture of experts with shared experts",
        "deepseek_v3": "a mixture of experts with shared experts",
        "gemma": "Gemma 1's block",
        "gemma2": "attention logit soft-capping",
        "bert": "an encoder (not a causal language model)",
    ]

    /// "llama (model_type llama; GGUF llama), gemma3 (…)": what the refusals list.
    public static var supportedList: String {
        all.map { a in
            let gguf = a.ggufArchitectures.isEmpty ? "" : "; GGUF \(a.ggufArchitectures.joined(separator: "/"))"
            return "\(a.name) (model_type \(a.modelTypes.joined(separator: "/"))\(gguf))"
        }.joined(separator: ", ")
    }

    /// The family called `name` (`ModelConfig.architecture`).
    public static func architecture(named name: String) -> (any Architecture.Type)? {
        all.first { $0.name == name }
    }

    /// The family of `config`.
    public static func architecture(of config: ModelConfig) -> any Architecture.Type {
        guard let a = architecture(named: config.architecture) else {
            preconditionFailure("ModelConfig of unregistered architecture \(config.architecture)")
        }
        return a
    }

    /// Reads `config.json` (bytes `data`, from `path`) with its family's decoder.
    public static func config(huggingFace data: Data, path: String) throws -> ModelConfig {
        let family = try architecture(huggingFace: data, path: path)
        return try family.config(huggingFace: data, path: path)
    }

    /// The family of a `config.json`, by `model_type`, else by `architectures`.
    public static func architecture(huggingFace data: Data, path: String) throws -> any Architecture.Type {
        struct Header: Decodable {
            var model_type: String?
            var architectures: [String]?
        }
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: data) } catch let error as DecodingError {
            throw ModelError.invalidConfig(path: path, problem: ConfigDecoding.describe(error))
        } catch {
            throw ModelError.invalidConfig(path: path, problem: "is not JSON")
        }
        if let type = header.model_type {
            if let family = all.first(where: { $0.modelTypes.contains(type) }) { return family }
            throw unsupported(path: path, kind: "model_type", value: type)
        }
        let classes = header.architectures ?? []
        if let family = all.first(where: { a in classes.contains { $0.lowercased().hasPrefix(a.name) } }) { return family }
        throw ModelError.invalidConfig(
            path: path, problem: "has no model_type\(classes.isEmpty ? "" : " and unknown architectures \(classes)"); supported: \(supportedList)")
    }

    /// The family of a GGUF file, by `general.architecture`.
    public static func architecture(gguf file: GGUFFile) throws -> any Architecture.Type {
        let name = try GGUFMetadataReader(file: file).string("general.architecture")
        if let family = all.first(where: { $0.ggufArchitectures.contains(name) && $0.claims(gguf: file) }) { return family }
        throw unsupported(path: file.url.path, kind: "general.architecture", value: name)
    }

    static func unsupported(path: String, kind: String, value: String) -> ModelError {
        let what = notYetSupported[value].map { " (it needs \($0), not implemented yet)" } ?? ""
        return .unsupportedModel(source: path, problem: "\(kind) '\(value)' is not supported\(what); supported: \(supportedList)")
    }
}

/// Plain one-line descriptions of `DecodingError`s, naming the key path and the problem.
enum ConfigDecoding {
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context, _ key: CodingKey? = nil) -> String {
            let keys = context.codingPath.map(\.stringValue) + (key.map { [$0.stringValue] } ?? [])
            return keys.isEmpty ? "the top level" : "'" + keys.joined(separator: ".") + "'"
        }
        switch error {
        case let .keyNotFound(key, context): return "\(path(context, key)) is missing"
        case let .valueNotFound(_, context): return "\(path(context)) is null"
        case let .typeMismatch(type, context): return "\(path(context)) is not \(typeName(type))"
        case let .dataCorrupted(context):
            guard context.codingPath.isEmpty else { return "\(path(context)): \(context.debugDescription)" }
            // Foundation's parser explains itself in the underlying error's debug description.
            let reason = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return "is not valid JSON" + (reason.map { " (\($0))" } ?? "")
        @unknown default: return "cannot be decoded"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        default: "of the expected type"
        }
    }

    /// Decodes `T` from `data`, turning decoding errors into `ModelError.invalidConfig(path:…)`.
    static func decode<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws -> T {
        do { return try JSONDecoder().decode(type, from: data) } catch let error as DecodingError {
            if let key = outOfRangeKey(data) { throw ModelError.invalidConfig(path: path, problem: "'\(key)' is out of range") }
            throw ModelError.invalidConfig(path: path, problem: describe(error))
        }
    }

    /// A top-level key whose number is too large for an integer: Foundation's decoder reports
    /// it as "not valid JSON" without naming it.
    private static func outOfRangeKey(_ data: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object.keys.sorted().first { key in
            guard let number = object[key] as? NSNumber, !(number is Bool) else { return false }
            let value = number.doubleValue
            return value.rounded() == value && abs(value) >= 0x1p63
        }
    }
}
