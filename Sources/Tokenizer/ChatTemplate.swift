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
    /// Gemma 3's: `<bos>`, then each turn `<start_of_turn>{role}\n{content, trimmed}<end_of_turn>\n`
    /// with "assistant" written "model"; a leading system message is not a turn but is put, with
    /// "\n\n", before the first user message. Roles must alternate user / assistant after it
    /// (`TokenizerError.invalidConversation` otherwise, as the template raises). The generation
    /// prompt is `<start_of_turn>model\n`.
    case gemma
    /// Llama 3 Instruct's: `<|begin_of_text|>`, then each message
    /// `<|start_header_id|>{role}<|end_header_id|>\n\n{content, trimmed}<|eot_id|>`; the
    /// generation prompt is `<|start_header_id|>assistant<|end_header_id|>\n\n`.
    case llama3
    /// Qwen2.5 Instruct's: ChatML with `qwen2_5SystemPrompt` when the first message is not a system
    /// message; consecutive "tool" messages become one user turn of `<tool_response>` blocks, and
    /// messages of other roles than system, user, assistant and tool are left out.
    case qwen2_5

    /// The system prompt SmolLM2-Instruct's template inserts when the conversation has none.
    public static let smolLM2SystemPrompt = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    /// The system prompt Qwen2.5-Instruct's template inserts when the conversation has none.
    public static let qwen2_5SystemPrompt = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

    /// Recognises a Jinja chat template.
    public init(jinja source: String) throws(TokenizerError) {
        let items = JinjaCanonicalForm.items(of: source)
        for (template, known) in [(ChatTemplate.chatML(defaultSystemPrompt: nil), Self.chatMLSource), (.gemma, Self.gemmaSource),
                                  (.llama3, Self.llama3Source), (.qwen2_5, Self.qwen2_5Source)]
        where items == JinjaCanonicalForm.items(of: known) {
            self = template
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

    /// The prompt text for `messages`, and where assistant turns lie in it; as transformers'
    /// `apply_chat_template(messages, tokenize=False, add_generation_prompt=…)` renders it.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws(TokenizerError) -> RenderedChat {
        var chat = RenderedChat(text: "", assistantUTF8Spans: [])
        switch self {
        case .chatML(let defaultSystemPrompt):
            for (i, message) in messages.enumerated() {
                if i == 0, let system = defaultSystemPrompt, message.role != "system" {
                    chat.text += "<|im_start|>system\n" + system + "<|im_end|>\n"
                }
                chat.turn(header: "<|im_start|>" + message.role + "\n", message, end: "<|im_end|>", after: "\n")
            }
            if addGenerationPrompt { chat.text += "<|im_start|>assistant\n" }
        case .qwen2_5:
            let system = messages.first?.role == "system" ? messages[0].content : Self.qwen2_5SystemPrompt
            chat.text += "<|im_start|>system\n" + system + "<|im_end|>\n"
            for (i, message) in messages.enumerated() {
                switch message.role {
                case "system" where i == 0:
                    continue
                case "user", "system", "assistant":
                    chat.turn(header: "<|im_start|>" + message.role + "\n", message, end: "<|im_end|>", after: "\n")
                case "tool":
                    if i == 0 || messages[i - 1].role != "tool" { chat.text += "<|im_start|>user" }
                    chat.text += "\n<tool_response>\n" + message.content + "\n</tool_response>"
                    if i == messages.count - 1 || messages[i + 1].role != "tool" { chat.text += "<|im_end|>\n" }
                default:
                    continue
                }
            }
            if addGenerationPrompt { chat.text += "<|im_start|>assistant\n" }
        case .gemma:
            chat.text += "<bos>"
            let hasSystem = messages.first?.role == "system"
            let prefix = hasSystem ? messages[0].content + "\n\n" : ""
            for (k, message) in messages.dropFirst(hasSystem ? 1 : 0).enumerated() {
                guard (message.role == "user") == (k % 2 == 0) else {
                    throw .invalidConversation(reason: "Conversation roles must alternate user/assistant/user/assistant/...")
                }
                let role = message.role == "assistant" ? "model" : message.role
                chat.turn(header: "<start_of_turn>" + role + "\n" + (k == 0 ? prefix : ""), message.trimmed,
                          end: "<end_of_turn>", after: "\n")
            }
            if addGenerationPrompt { chat.text += "<start_of_turn>model\n" }
        case .llama3:
            for (i, message) in messages.enumerated() {
                chat.turn(header: (i == 0 ? "<|begin_of_text|>" : "") + "<|start_header_id|>" + message.role + "<|end_header_id|>\n\n",
                          message.trimmed, end: "<|eot_id|>", after: "")
            }
            if addGenerationPrompt { chat.text += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        }
        return chat
    }
}

/// A rendered conversation.
public struct RenderedChat: Sendable, Equatable {
    public var text: String
    /// Each assistant message's content and the end-of-turn token that closes it (`<|im_end|>`,
    /// `<end_of_turn>`, `<|eot_id|>`), i.e. what the model is trained to produce (the loss mask),
    /// as UTF-8 offsets into `text`. Each starts where the generation prompt ends.
    public var assistantUTF8Spans: [Range<Int>]

    /// The same spans as string indices.
    public var assistantSpans: [Range<String.Index>] {
        let utf8 = text.utf8
        return assistantUTF8Spans.map { r in
            utf8.index(utf8.startIndex, offsetBy: r.lowerBound)..<utf8.index(utf8.startIndex, offsetBy: r.upperBound)
        }
    }

    /// Appends `header`, the message's content and `end` (a span when the role is "assistant"), then `after`.
    fileprivate mutating func turn(header: String, _ message: ChatMessage, end: String, after: String) {
        text += header
        let start = text.utf8.count
        text += message.content + end
        if message.role == "assistant" { assistantUTF8Spans.append(start..<text.utf8.count) }
        text += after
    }
}

extension ChatMessage {
    /// The message with its content stripped as Jinja's `trim` filter (Python's `str.strip()`) does.
    fileprivate var trimmed: ChatMessage {
        let scalars = content.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.isPythonWhitespace }),
              let last = scalars.lastIndex(where: { !$0.isPythonWhitespace }) else {
            return ChatMessage(role: role, content: "")
        }
        return ChatMessage(role: role, content: String(scalars[first...last]))
    }
}
