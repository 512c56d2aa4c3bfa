#!/usr/bin/env python3
"""Writes the fuzz seed corpora, Fuzz/Corpus/<target>/, from the tiny fixture model
(Tests/Fixtures/tiny_trainable) and the library-level malformed files (Tests/FormatsTests/Malformed).

    python3 Fuzz/make_corpus.py

Needs numpy, safetensors, gguf. Deterministic; keeps the corpus small (well under 300 KB).
Files named crash-* / regression-* in a corpus folder are fuzzer findings kept as regression
cases: this script leaves them alone.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import gguf
from safetensors.numpy import save

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "Tests/Fixtures/tiny_trainable"
MAL = ROOT / "Tests/FormatsTests/Malformed"
OUT = ROOT / "Fuzz/Corpus"
RNG = np.random.default_rng(7)


def folder(name):
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    for f in d.iterdir():
        if not f.name.startswith(("crash-", "regression-")):
            f.unlink()
    return d


def safetensors_seeds():
    d = folder("safetensors")
    for f in sorted(MAL.glob("*.safetensors")):
        shutil.copy(f, d / f.name)
    tensors = {
        "f32": RNG.standard_normal((3, 4)).astype(np.float32),
        "f16": RNG.standard_normal((5,)).astype(np.float16),
        "i64": np.arange(4, dtype=np.int64),
        "u8": np.arange(3, dtype=np.uint8),
        "scalar": np.array(1.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    (d / "valid_mixed.safetensors").write_bytes(save(tensors, metadata={"format": "pt"}))
    # The fixture model's smallest tensors (its norms), as a real header looks.
    from safetensors import safe_open
    with safe_open(str(FIX / "model.safetensors"), "np") as f:
        norms = {k: f.get_tensor(k) for k in f.keys() if "norm" in k}
    (d / "valid_tiny_norms.safetensors").write_bytes(save(dict(sorted(norms.items())[:5])))


def gguf_seeds():
    d = folder("gguf")
    for f in sorted((MAL / "gguf").glob("*.gguf")):
        shutil.copy(f, d / f.name)
    # A tiny Llama GGUF with the fixture's tokenizer, so the fuzzer reaches the hyperparameter
    # reader, the tensor-name mapping and the GGUF tokenizer.
    config = json.loads((FIX / "config.json").read_text())
    tok = json.loads((FIX / "tokenizer.json").read_text())
    vocab = {**tok["model"]["vocab"], **{a["content"]: a["id"] for a in tok["added_tokens"]}}
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    types = [3 if any(a["content"] == t for a in tok["added_tokens"]) else 1 for t in tokens]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    path = d / "valid_tiny_llama.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(config["num_attention_heads"])
    w.add_head_count_kv(config["num_key_value_heads"])
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template(json.loads((FIX / "tokenizer_config.json").read_text())["chat_template"])
    C = config["hidden_size"]
    w.add_tensor("token_embd.weight", gguf.quants.quantize(RNG.standard_normal((8, C)).astype(np.float32),
                                                             gguf.GGMLQuantizationType.Q8_0),
                 raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("blk.0.attn_norm.weight", np.ones(C, dtype=np.float32))
    w.add_tensor("output_norm.weight", np.ones(C, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    # A Gemma 3 SentencePiece tokenizer and nothing else: merges derived from the vocabulary,
    # byte fallback, a fused unknown token (the tokenizer unit tests' tiny vocabulary).
    spm = json.loads((ROOT / "Tests/TokenizerTests/Fixtures/spm_tiny_tokenizer.json").read_text())
    tokens = [t for t, _ in sorted(spm["model"]["vocab"].items(), key=lambda kv: kv[1])]
    w = gguf.GGUFWriter(str(d / "valid_gemma3_spm_tokenizer.gguf"), "gemma3")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores([-float(i) for i in range(len(tokens))])
    w.add_token_types([3 if t == "<unk>" else 6 if t.startswith("<0x") else 1 for t in tokens])
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def config_seeds():
    d = folder("config")
    shutil.copy(FIX / "config.json", d / "tiny_config.json")
    smollm = {
        "architectures": ["LlamaForCausalLM"], "hidden_size": 576, "intermediate_size": 1536,
        "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
        "rms_norm_eps": 1e-5, "rope_theta": 100000, "max_position_embeddings": 8192, "vocab_size": 49152,
        "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": [2, 0], "torch_dtype": "bfloat16",
    }
    (d / "smollm2_config.json").write_text(json.dumps(smollm))
    adapter = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 16, "lora_alpha": 16, "lora_dropout": 0.0,
        "target_modules": ["q_proj", "v_proj"], "init_lora_weights": "pissa_niter_4", "use_rslora": False,
        "rank_pattern": {"down_proj": 8}, "alpha_pattern": {"down_proj": 4.0}, "modules_to_save": None,
    }
    (d / "adapter_config.json").write_text(json.dumps(adapter, indent=2))
    (d / "adapter_regex.json").write_text(json.dumps({**adapter, "target_modules": ".*proj", "init_lora_weights": True}))
    bad = {
        "heads_zero.json": {**smollm, "num_attention_heads": 0},
        "heads_not_divisible.json": {**smollm, "num_key_value_heads": 4},
        "size_huge.json": {**smollm, "hidden_size": 2 ** 62, "head_dim": 2 ** 62},
        "size_negative.json": {**smollm, "intermediate_size": -1},
        "rank_zero.json": {**adapter, "r": 0},
        "rank_pattern_negative.json": {**adapter, "rank_pattern": {"q_proj": -4}},
    }
    for name, value in bad.items():
        (d / name).write_text(json.dumps(value))
    (d / "nested.json").write_text("[" * 300 + "]" * 300)
    (d / "not_utf8.json").write_bytes(b'{"r": 4, "lora_alpha": 8, "target_modules": ["\xff\xfe"]}')


def tokenizer_seeds():
    d = folder("tokenizer")
    tj = (FIX / "tokenizer.json").read_bytes()
    tc = (FIX / "tokenizer_config.json").read_bytes()
    (d / "load_fixture").write_bytes(b"\x00" + tj + b"\x00" + tc)
    (d / "load_fixture_no_config").write_bytes(b"\x00" + tj)
    tok = json.loads(tj)
    tok["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    tok["model"]["merges"] = tok["model"]["merges"][:20]
    (d / "load_bytelevel_20_merges").write_bytes(b"\x00" + json.dumps(tok).encode())
    texts = [
        "Hello, world! It's 2024.", "  leading spaces\tand\ttabs\n\nnew lines  ",
        "<|im_start|>user\nWhat is 3 + 5?<|im_end|>\n<|im_start|>assistant\n8<|im_end|>",
        "naïve café, 日本語のテキスト, emoji 🎉👍🏽", "1234567890 3.14159 -42",
    ]
    for i, t in enumerate(texts):
        (d / f"text_{i}").write_bytes(b"\x01" + t.encode())
    (d / "text_invalid_utf8").write_bytes(b"\x01abc\xff\xfe\xc0\x80\xed\xa0\x80def")
    ids = np.array([1, 100, 200, 319, 320, -1, 32767, 2], dtype="<i2").tobytes()
    (d / "ids").write_bytes(b"\x01" + ids)
    # SentencePiece with byte fallback: Gemma's layout (the tiny vocabulary, and text and byte-token
    # ids for the 4,905-token fixture, which falls back to bytes often).
    spm = ROOT / "Tests/TokenizerTests/Fixtures"
    (d / "load_spm_tiny").write_bytes(b"\x00" + (spm / "spm_tiny_tokenizer.json").read_bytes())
    for i, t in enumerate(texts[2:]):
        (d / f"spm_text_{i}").write_bytes(b"\x03" + t.encode())
    spm_ids = np.array([2, 478, 397, 391, 368, 468, 389, 4000, 1, 106, -1, 4904, 32767], dtype="<i2").tobytes()
    (d / "spm_ids").write_bytes(b"\x03" + spm_ids)


def jsonl_seeds():
    d = folder("jsonl")
    lines = (FIX / "train.jsonl").read_bytes().splitlines(keepends=True)
    (d / "prompt_completion").write_bytes(bytes([30]) + b"".join(lines[:4]))
    chat = [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                          {"role": "assistant", "content": "4"}]}]
    (d / "chat").write_bytes(bytes([40]) + b"\n".join(json.dumps(c).encode() for c in chat))
    (d / "alpaca").write_bytes(bytes([60]) + json.dumps({"instruction": "Add", "input": "2 and 3", "output": "5"}).encode()
                               + b"\r\n" + json.dumps({"instruction": "Say hi", "output": "hi"}).encode())
    (d / "text").write_bytes(bytes([4]) + json.dumps({"text": "A long text " * 20}).encode())
    (d / "mixed_bad_lines_skipped").write_bytes(bytes([64 + 20]) + b"\xef\xbb\xbf" + lines[0] + b"{not json}\n"
                                                + b'{"prompt": 3}\n\n   \n' + b'{"messages": [{"role": "robot", "content": "x"}]}\n'
                                                + b"\xff\xfe\n" + lines[1])
    (d / "plain_text").write_bytes(bytes([128 + 10]) + "Some plain text.\nSecond line: ünïcode\n".encode())
    (d / "plain_text_invalid_utf8").write_bytes(bytes([128 + 64 + 10]) + b"good line\n\xff bad line\nok\n")


if __name__ == "__main__":
    safetensors_seeds()
    gguf_seeds()
    config_seeds()
    tokenizer_seeds()
    jsonl_seeds()
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {sum(1 for f in OUT.rglob('*') if f.is_file())} seeds, {total} bytes")
