#!/usr/bin/env python3
"""Writes the checkpoint-loading fixtures of ModelsTests into Tests/ModelsTests/Fixtures/.

Run: /work/venv/bin/python Tests/Fixtures/make_loading_fixtures.py
Needs numpy, torch, transformers (5.x), safetensors and gguf. Deterministic (fixed seeds).

GGUF files:
  quant_types.gguf            one tensor per supported type (F32, F16, BF16, Q8_0, Q4_0, Q4_1,
                              Q5_0, Q5_1, Q4_K, Q6_K), every metadata value type incl. nested arrays,
                              general.alignment = 64. Q4_K/Q6_K blocks are random bytes with sane
                              scales (gguf cannot quantise them); expected values are what
                              gguf.quants.dequantize returns. -> quant_types.expected.safetensors
  unsupported_q2_k.gguf       a Q2_K tensor (not supported by the runtime).
  tiny_llama.gguf             llama, q/k permuted as llama.cpp does, Q8_0 embedding, no output
                              (tied), tokenizer.ggml.* metadata. -> tiny_llama.expected.safetensors
                              holds the Hugging Face names and layouts.
  tiny_gemma2.gguf            gemma2 norms stored +1, post norms, softcaps.
  tiny_qwen2.gguf             qwen2 with q/k/v biases and an untied output.
HF directories (saved by transformers, tiny random weights), each with <dir>.expected.safetensors:
  hf_llama4x/                 BF16 weights, config rewritten in 4.x style (rope_theta +
                              rope_scaling llama3), generation_config eos list, tokenizer files.
  hf_llama5x_sharded/         5.x config (rope_parameters linear), sharded with an index, tied.
  hf_qwen2/                   F16 weights.
  hf_gemma2/                  5.x config with layer_types.
  hf_gpt2_cls/                GPT2ForSequenceClassification (num_labels 1, pad_token_id).
  hf_gpt2_legacy/             GPT2LMHeadModel saved with old names (no "transformer." prefix,
                              attn.bias buffers), vocab.json + merges.txt.
"""
import json
import os
import shutil

import numpy as np
import torch
import gguf
from gguf import GGMLQuantizationType as Q
from safetensors.numpy import save_file as save_np
from safetensors.torch import save_file as save_torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "ModelsTests", "Fixtures")
rng = np.random.default_rng(1234)
torch.manual_seed(1234)


def path(name):
    return os.path.join(OUT, name)


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def random_k_blocks(qtype, rows, cols):
    """Random Q4_K / Q6_K rows with finite, small scales; returns (bytes [rows, nbytes], expected)."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    nb = rows * cols // block
    raw = rng.integers(0, 256, size=(nb, size), dtype=np.uint8)
    if qtype == Q.Q4_K:
        raw[:, 0:2] = np.float16(rng.uniform(0.001, 0.02, nb)).view(np.uint8).reshape(nb, 2)
        raw[:, 2:4] = np.float16(rng.uniform(0.001, 0.02, nb)).view(np.uint8).reshape(nb, 2)
    else:  # Q6_K: d is the last 2 bytes
        raw[:, size - 2:size] = np.float16(rng.uniform(0.0005, 0.005, nb)).view(np.uint8).reshape(nb, 2)
    raw = raw.reshape(rows, -1)
    expected = gguf.quants.dequantize(raw, qtype).astype(np.float32).reshape(rows, cols)
    return raw, expected


def quant_types():
    w = gguf.GGUFWriter(path("quant_types.gguf"), "llama")
    w.add_custom_alignment(64)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.25)
    w.add_uint64("test.u64", 1 << 40)
    w.add_int64("test.i64", -(1 << 40))
    w.add_float64("test.f64", 3.5)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo")
    w.add_array("test.array", ["a", "bc", ""])
    w.add_array("test.nested", [[1, 2], [3]])
    expected = {}
    x = rng.standard_normal((4, 64)).astype(np.float32)
    w.add_tensor("t_f32", x)
    expected["t_f32"] = x
    xh = x.astype(np.float16)
    w.add_tensor("t_f16", xh)
    expected["t_f16"] = xh.astype(np.float32)
    for name, qt in [("t_bf16", Q.BF16), ("t_q8_0", Q.Q8_0), ("t_q4_0", Q.Q4_0), ("t_q4_1", Q.Q4_1),
                     ("t_q5_0", Q.Q5_0), ("t_q5_1", Q.Q5_1)]:
        q = gguf.quants.quantize(x, qt)
        w.add_tensor(name, q, raw_dtype=qt)
        expected[name] = gguf.quants.dequantize(q, qt).astype(np.float32).reshape(x.shape)
    for name, qt in [("t_q4_k", Q.Q4_K), ("t_q6_k", Q.Q6_K)]:
        raw, exp = random_k_blocks(qt, 2, 256)
        w.add_tensor(name, raw, raw_dtype=qt)
        expected[name] = exp
    x3 = rng.standard_normal((2, 3, 32)).astype(np.float32)  # 3-D: dims reversed in the file
    w.add_tensor("t_3d", x3)
    expected["t_3d"] = x3
    finish(w)
    save_np(expected, path("quant_types.expected.safetensors"))

    w = gguf.GGUFWriter(path("unsupported_q2_k.gguf"), "llama")
    w.add_tensor("t_q2_k", rng.integers(0, 256, size=(1, 84), dtype=np.uint8), raw_dtype=Q.Q2_K)
    finish(w)


def llama_permute(w, n_head):
    # As llama.cpp's convert_hf_to_gguf.py LlamaModel.permute.
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def add_tokenizer_meta(w, vocab):
    tokens = ["<s>", "</s>"] + [f"t{i}" for i in range(vocab - 2)]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([3, 3] + [1] * (vocab - 2))
    w.add_token_scores([0.0] * vocab)
    w.add_token_merges(["t 1", "t 2"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    w.add_add_bos_token(False)
    w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")


def tiny_gguf(arch, fname, vocab=48, hidden=32, heads=4, kv=2, inter=64, layers=2):
    dh = hidden // heads
    w = gguf.GGUFWriter(path(fname), arch)
    w.add_context_length(256)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(inter)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(100000.0)
    if arch == "gemma2":
        w.add_key_length(dh)
        w.add_value_length(dh)
        w.add_attn_logit_softcapping(50.0)
        w.add_final_logit_softcapping(30.0)
        w.add_sliding_window(16)
    add_tokenizer_meta(w, vocab)
    exp = {}

    def f32(*shape, scale=0.1):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    emb = f32(vocab, hidden)
    q = gguf.quants.quantize(emb, Q.Q8_0)
    w.add_tensor("token_embd.weight", q, raw_dtype=Q.Q8_0)
    exp["model.embed_tokens.weight"] = gguf.quants.dequantize(q, Q.Q8_0).astype(np.float32).reshape(emb.shape)
    norm_names = ["attn_norm", "ffn_norm"] + (["post_attention_norm", "post_ffw_norm"] if arch == "gemma2" else [])
    hf_norm = {"attn_norm": "input_layernorm",
               "ffn_norm": "pre_feedforward_layernorm" if arch == "gemma2" else "post_attention_layernorm",
               "post_attention_norm": "post_attention_layernorm", "post_ffw_norm": "post_feedforward_layernorm"}
    for i in range(layers):
        p = f"model.layers.{i}."
        mats = {"attn_q": ("self_attn.q_proj", (heads * dh, hidden)), "attn_k": ("self_attn.k_proj", (kv * dh, hidden)),
                "attn_v": ("self_attn.v_proj", (kv * dh, hidden)), "attn_output": ("self_attn.o_proj", (hidden, heads * dh)),
                "ffn_gate": ("mlp.gate_proj", (inter, hidden)), "ffn_up": ("mlp.up_proj", (inter, hidden)),
                "ffn_down": ("mlp.down_proj", (hidden, inter))}
        for g, (h, shape) in mats.items():
            hf = f32(*shape).astype(np.float16).astype(np.float32)  # F16-representable
            stored = hf
            if arch == "llama" and g == "attn_q":
                stored = llama_permute(hf, heads)
            if arch == "llama" and g == "attn_k":
                stored = llama_permute(hf, kv)
            w.add_tensor(f"blk.{i}.{g}.weight", stored.astype(np.float16))
            exp[p + h + ".weight"] = hf
            if arch == "qwen2" and g in ("attn_q", "attn_k", "attn_v"):
                b = f32(shape[0])
                w.add_tensor(f"blk.{i}.{g}.bias", b)
                exp[p + h + ".bias"] = b
        for n in norm_names:
            hf = (1.0 + f32(hidden)).astype(np.float32) if arch != "gemma2" else f32(hidden)
            stored = hf + np.float32(1) if arch == "gemma2" else hf
            w.add_tensor(f"blk.{i}.{n}.weight", stored.astype(np.float32))
            exp[p + hf_norm[n] + ".weight"] = stored.astype(np.float32) - np.float32(1) if arch == "gemma2" else hf
    on = f32(hidden) + (0 if arch == "gemma2" else 1)
    stored = on + np.float32(1) if arch == "gemma2" else on
    w.add_tensor("output_norm.weight", stored.astype(np.float32))
    exp["model.norm.weight"] = stored.astype(np.float32) - np.float32(1) if arch == "gemma2" else on
    if arch == "qwen2":
        out = f32(vocab, hidden)
        w.add_tensor("output.weight", out)
        exp["lm_head.weight"] = out
    finish(w)
    save_np(exp, path(fname.replace(".gguf", ".expected.safetensors")))


def save_expected(model, d, tied):
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    if tied:
        sd.pop("lm_head.weight", None)
    save_torch(sd, path(d + ".expected.safetensors"))


def hf_dirs():
    from transformers import (GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel, Gemma2Config,
                              Gemma2ForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM)
    small = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)

    # Llama, BF16, 4.x-style config.
    d = "hf_llama4x"
    m = LlamaForCausalLM(LlamaConfig(**small, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)).to(torch.bfloat16)
    m.save_pretrained(path(d))
    save_expected(m, d, tied=False)
    cfg = json.load(open(path(d + "/config.json")))
    cfg.pop("rope_parameters", None)
    cfg["rope_theta"] = 500000.0
    cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                           "original_max_position_embeddings": 8192}
    cfg["transformers_version"] = "4.46.0"
    json.dump(cfg, open(path(d + "/config.json"), "w"), indent=2)
    json.dump({"bos_token_id": 1, "eos_token_id": [2, 7]}, open(path(d + "/generation_config.json"), "w"))
    json.dump({"chat_template": "{{ messages[0]['content'] }}", "add_bos_token": True},
              open(path(d + "/tokenizer_config.json"), "w"))
    json.dump({"version": "1.0", "model": {"type": "BPE", "vocab": {}, "merges": []}}, open(path(d + "/tokenizer.json"), "w"))

    # Llama, 5.x config with linear rope, sharded, tied.
    d = "hf_llama5x_sharded"
    c = LlamaConfig(**small, tie_word_embeddings=True, rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0})
    m = LlamaForCausalLM(c)
    m.save_pretrained(path(d), max_shard_size="8KB")
    save_expected(m, d, tied=True)

    # Qwen2, F16.
    d = "hf_qwen2"
    m = Qwen2ForCausalLM(Qwen2Config(**small, tie_word_embeddings=False)).to(torch.float16)
    m.save_pretrained(path(d))
    save_expected(m, d, tied=False)

    # Gemma-2.
    d = "hf_gemma2"
    c = Gemma2Config(**{**small, "num_hidden_layers": 3}, head_dim=8, query_pre_attn_scalar=8, sliding_window=16,
                     attn_logit_softcapping=50.0, final_logit_softcapping=30.0)
    m = Gemma2ForCausalLM(c)
    m.save_pretrained(path(d))
    save_expected(m, d, tied=True)

    # GPT-2 sequence classification.
    d = "hf_gpt2_cls"
    c = GPT2Config(vocab_size=64, n_positions=32, n_embd=16, n_layer=2, n_head=4, num_labels=1, pad_token_id=0)
    m = GPT2ForSequenceClassification(c)
    m.save_pretrained(path(d))
    save_expected(m, d, tied=False)

    # GPT-2 LM head with legacy names and mask buffers.
    d = "hf_gpt2_legacy"
    c = GPT2Config(vocab_size=64, n_positions=32, n_embd=16, n_layer=2, n_head=4)
    m = GPT2LMHeadModel(c)
    m.save_pretrained(path(d))
    save_expected(m, d, tied=True)
    legacy = {}
    for k, v in m.state_dict().items():
        if k == "lm_head.weight":
            continue
        legacy[k.removeprefix("transformer.")] = v.detach().contiguous()
    for i in range(2):
        legacy[f"h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, 32, 32))
    for f in os.listdir(path(d)):
        if f.endswith(".safetensors"):
            os.remove(path(d + "/" + f))
    save_torch(legacy, path(d + "/model.safetensors"), metadata={"format": "pt"})
    json.dump({"a": 0, "b": 1}, open(path(d + "/vocab.json"), "w"))
    open(path(d + "/merges.txt"), "w").write("#version: 0.2\na b\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    # Remove only what this script writes (other scripts may share the directory).
    mine = ("quant_types", "unsupported_",  "tiny_llama", "tiny_gemma2", "tiny_qwen2", "hf_")
    for f in os.listdir(OUT):
        p = path(f)
        if f.startswith(mine):
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    quant_types()
    tiny_gguf("llama", "tiny_llama.gguf")
    tiny_gguf("gemma2", "tiny_gemma2.gguf", layers=1)
    tiny_gguf("qwen2", "tiny_qwen2.gguf", layers=1)
    hf_dirs()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs
                if os.path.relpath(os.path.join(dp, f), OUT).startswith(mine))
    print(f"wrote fixtures to {os.path.normpath(OUT)}: {total} bytes")


if __name__ == "__main__":
    main()
