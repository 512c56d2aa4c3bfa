/// The chat templates this module renders. A general Jinja engine is not needed: a template is
/// recognised by comparing its canonical form (tags without whitespace, string literals with
/// escapes decoded, `trim_blocks` / `lstrip_blocks` applied to the text between tags, as
/// transformers configures Jinja) with the known templates; anything else is
/// `TokenizerError.unknownChatTemplate`.
public enum ChatTemplate: Sendable, Equatable {
    /// ChatML: each message is `<|im_start|>{role}\n{content}<|im_end|>\n`, and
    /// `addGenerationPrompt` appends `<|im_start|>assistant\n`. When `defaultSystemPrompt` is set
    /// and the first message is not a system message, a system message with that text comes first
    /// (SmolLM2's template, whose default is `smolLM2SystemPrompt`).
    case chatML(defaultSystemPrompt: String?)

    /// The system prompt SmolLM2-Instruct's template inserts when the conversation has none.
    public static let smolLM2SystemPrompt = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

    /// SmolLM2's template (GGUF `tokenizer.chat_template`, `chat_template.jinja`), with `\u{1}`
    /// standing for its default system prompt.
    static let smolLM2Source = """
        {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}\
        {{ '<|im_start|>system\\n\u{1}<|im_end|>\\n' }}{% endif %}\
        {{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}\
        {% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
        """

    /// Plain ChatML without a default system prompt.
    static let chatMLSource = """
        {% for message in messages %}\
        {{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}\
        {% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
        """

    /// Recognises a Jinja chat template.
    public init(jinja source: String) throws(TokenizerError) {
        let items = JinjaCanonicalForm.items(of: source)
        if items == JinjaCanonicalForm.items(of: Self.chatMLSource) {
            self = .chatML(defaultSystemPrompt: nil)
            return
        }
        let pattern = JinjaCanonicalForm.items(of: Self.smolLM2Source)
        if items.count == pattern.count {
            var prompt: String?
            var matches = true
            for (item, expected) in zip(items, pattern) where item != expected {
                let parts = expected.split(separator: "\u{1}", omittingEmptySubsequences: false)
                guard prompt == nil, parts.count == 2, item.hasPrefix(parts[0]), item.hasSuffix(parts[1]),
                      item.count >= parts[0].count + parts[1].count
                else { matches = false; break }
                let middle = item.dropFirst(parts[0].count).dropLast(parts[1].count)
                prompt = JinjaCanonicalForm.unescape(middle)
            }
            if matches {
                self = .chatML(defaultSystemPrompt: prompt ?? "")
                return
            }
        }
        let excerpt = source.count > 120 ? String(source.prefix(120)) + "…" : source
        throw .unknownChatTemplate(excerpt: excerpt)
    }

    /// The prompt text for `messages`, and where assistant turns lie in it.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> RenderedChat {
        switch self {
        case .chatML(let defaultSystemPrompt):
            var text = ""
            var spans: [Range<Int>] = []
            for (i, message) in messages.enumerated() {
                if i == 0, let system = defaultSystemPrompt, message.role != "system" {
                    text += "<|im_start|>system\n" + system + "<|im_end|>\n"
                }
                text += "<|im_start|>" + message.role + "\n"
                let start = text.utf8.count
                text += message.content + "<|im_end|>"
                if message.role == "assistant" { spans.append(start..<text.utf8.count) }
                text += "\n"
            }
            if addGenerationPrompt { text += "<|im_start|>assistant\n" }
            return RenderedChat(text: text, assistantUTF8Spans: spans)
        }
    }
}

/// A rendered conversation.
public struct RenderedChat: Sendable, Equatable {
    public var text: String
    /// Each assistant message's content and the `<|im_end|>` that closes it, i.e. what the model
    /// is trained to produce (the loss mask), as UTF-8 offsets into `text`.
    public var assistantUTF8Spans: [Range<Int>]

    /// The same spans as string indices.
    public var assistantSpans: [Range<String.Index>] {
        let utf8 = text.utf8
        return assistantUTF8Spans.map { r in
            utf8.index(utf8.startIndex, offsetBy: r.lowerBound)..<utf8.index(utf8.startIndex, offsetBy: r.upperBound)
        }
    }
}

/// A Jinja template reduced to what decides its output, for recognising known templates.
enum JinjaCanonicalForm {
    /// Literal text becomes "T" + text; a tag becomes "{%" / "{{" + its content with whitespace
    /// outside string literals removed and each literal re-spelled as '…' with `\` and `'` escaped.
    /// Comments vanish; `-` whitespace control, `trim_blocks` and `lstrip_blocks` are applied.
    static func items(of source: String) -> [String] {
        var s = Array(source.unicodeScalars)
        if s.last == "\n" { s.removeLast() }   // Jinja's keep_trailing_newline = false
        var items: [String] = []
        var text = String.UnicodeScalarView()
        var i = 0
        var trimNextNewline = false
        var stripNextLeadingWhitespace = false
        var textStartsLine = true   // `text` began at the start of the source or of a line

        func flushText() {
            if !text.isEmpty { items.append("T" + String(text)) }
            text = String.UnicodeScalarView()
            textStartsLine = false
        }

        while i < s.count {
            let opensTag = s[i] == "{" && i + 1 < s.count && (s[i + 1] == "%" || s[i + 1] == "{" || s[i + 1] == "#")
            if !opensTag {
                if stripNextLeadingWhitespace && s[i].properties.isWhitespace { i += 1; continue }
                stripNextLeadingWhitespace = false
                if trimNextNewline && s[i] == "\n" { trimNextNewline = false; textStartsLine = true; i += 1; continue }
                trimNextNewline = false
                text.append(s[i])
                i += 1
                continue
            }
            let kind = s[i + 1]
            i += 2
            if i < s.count && s[i] == "-" {
                while let last = text.last, last.properties.isWhitespace { text.removeLast() }
                i += 1
            } else if kind == "%" || kind == "#" {
                // lstrip_blocks: spaces and tabs between the start of the line and the tag go.
                var k = text.endIndex
                while k > text.startIndex, text[text.index(before: k)] == " " || text[text.index(before: k)] == "\t" {
                    k = text.index(before: k)
                }
                if k == text.startIndex ? textStartsLine : text[text.index(before: k)] == "\n" {
                    text.removeSubrange(k...)
                }
            }
            flushText()
            let close: Unicode.Scalar = kind == "{" ? "}" : kind
            var content = kind == "{" ? "{{" : "{%"
            var stripAfter = false
            while i < s.count {
                let c = s[i]
                if c == "'" || c == "\"" {
                    var literal = String.UnicodeScalarView()
                    i += 1
                    while i < s.count && s[i] != c {
                        if s[i] == "\\" && i + 1 < s.count {
                            i += 1
                            switch s[i] {
                            case "n": literal.append("\n")
                            case "t": literal.append("\t")
                            case "r": literal.append("\r")
                            default: literal.append(s[i])
                            }
                        } else {
                            literal.append(s[i])
                        }
                        i += 1
                    }
                    i += 1
                    content += "'" + String(literal).replacingBackslashAndQuote() + "'"
                    continue
                }
                if c == "-" && i + 2 < s.count && s[i + 1] == close && s[i + 2] == "}" {
                    stripAfter = true
                    i += 3
                    break
                }
                if c == close && i + 1 < s.count && s[i + 1] == "}" {
                    i += 2
                    break
                }
                if !c.properties.isWhitespace { content.unicodeScalars.append(c) }
                i += 1
            }
            if kind != "#" { items.append(content) }
            stripNextLeadingWhitespace = stripAfter
            trimNextNewline = kind == "%" && !stripAfter
        }
        flushText()
        return items
    }

    /// Undoes the escaping of a canonical literal's contents.
    static func unescape(_ s: Substring) -> String {
        var out = ""
        var escaped = false
        for c in s {
            if !escaped && c == "\\" { escaped = true; continue }
            escaped = false
            out.append(c)
        }
        return out
    }
}

extension String {
    fileprivate func replacingBackslashAndQuote() -> String {
        var out = ""
        for c in self {
            if c == "\\" || c == "'" { out.append("\\") }
            out.append(c)
        }
        return out
    }
}
