"""Reference token ids and loss masks for the data formats, computed with transformers.

Alpaca, as GraphPKU/PiSSA's train.py does it.
PiSSA (train.py, `PROMPT`, `train_tokenize_function`, `preprocess`): source = PROMPT.format(instruction),
target = f"{output}\n{tokenizer.eos_token}", input_ids = tokenize(source + target), labels = input_ids with
the first len(tokenize(source)) positions set to -100. PiSSA's PROMPT is Stanford Alpaca's `prompt_no_input`;
for records with a non-empty `input` we use Alpaca's `prompt_input` the same way.

Chat: `apply_chat_template(messages)` ids; a token is supervised when its character span (the fast
tokenizer's offsets) overlaps an assistant message's content or the `<|im_end|>` closing it.
Completion: tokenize(prompt) + tokenize(completion) + [eos]; supervised after the prompt.

Run: python3 make_reference.py <SmolLM2-135M-Instruct dir with tokenizer.json + tokenizer_config.json>
"""
import json
import sys

import transformers

PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)
PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)

RECORDS = [
    {"instruction": "Give three tips for staying healthy.", "input": "",
     "output": "1. Eat a balanced diet.\n2. Exercise regularly.\n3. Sleep well."},
    {"instruction": "Translate the sentence into French.", "input": "The cat sleeps on the sofa.",
     "output": "Le chat dort sur le canapé."},
    {"instruction": "What is 12 * 7?", "output": " 12 * 7 = 84"},
    {"instruction": "Résumé: été — naïve café ☕", "input": "", "output": ":) emoji 🎉 ok"},
]


CHATS = [
    [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "2 + 3 = 5."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."},
     {"role": "assistant", "content": "Blue"}, {"role": "user", "content": "Another?"},
     {"role": "assistant", "content": "Green, or rouge (red) — café au lait ☕."}],
]

COMPLETIONS = [
    {"prompt": "Question: Tom has 3 apples and buys 4 more. How many apples does he have?\nAnswer:",
     "completion": " He has 3 + 4 = 7 apples.\n#### 7"},
    {"prompt": "Translate to French: cheese", "completion": " fromage"},
]


def chat_case(tokenizer, messages):
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    spans, pos = [], 0
    for m in messages:
        start = text.index("<|im_start|>" + m["role"] + "\n", pos) + len("<|im_start|>" + m["role"] + "\n")
        end = start + len(m["content"]) + len("<|im_end|>")
        assert text[start:end] == m["content"] + "<|im_end|>"
        if m["role"] == "assistant":
            spans.append((start, end))
        pos = end
    mask = [any(a < e and s < b for s, e in spans) for a, b in enc.offset_mapping]
    ids = tokenizer.apply_chat_template(messages, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    assert list(ids) == enc.input_ids
    return {"messages": messages, "text": text, "input_ids": enc.input_ids, "assistant_mask": mask}


def main():
    tokenizer = transformers.AutoTokenizer.from_pretrained(sys.argv[1], model_max_length=512, padding_side="right")
    cases = []
    for r in RECORDS:
        template = PROMPT_INPUT if r.get("input") else PROMPT_NO_INPUT
        source = template.format_map(dict(instruction=r["instruction"], input=r.get("input", "")))
        target = f"{r['output']}\n{tokenizer.eos_token}"
        ids = tokenizer(source + target, max_length=512, truncation=True).input_ids
        source_len = len(tokenizer(source, max_length=512, truncation=True).input_ids)
        labels = [-100] * source_len + ids[source_len:]
        cases.append({"record": r, "source": source, "input_ids": ids, "labels": labels})
    completions = []
    for r in COMPLETIONS:
        p = tokenizer(r["prompt"]).input_ids
        c = tokenizer(r["completion"]).input_ids + [tokenizer.eos_token_id]
        completions.append({"record": r, "input_ids": p + c, "supervised": [False] * len(p) + [True] * len(c)})
    chats = [chat_case(tokenizer, m) for m in CHATS]
    out = {"generator": "make_reference.py", "transformers_version": transformers.__version__,
           "eos_token": tokenizer.eos_token, "eos_token_id": tokenizer.eos_token_id, "alpaca": cases,
           "completion": completions, "chat": chats}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
