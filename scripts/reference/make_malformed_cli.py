#!/usr/bin/env python3
"""Writes the binary-level malformed-input corpus, Tests/CLITests/Malformed/<parser>/, that
Tests/CLITests/MalformedInputTests.swift runs the `pissa` binary on.

    python3 scripts/reference/make_malformed_cli.py

Each case is a small file (or, for adapters, a directory) that is broken in one way; cases.json
says which command reads it and what the error must mention. Built from:
- a micro Llama (hidden 8, one layer, vocabulary 16; `micro/`) for `pissa init` on safetensors,
- a micro Llama GGUF carrying the tiny fixture's tokenizer for `pissa init` on GGUF,
- Tests/Fixtures/tiny_trainable (config.json, tokenizer.json, train.jsonl) for train / tokenize.
The library-level files in Tests/FormatsTests/Malformed are run through the binary as well
(the test lists them itself). Deterministic; needs numpy, safetensors, gguf.
"""
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import gguf
from safetensors.numpy import save

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "Tests/Fixtures/tiny_trainable"
OUT = ROOT / "Tests/CLITests/Malformed"
RNG = np.random.default_rng(11)
CASES = []


def case(parser, name, expect, command, names=None):
    """`names`: what the message must name when it is not the file itself (e.g. the model directory)."""
    entry = {"parser": parser, "file": f"{parser}/{name}", "command": command, "expect": expect}
    if names is not None:
        entry["names"] = names
    CASES.append(entry)


def fresh(name):
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


# MARK: - micro model (for pissa init)

MICRO = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8, "intermediate_size": 12,
         "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4,
         "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 64, "vocab_size": 16,
         "tie_word_embeddings": True, "torch_dtype": "float32"}


def micro_tensors():
    C, F, V, H, KV, D = 8, 12, 16, 2, 1, 4
    p = "model.layers.0."
    shapes = {
        "model.embed_tokens.weight": (V, C), p + "input_layernorm.weight": (C,),
        p + "self_attn.q_proj.weight": (H * D, C), p + "self_attn.k_proj.weight": (KV * D, C),
        p + "self_attn.v_proj.weight": (KV * D, C), p + "self_attn.o_proj.weight": (C, H * D),
        p + "post_attention_layernorm.weight": (C,), p + "mlp.gate_proj.weight": (F, C),
        p + "mlp.up_proj.weight": (F, C), p + "mlp.down_proj.weight": (C, F), "model.norm.weight": (C,),
    }
    return {k: (RNG.standard_normal(s) * 0.2).astype(np.float32) for k, s in shapes.items()}


def header_of(raw):
    n = struct.unpack("<Q", raw[:8])[0]
    return n, json.loads(raw[8:8 + n])


def with_header(header, data):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_cases():
    d = fresh("safetensors")
    micro = fresh("micro")
    (micro / "config.json").write_text(json.dumps(MICRO, indent=2))
    tensors = micro_tensors()
    valid = save(tensors)
    (micro / "model.safetensors").write_bytes(valid)
    n, header = header_of(valid)
    data = valid[8 + n:]
    q = "model.layers.0.self_attn.q_proj.weight"
    first = min((v["data_offsets"][1], k) for k, v in header.items() if k != "__metadata__")

    init = "init"
    w = lambda name, raw: (d / name).write_bytes(raw)
    w("truncated_in_length_prefix.safetensors", valid[:5])
    case("safetensors", "truncated_in_length_prefix.safetensors", ["shorter than the 8-byte"], init)
    w("truncated_in_header.safetensors", valid[:8 + n // 2])
    case("safetensors", "truncated_in_header.safetensors", ["header length"], init)
    w("truncated_at_data_start.safetensors", valid[:8 + n])
    case("safetensors", "truncated_at_data_start.safetensors", ["past the end"], init)
    w("truncated_at_tensor_boundary.safetensors", valid[:8 + n + first[0]])
    case("safetensors", "truncated_at_tensor_boundary.safetensors", ["past the end"], init)
    w("truncated_last_byte.safetensors", valid[:-1])
    case("safetensors", "truncated_last_byte.safetensors", ["past the end"], init)
    w("header_length_2pow63.safetensors", struct.pack("<Q", 1 << 63) + valid[8:])
    case("safetensors", "header_length_2pow63.safetensors", ["header length"], init)
    w("header_length_negative.safetensors", struct.pack("<q", -8) + valid[8:])
    case("safetensors", "header_length_negative.safetensors", ["header length"], init)

    h = json.loads(json.dumps(header))
    h[q]["data_offsets"] = [0, h[q]["data_offsets"][1] - h[q]["data_offsets"][0]]
    w("overlapping_tensors.safetensors", with_header(h, data))
    case("safetensors", "overlapping_tensors.safetensors", ["overlap"], init)
    h = json.loads(json.dumps(header))
    h[q]["dtype"] = "F16"
    w("dtype_shape_mismatch.safetensors", with_header(h, data))
    case("safetensors", "dtype_shape_mismatch.safetensors", [q], init)
    h = json.loads(json.dumps(header))
    h[q]["shape"] = [2 ** 62, 2 ** 62]
    w("shape_2pow62_squared.safetensors", with_header(h, data))
    case("safetensors", "shape_2pow62_squared.safetensors", [q, "more elements or bytes than fit"], init)
    h = json.loads(json.dumps(header))
    h[q]["data_offsets"] = [h[q]["data_offsets"][0], 2 ** 64 - 1]
    w("offset_2pow64_minus_1.safetensors", with_header(h, data))
    case("safetensors", "offset_2pow64_minus_1.safetensors", [q], init)
    h = json.loads(json.dumps(header))
    h[q]["dtype"] = "I32"
    w("integer_weight.safetensors", with_header(h, data))
    case("safetensors", "integer_weight.safetensors", [q], init)
    raw = with_header({"__metadata__": {"a": "b"}}, b"")
    nested = b'{"__metadata__":' + b'{"x":' * 5000 + b'"y"' + b"}" * 5000 + b"}"
    w("header_nested_5000_deep.safetensors", struct.pack("<Q", len(nested)) + nested)
    case("safetensors", "header_nested_5000_deep.safetensors", ["JSON"], init)
    bad_name = with_header({}, b"").replace(b"{}", b'{"\xff\xfe":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}')
    bad_name = struct.pack("<Q", len(bad_name) - 8) + bad_name[8:]
    w("tensor_name_not_utf8.safetensors", bad_name)
    case("safetensors", "tensor_name_not_utf8.safetensors", ["UTF-8"], init)
    del raw

    for label, value in [("nan", np.nan), ("inf", np.inf)]:
        t = {k: v.copy() for k, v in tensors.items()}
        name = "model.layers.0.mlp.gate_proj.weight" if label == "inf" else q
        t[name].reshape(-1)[5] = value
        w(f"{label}_weight.safetensors", save(t))
        case("safetensors", f"{label}_weight.safetensors", [name, "non-finite"], init)


def rank_and_target_cases():
    """Not files: init settings the micro model cannot satisfy (the message names the model)."""
    CASES.append({"parser": "settings", "file": "micro/model.safetensors", "command": "init-rank-too-large",
                  "expect": ["exceeds min(4, 8)"]})
    CASES.append({"parser": "settings", "file": "micro/model.safetensors", "command": "init-unknown-target",
                  "expect": ["no module matches", "nope_proj"]})


# MARK: - GGUF (pissa init)

def micro_gguf(path, tensors, drop=None):
    tok = json.loads((FIX / "tokenizer.json").read_text())
    vocab = {**tok["model"]["vocab"], **{a["content"]: a["id"] for a in tok["added_tokens"]}}
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    added = {a["content"] for a in tok["added_tokens"]}
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_feed_forward_length(12)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in added else 1 for t in tokens])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]])
    w.add_eos_token_id(2)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    for k, v in tensors.items():
        if k.startswith("model.layers.0."):
            short = k[len("model.layers.0."):]
            g = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
                 "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
                 "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
                 "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
                 "mlp.down_proj.weight": "ffn_down.weight"}[short]
            names[k] = "blk.0." + g
    for k, v in tensors.items():
        if names[k] != drop:
            w.add_tensor(names[k], v)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def gguf_cases():
    d = fresh("gguf")
    tensors = micro_tensors()
    # The embedding must cover the tokenizer's 320 tokens for the GGUF to be a consistent model.
    tensors["model.embed_tokens.weight"] = (RNG.standard_normal((320, 8)) * 0.2).astype(np.float32)
    t = {k: v.copy() for k, v in tensors.items()}
    t["model.layers.0.self_attn.v_proj.weight"].reshape(-1)[3] = np.nan
    micro_gguf(d / "nan_weight.gguf", t)
    case("gguf", "nan_weight.gguf", ["blk.0.attn_v.weight", "non-finite"], "init")
    t = {k: v.copy() for k, v in tensors.items()}
    t["model.layers.0.mlp.down_proj.weight"].reshape(-1)[0] = -np.inf
    micro_gguf(d / "inf_weight.gguf", t)
    case("gguf", "inf_weight.gguf", ["blk.0.ffn_down.weight", "non-finite"], "init")
    micro_gguf(d / "missing_tensor.gguf", tensors, drop="blk.0.attn_k.weight")
    case("gguf", "missing_tensor.gguf", ["'blk.0.attn_k.weight' is missing"], "init")
    micro_gguf(d / "valid.gguf", tensors)
    raw = (d / "valid.gguf").read_bytes()
    (d / "truncated_in_data.gguf").write_bytes(raw[:-100])
    case("gguf", "truncated_in_data.gguf", ["runs past the end"], "init")
    # Truncations at every structural boundary: magic, version, counts, each metadata entry's
    # key / type / value, the tensor infos, the padding before the data.
    reader = gguf.GGUFReader(str(d / "valid.gguf"))
    fields = list(reader.fields.values())
    cuts = {"magic": 2, "version": 6, "tensor_count": 12, "kv_count": 20}
    meta = [f for f in fields if not f.name.startswith("GGUF.")]
    for f in meta[:3] + meta[-1:]:
        key = f.name.replace(".", "_")
        start = int(f.offset)
        cuts[f"{key}_key"] = start + 4
        cuts[f"{key}_type"] = start + 8 + len(f.name) + 2
        cuts[f"{key}_value"] = start + 8 + len(f.name) + 4 + 1
    infos = int(fields[-1].offset) + sum(int(p.nbytes) for p in fields[-1].parts)
    cuts["first_tensor_info"] = infos + 10
    cuts["last_tensor_info"] = int(reader.tensors[-1].field.offset) + 6
    cuts["padding"] = int(reader.tensors[0].data_offset) - 1
    for label, cut in cuts.items():
        name = f"truncated_in_{label}.gguf"
        (d / name).write_bytes(raw[:cut])
        case("gguf", name, ["truncated"] if cut < int(reader.tensors[0].data_offset) - 1 else ["runs past the end"], "init")
    (d / "tensor_count_2pow63.gguf").write_bytes(raw[:8] + struct.pack("<Q", 1 << 63) + raw[16:])
    case("gguf", "tensor_count_2pow63.gguf", ["tensor count"], "init")
    (d / "kv_count_minus_1.gguf").write_bytes(raw[:16] + struct.pack("<q", -1) + raw[24:])
    case("gguf", "kv_count_minus_1.gguf", ["metadata entry count"], "init")
    (d / "valid.gguf").unlink()


# MARK: - config.json (pissa train reads the model's config)

def config_cases():
    d = fresh("config")
    base = json.loads((FIX / "config.json").read_text())
    bad = {
        "heads_zero.json": ({**base, "num_attention_heads": 0}, ["num_attention_heads"]),
        "kv_heads_not_divisor.json": ({**base, "num_key_value_heads": 3}, ["num_key_value_heads"]),
        "hidden_size_2pow62.json": ({**base, "hidden_size": 2 ** 62}, ["hidden_size"]),
        "layers_negative.json": ({**base, "num_hidden_layers": -1}, ["num_hidden_layers"]),
        "head_dim_odd.json": ({**base, "head_dim": 7}, ["head_dim"]),
        "vocab_size_2pow40.json": ({**base, "vocab_size": 2 ** 40}, ["vocab_size"]),
        "vocab_size_2pow64.json": ({**base, "vocab_size": 2 ** 64}, ["config.json", "'vocab_size' is out of range"]),
        "rms_norm_eps_negative.json": ({**base, "rms_norm_eps": -1.0}, ["rms_norm_eps"]),
        "hidden_size_string.json": ({**base, "hidden_size": "32"}, ["hidden_size"]),
        "vocab_size_missing.json": ({k: v for k, v in base.items() if k != "vocab_size"}, ["vocab_size"]),
        }
    for name, (value, expect) in bad.items():
        (d / name).write_text(json.dumps(value))
        case("config", name, expect, "train-config")
    (d / "shape_mismatch.json").write_text(json.dumps({**base, "intermediate_size": 64}))
    case("config", "shape_mismatch.json", ["mlp.gate_proj.weight", "the config implies [64, 32]"], "train-config", names="model")
    (d / "not_json.json").write_text('{"hidden_size": 32,')
    case("config", "not_json.json", ["config.json", "not valid JSON"], "train-config")
    (d / "nested_10000_deep.json").write_text("[" * 10000 + "]" * 10000)
    case("config", "nested_10000_deep.json", ["config.json", "not valid JSON"], "train-config")
    (d / "not_utf8.json").write_bytes(b'{"model_type": "\xff\xfe", "hidden_size": 32}')
    case("config", "not_utf8.json", ["config.json", "not valid JSON"], "train-config")


# MARK: - adapter directories (pissa train --adapter-path)

def adapter_cases():
    d = fresh("adapter")
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 4, "target_modules": ["q_proj"],
           "init_lora_weights": True}
    C, Q = 32, 32   # tiny_trainable: hidden 32, q_proj 32×32

    def lora(module="model.layers.0.self_attn.q_proj", a=(4, C), b=(Q, 4), fill=None):
        A = (RNG.standard_normal(a) * 0.1).astype(np.float32)
        B = (RNG.standard_normal(b) * 0.1).astype(np.float32)
        if fill is not None and A.size:
            A.reshape(-1)[0] = fill
        return {f"base_model.model.{module}.lora_A.weight": A, f"base_model.model.{module}.lora_B.weight": B}

    def adapter(name, expect, config=cfg, tensors=None, raw_config=None):
        p = d / name
        p.mkdir()
        (p / "adapter_config.json").write_bytes(raw_config if raw_config is not None else json.dumps(config).encode())
        if tensors is not None:
            (p / "adapter_model.safetensors").write_bytes(save(tensors))
        case("adapter", name, expect, "train-adapter")

    adapter("rank_zero", ["rank 0"], {**cfg, "r": 0}, lora())
    adapter("alpha_infinite", ["not a PEFT LoRA config"], raw_config=json.dumps(cfg).replace('"lora_alpha": 4', '"lora_alpha": 1e999').encode(),
            tensors=lora())
    adapter("rank_pattern_negative", ["rank -2"], {**cfg, "rank_pattern": {"q_proj": -2}}, lora())
    adapter("target_module_missing", ["not a projection of this model"], cfg, lora(module="model.layers.0.self_attn.nope_proj"))
    adapter("layer_beyond_model", ["not a projection of this model"], cfg, lora(module="model.layers.9.self_attn.q_proj"))
    adapter("shapes_do_not_fit", ["does not fit the weight"], cfg, lora(a=(4, 16), b=(Q, 4)))
    adapter("rank_larger_than_min", ["rank 64 exceeds min(32, 32)"], {**cfg, "r": 64}, lora(a=(64, C), b=(Q, 64)))
    adapter("factors_disagree", ["do not fit together"], cfg, lora(a=(4, C), b=(Q, 3)))
    adapter("nan_factor", ["non-finite"], cfg, lora(fill=np.nan))
    adapter("weights_missing", ["adapter_model.safetensors", "missing"], cfg, None)
    adapter("config_not_json", ["not a PEFT LoRA config"], raw_config=b"{r: 4}", tensors=lora())
    adapter("dora_without_magnitude", ["use_dora is set but lora_magnitude_vector is missing"], {**cfg, "use_dora": True}, lora())
    adapter("not_lora", ["PREFIX_TUNING"], {**cfg, "peft_type": "PREFIX_TUNING"}, lora())


# MARK: - tokenizer.json (pissa tokenize)

def tokenizer_cases():
    d = fresh("tokenizer")
    text = (FIX / "tokenizer.json").read_text()
    base = json.loads(text)

    def tok(name, value, expect):
        (d / name).write_text(json.dumps(value) if not isinstance(value, str) else value)
        case("tokenizer", name, expect, "tokenize")

    def edit(fn):
        v = json.loads(text)
        fn(v)
        return v

    tok("truncated.json", text[: len(text) // 2], ["not valid tokenizer JSON"])
    tok("vocab_id_2pow63.json", edit(lambda v: v["model"]["vocab"].update({"Ġzz": 2 ** 63 - 1})), ["outside the vocabulary"])
    tok("vocab_id_negative.json", edit(lambda v: v["model"]["vocab"].update({"Ġzz": -5})), ["outside the vocabulary"])
    tok("added_token_id_huge.json", edit(lambda v: v["added_tokens"].append({**v["added_tokens"][0], "id": 2 ** 40, "content": "<x>"})),
        ["outside the vocabulary"])
    first = next(iter(base["model"]["vocab"]))
    tok("duplicate_id.json", edit(lambda v: v["model"]["vocab"].update({"Ġzz": v["model"]["vocab"][first]})), ["appears with ids"])
    tok("merge_unknown_token.json", edit(lambda v: v["model"]["merges"].insert(0, ["Ġqqq", "www"])), ["not in the vocabulary"])
    tok("merge_malformed.json", edit(lambda v: v["model"]["merges"].insert(0, "onlyone")), ["merge 0"])
    tok("model_unigram.json", edit(lambda v: v["model"].update({"type": "Unigram"})), ["model.type"])
    tok("byte_fallback.json", edit(lambda v: v["model"].update({"byte_fallback": True})), ["byte_fallback"])
    tok("decoder_missing.json", edit(lambda v: v.pop("decoder")), ["decoder"])
    tok("nested_10000_deep.json", "[" * 10000 + "]" * 10000, ["not valid tokenizer JSON"])
    (d / "not_utf8.json").write_bytes(text.encode().replace(b'"version": "1.0"', b'"version": "\xff\xfe"', 1))
    case("tokenizer", "not_utf8.json", ["not valid UTF-8"], "tokenize")
    tok("unknown_pre_tokenizer.json", edit(lambda v: v.update({"pre_tokenizer": {"type": "Metaspace"}})), ["pre-tokenizer"])


# MARK: - training data (pissa train --data)

def jsonl_cases():
    d = fresh("jsonl")
    good = (FIX / "train.jsonl").read_bytes().splitlines()[0]

    def data(name, raw, expect):
        (d / name).write_bytes(raw)
        case("jsonl", name, expect, "train-data")

    data("not_json.jsonl", good + b"\n{not json}\n", [":2:"])
    data("invalid_utf8.jsonl", good + b'\n{"text": "\xff\xfe"}\n', [":2:"])
    data("nested_10000_deep.jsonl", b"[" * 10000 + b"]" * 10000 + b"\n", [":1:"])
    data("unknown_keys.jsonl", b'{"question": "a", "answer": "b"}\n', [":1:"])
    data("completion_not_string.jsonl", b'{"prompt": "a", "completion": 9223372036854775808}\n', [":1:"])
    data("unknown_role.jsonl", b'{"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}\n',
         [":1:", "robot"])
    data("messages_not_array.jsonl", b'{"messages": {"role": "user"}}\n', [":1:"])
    data("text_null.jsonl", b'{"text": null}\n', [":1:"])
    data("top_level_array.jsonl", b'[{"text": "a"}]\n', [":1:"])
    data("empty.jsonl", b"", ["no"])
    data("only_blank_lines.jsonl", b"\n   \n\t\n", ["no"])
    data("nothing_supervised.jsonl", b'{"prompt": "Question: 1 + 1?", "completion": ""}\n', ["no"])
    data("json_array.json", b'[{"text": "a"}, {"text": "b"}]\n', ["JSON array"])


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    safetensors_cases()
    rank_and_target_cases()
    gguf_cases()
    config_cases()
    adapter_cases()
    tokenizer_cases()
    jsonl_cases()
    (OUT / "cases.json").write_text(json.dumps(CASES, indent=1) + "\n")
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"{len(CASES)} cases, {total} bytes")
