import Formats
import Foundation
import Tokenizer

/// One JSONL line, parsed and checked.
///
/// The format is recognised from the keys, checked in this order; the first that matches decides
/// and the other keys are ignored (so metadata such as `"id"` or the rendered `"text"` column of
/// Hugging Face's Alpaca copies does no harm):
/// 1. `messages` → `.chat`
/// 2. `prompt` or `completion` → `.completion` (both required)
/// 3. `instruction` or `output` → `.alpaca` (both required; `input` optional, may be empty)
/// 4. `text` → `.text`
///
/// A file may mix formats: each line is one record, and `LoadReport.formats` counts them.
/// Required strings must not be empty or only whitespace; a JSON `null` counts as absent.
public enum Record: Sendable, Equatable {
    case chat([ChatMessage])
    case completion(prompt: String, completion: String)
    case alpaca(instruction: String, input: String, output: String)
    case text(String)

    public var format: DataFormat {
        switch self {
        case .chat: return .chat
        case .completion: return .completion
        case .alpaca: return .alpaca
        case .text: return .text
        }
    }

    /// The roles a chat record may use.
    public static let chatRoles: Set<String> = ["system", "user", "assistant"]

    /// Parses one line (without its newline).
    public init(jsonLine bytes: some Collection<UInt8>) throws(LineProblem) {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw .invalidUTF8 }
        let fields: RecordFields
        let data = Data(bytes)
        do {
            fields = try JSONDecoder().decode(RecordFields.self, from: data)
        } catch let problem as LineProblem {
            throw problem
        } catch let DecodingError.dataCorrupted(context) {
            throw .invalidJSON(Self.syntaxError(in: data) ?? context.debugDescription)
        } catch let DecodingError.typeMismatch(_, context) where context.codingPath.isEmpty {
            throw .notAnObject
        } catch {
            throw .invalidJSON(ErrorText.plain(error))
        }
        self = try fields.record()
    }

    /// Where the JSON goes wrong ("Invalid value around character 13."): JSONDecoder only says
    /// that it does, so the parser that reports positions is asked, for the message alone.
    private static func syntaxError(in data: Data) -> String? {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return nil
        } catch {
            return (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
        }
    }
}

/// The keys of a record, read with typed checks; `record()` recognises the format.
private struct RecordFields: Decodable {
    var keys: [String] = []
    var messages: [ChatMessage]?
    var prompt: String?
    var completion: String?
    var instruction: String?
    var input: String?
    var output: String?
    var text: String?

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: Decoder) throws {
        let c: KeyedDecodingContainer<Key>
        do {
            c = try decoder.container(keyedBy: Key.self)
        } catch DecodingError.typeMismatch {
            throw LineProblem.notAnObject
        }
        keys = c.allKeys.map(\.stringValue).sorted()
        prompt = try Self.string(c, "prompt")
        completion = try Self.string(c, "completion")
        instruction = try Self.string(c, "instruction")
        input = try Self.string(c, "input")
        output = try Self.string(c, "output")
        text = try Self.string(c, "text")
        let key = Key(stringValue: "messages")
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return }
        guard var list = try? c.nestedUnkeyedContainer(forKey: key) else {
            throw LineProblem.wrongType(key: "messages", expected: "an array of {\"role\", \"content\"} objects")
        }
        var out: [ChatMessage] = []
        while !list.isAtEnd {
            let path = "messages[\(out.count)]"
            guard let m = try? list.nestedContainer(keyedBy: Key.self) else {
                throw LineProblem.wrongType(key: path, expected: "an object with \"role\" and \"content\"")
            }
            guard let role = try Self.string(m, "role", path: path) else { throw LineProblem.missingKey(path + ".role", format: .chat) }
            guard let content = try Self.string(m, "content", path: path) else {
                throw LineProblem.missingKey(path + ".content", format: .chat)
            }
            out.append(ChatMessage(role: role, content: content))
        }
        messages = out
    }

    /// The string at `name`, nil when absent or null.
    private static func string(_ c: KeyedDecodingContainer<Key>, _ name: String, path: String? = nil) throws -> String? {
        let key = Key(stringValue: name)
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return nil }
        guard let s = try? c.decode(String.self, forKey: key) else {
            throw LineProblem.wrongType(key: path.map { "\($0).\(name)" } ?? name, expected: "a string")
        }
        return s
    }

    func record() throws(LineProblem) -> Record {
        if let messages {
            guard !messages.isEmpty else { throw .emptyContent(key: "messages") }
            for (i, m) in messages.enumerated() {
                guard Record.chatRoles.contains(m.role) else { throw .unknownRole(key: "messages[\(i)].role", role: m.role) }
                try Self.require(m.content, "messages[\(i)].content")
            }
            guard messages.contains(where: { $0.role == "assistant" }) else { throw .noAssistantTurn }
            return .chat(messages)
        }
        if prompt != nil || completion != nil {
            guard let prompt else { throw .missingKey("prompt", format: .completion) }
            guard let completion else { throw .missingKey("completion", format: .completion) }
            try Self.require(prompt, "prompt")
            try Self.require(completion, "completion")
            return .completion(prompt: prompt, completion: completion)
        }
        if instruction != nil || output != nil {
            guard let instruction else { throw .missingKey("instruction", format: .alpaca) }
            guard let output else { throw .missingKey("output", format: .alpaca) }
            try Self.require(instruction, "instruction")
            try Self.require(output, "output")
            return .alpaca(instruction: instruction, input: input ?? "", output: output)
        }
        if let text {
            try Self.require(text, "text")
            return .text(text)
        }
        throw .unknownFormat(keys: keys)
    }

    private static func require(_ s: String, _ key: String) throws(LineProblem) {
        if s.allSatisfy(\.isWhitespace) { throw .emptyContent(key: key) }
    }
}
