/// Errors of the Tokenizer module; each names the file, key or value involved.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A file could not be read.
    case unreadableFile(path: String, reason: String)
    /// A file is not the JSON it should be.
    case malformedJSON(path: String, reason: String)
    /// A line of a text file (tiktoken ranks) is not what the format says.
    case malformedLine(path: String, line: Int, reason: String)
    /// A required key is absent.
    case missingKey(source: String, key: String)
    /// A key holds a value this tokenizer does not implement (e.g. `model.type = "Unigram"`).
    case unsupported(source: String, key: String, value: String)
    /// A pre-tokenizer that is not one of `PreTokenizer`'s cases.
    case unknownPreTokenizer(source: String, description: String)
    /// A merge or special token names a token missing from the vocabulary.
    case unknownToken(source: String, key: String, token: String)
    /// A merge that is not two tokens separated by one space.
    case malformedMerge(source: String, index: Int, merge: String)
    /// A token id outside the vocabulary.
    case tokenIDOutOfRange(source: String, key: String, id: Int, vocabularySize: Int)
    /// Two tokens with the same text, or one id given two texts.
    case duplicateToken(source: String, token: String, ids: [Int])
    /// A chat template this module does not recognise (`ChatTemplate` lists those it renders).
    case unknownChatTemplate(excerpt: String)
    /// A conversation the chat template refuses (it would raise an exception in Jinja).
    case invalidConversation(reason: String)
    /// The tokenizer carries no chat template.
    case noChatTemplate

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .malformedJSON(let path, let reason):
            return "\(path) is not valid tokenizer JSON: \(reason)"
        case .malformedLine(let path, let line, let reason):
            return "\(path):\(line): \(reason)"
        case .missingKey(let source, let key):
            return "\(source): missing key '\(key)'"
        case .unsupported(let source, let key, let value):
            return "\(source): unsupported \(key) = \(value)"
        case .unknownPreTokenizer(let source, let description):
            return "\(source): unknown pre-tokenizer \(description) "
                + "(supported: \(PreTokenizer.allCases.map(\.rawValue).joined(separator: ", ")))"
        case .unknownToken(let source, let key, let token):
            return "\(source): \(key) refers to \(token.debugDescription), which is not in the vocabulary"
        case .malformedMerge(let source, let index, let merge):
            return "\(source): merge \(index) \(merge.debugDescription) is not two tokens separated by a space"
        case .tokenIDOutOfRange(let source, let key, let id, let vocabularySize):
            return "\(source): \(key) = \(id) is outside the vocabulary (size \(vocabularySize))"
        case .duplicateToken(let source, let token, let ids):
            return "\(source): token \(token.debugDescription) appears with ids \(ids)"
        case .unknownChatTemplate(let excerpt):
            return "unrecognised chat template (supported: ChatML as SmolLM2's, Gemma 3's, Llama 3's, Qwen2.5's): "
                + excerpt.debugDescription
        case .invalidConversation(let reason):
            return "the chat template refuses this conversation: \(reason)"
        case .noChatTemplate:
            return "the tokenizer has no chat template"
        }
    }
}
