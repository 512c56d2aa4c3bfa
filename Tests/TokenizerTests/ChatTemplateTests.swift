import XCTest
@testable import Tokenizer

/// Chat templates against transformers' `apply_chat_template`.
final class ChatTemplateTests: XCTestCase {
    func testSmolLM2TemplateIsRecognised() throws {
        let template = try ChatTemplate(jinja: Fixtures.cases.chat_template)
        XCTAssertEqual(template, .chatML(defaultSystemPrompt: ChatTemplate.smolLM2SystemPrompt))
        XCTAssertEqual(ChatTemplate.smolLM2SystemPrompt, "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    }

    func testRendersByteIdenticalToTransformers() throws {
        let template = try ChatTemplate(jinja: Fixtures.cases.chat_template)
        let tokenizer = try Fixtures.gguf(.smolLM, chatTemplate: Fixtures.cases.chat_template)
        for c in Fixtures.cases.chat {
            let rendered = try template.render(c.messages, addGenerationPrompt: c.add_generation_prompt)
            XCTAssertEqual(rendered.text, c.text)
            XCTAssertEqual(tokenizer.encode(rendered.text), c.ids_smollm)
            let chat = try tokenizer.encodeChat(c.messages, addGenerationPrompt: c.add_generation_prompt)
            XCTAssertEqual(chat.ids, c.ids_smollm)
        }
    }

    /// Spans cover each assistant message's content and its closing <|im_end|>.
    func testAssistantSpans() throws {
        let template = ChatTemplate.chatML(defaultSystemPrompt: ChatTemplate.smolLM2SystemPrompt)
        let messages = [ChatMessage(role: "user", content: "2+2?"), ChatMessage(role: "assistant", content: "4 — four"),
                        ChatMessage(role: "user", content: "and 3+3?"), ChatMessage(role: "assistant", content: "6")]
        let rendered = try template.render(messages, addGenerationPrompt: false)
        XCTAssertEqual(rendered.assistantSpans.map { String(rendered.text[$0]) }, ["4 — four<|im_end|>", "6<|im_end|>"])

        let tokenizer = try Fixtures.gguf(.smolLM, chatTemplate: Fixtures.cases.chat_template)
        let chat = try tokenizer.encodeChat(messages)
        XCTAssertEqual(chat.ids.count, chat.assistantMask.count)
        let masked = zip(chat.ids, chat.assistantMask).filter(\.1).map(\.0)
        XCTAssertEqual(tokenizer.decode(masked), "4 — four<|im_end|>6<|im_end|>")
    }

    /// Whitespace inside tags, quote style, escaped newlines, a trailing newline and another
    /// default system prompt do not matter; anything else is an unknown template.
    func testRecognitionIsByMeaning() throws {
        let variant = """
            {% for message in messages %}
            {% if loop.first and messages[0]["role"] != "system" %}{{ "<|im_start|>system\\nBe brief.<|im_end|>\\n" }}{% endif %}
            {{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}
            {% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}

            """
        XCTAssertEqual(try ChatTemplate(jinja: variant), .chatML(defaultSystemPrompt: "Be brief."))
        XCTAssertEqual(try ChatTemplate(jinja: ChatTemplate.chatMLSource), .chatML(defaultSystemPrompt: nil))

        let unknown = "{% for message in messages %}{{ message['content'] }}{% endfor %}"
        let error = expectTokenizerError { try ChatTemplate(jinja: unknown) }
        guard case .unknownChatTemplate = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertTrue(error!.description.contains("unrecognised chat template"))
        // Text between tags is output, so it changes the template.
        expectTokenizerError { try ChatTemplate(jinja: Fixtures.cases.chat_template + "!") }
        let noTemplate = try Fixtures.gguf(.smolLM)
        XCTAssertEqual(expectTokenizerError { try noTemplate.chatTemplate() }, .noChatTemplate)
    }

    /// Gemma 3's, Llama 3's and Qwen2.5's own templates are recognised and render as
    /// transformers' `apply_chat_template` does (ids: FamilyTokenizerTests, SentencePieceTests).
    func testFamilyTemplatesRenderAsTransformers() throws {
        let cases = FamilyCases.shared
        for (source, template, family, label) in [(cases.templates.gemma, ChatTemplate.gemma, cases.gemma, "gemma"),
                                                  (cases.templates.llama3, .llama3, cases.llama3, "llama3"),
                                                  (cases.templates.qwen, .qwen2_5, cases.qwen, "qwen")] {
            XCTAssertEqual(try ChatTemplate(jinja: source), template, label)
            try assertChatsMatchTransformers(nil, template, family, label)
            // Another literal is another template.
            let changed = source.replacingOccurrences(of: "assistant", with: "helper")
            XCTAssertNotEqual(changed, source)
            guard case .unknownChatTemplate = expectTokenizerError({ try ChatTemplate(jinja: changed) }) else {
                return XCTFail("\(label): a changed template was recognised")
            }
        }
        // Whitespace inside tags and the quote style do not matter.
        let respaced = cases.templates.llama3.replacingOccurrences(of: "{% ", with: "{%  ").replacingOccurrences(of: "'", with: "\"")
        XCTAssertEqual(try ChatTemplate(jinja: respaced), .llama3)
        XCTAssertEqual(ChatTemplate.qwen2_5SystemPrompt, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
    }
}
