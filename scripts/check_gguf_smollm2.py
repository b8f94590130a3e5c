#!/usr/bin/env python3
"""Checks auditgap's GGUF loader against the `gguf` package and transformers on a real model.

Usage: /work/venv/bin/python scripts/check_gguf_smollm2.py [GGUF] [--auditgap .build/debug/auditgap]

1. `auditgap model info --model GGUF --json --export OUT.safetensors` dumps every weight as
   Float32 under its Hugging Face name.
2. Each GGUF tensor is dequantised with `gguf.quants.dequantize`, reshaped to the PyTorch shape,
   q/k un-permuted (llama) and compared with the Swift export.
3. transformers loads the same file (`AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)`)
   and every state_dict entry is compared with the Swift export.
Prints the max abs difference per tensor group and exits 1 when any exceeds --tol (1e-6).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def default_gguf():
    root = os.path.expanduser("~/.cache/auditgap")
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".gguf") and "SmolLM2" in f:
                return os.path.join(dirpath, f)
    return None


def unpermute(w, n_head):
    # Inverse of llama.cpp's reshape(n_head, 2, rows/n_head/2, in).swapaxes(1, 2).
    rows = w.shape[0]
    rest = w.shape[1:]
    return w.reshape(n_head, rows // n_head // 2, 2, *rest).swapaxes(1, 2).reshape(w.shape)


def hf_name(name, arch):
    fixed = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    if name in fixed:
        return fixed[name]
    parts = name.split(".")
    if len(parts) != 4 or parts[0] != "blk":
        return name
    module = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
              "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
              "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm",
              "ffn_norm": "pre_feedforward_layernorm" if arch == "gemma2" else "post_attention_layernorm",
              "post_attention_norm": "post_attention_layernorm", "post_ffw_norm": "post_feedforward_layernorm"}[parts[2]]
    return f"model.layers.{parts[1]}.{module}.{parts[3]}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf", nargs="?", default=default_gguf())
    ap.add_argument("--auditgap", default=".build/debug/auditgap")
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--skip-transformers", action="store_true")
    args = ap.parse_args()
    if not args.gguf or not os.path.exists(args.gguf):
        sys.exit("no GGUF given and none found under ~/.cache/auditgap (run scripts/fetch_default_model.sh)")

    import gguf
    from safetensors.numpy import load_file

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "weights.safetensors")
        info = subprocess.run([args.auditgap, "model", "info", "--model", args.gguf, "--json", "--export", out],
                              check=True, capture_output=True, text=True)
        meta = json.loads(info.stdout)
        swift = load_file(out)
    cfg = meta["config"]
    print(f"auditgap: {meta['architecture']}, {meta['parameters']} parameters in {meta['tensors']} tensors, dtypes {meta['dtypes']}")

    worst = 0.0
    failures = []

    # 1. gguf package dequantisation.
    reader = gguf.GGUFReader(args.gguf)
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    by_type = {}
    for t in reader.tensors:
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        ref = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        name = hf_name(t.name, arch)
        if arch == "llama" and t.name.endswith(("attn_q.weight", "attn_q.bias")):
            ref = unpermute(ref, cfg["numHeads"])
        elif arch == "llama" and t.name.endswith(("attn_k.weight", "attn_k.bias")):
            ref = unpermute(ref, cfg["numKVHeads"])
        if arch == "gemma2" and t.name.endswith("norm.weight"):
            ref = ref - 1
        if name not in swift:
            failures.append(f"{name}: missing from auditgap export")
            continue
        got = swift[name]
        if got.shape != ref.shape:
            failures.append(f"{name}: shape {got.shape} != {ref.shape}")
            continue
        d = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        key = t.tensor_type.name
        by_type[key] = max(by_type.get(key, 0.0), d)
        worst = max(worst, d)
        if d > args.tol:
            failures.append(f"{name}: max |diff| {d:.3g} vs gguf.quants.dequantize")
    print(f"vs gguf.quants.dequantize ({len(reader.tensors)} tensors): max |diff| per type " +
          ", ".join(f"{k} {v:.3g}" for k, v in sorted(by_type.items())))

    # 2. transformers' GGUF loading.
    if not args.skip_transformers:
        import torch
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained(os.path.dirname(args.gguf), gguf_file=os.path.basename(args.gguf),
                                                     dtype=torch.float32)
        sd = model.state_dict()
        tf_worst = 0.0
        compared = 0
        for name, tensor in sd.items():
            ref = tensor.detach().float().numpy()
            got = swift.get(name)
            if got is None and name == "lm_head.weight" and cfg["tieWordEmbeddings"]:
                got = swift["model.embed_tokens.weight"]
            if got is None:
                failures.append(f"{name}: in transformers state_dict but not in auditgap export")
                continue
            if got.shape != ref.shape:
                failures.append(f"{name}: shape {got.shape} != transformers {ref.shape}")
                continue
            d = float(np.max(np.abs(got - ref))) if ref.size else 0.0
            compared += 1
            tf_worst = max(tf_worst, d)
            if d > args.tol:
                failures.append(f"{name}: max |diff| {d:.3g} vs transformers")
        print(f"vs transformers from_pretrained(gguf_file=...) ({compared} tensors): max |diff| {tf_worst:.3g}")
        worst = max(worst, tf_worst)

        # 3. The same model saved by transformers as a sharded BF16 Hugging Face directory,
        #    loaded by auditgap through config.json + model.safetensors.index.json.
        with tempfile.TemporaryDirectory() as hf_dir:
            # A GGUF-loaded model refuses save_pretrained: copy it into a plain model first.
            conf = model.config
            if hasattr(conf, "quantization_config"):
                del conf.quantization_config
            bf = AutoModelForCausalLM.from_config(conf).to(torch.bfloat16)
            bf.load_state_dict({k: v.to(torch.bfloat16) for k, v in model.state_dict().items()})
            bf.save_pretrained(hf_dir, max_shard_size="100MB")
            shards = sorted(f for f in os.listdir(hf_dir) if f.endswith(".safetensors"))
            out = os.path.join(hf_dir, "export.bin")
            hf_info = json.loads(subprocess.run([args.auditgap, "model", "info", "--model", hf_dir, "--json", "--export", out],
                                                check=True, capture_output=True, text=True).stdout)
            for key in ["architecture", "vocabSize", "hiddenSize", "intermediateSize", "numLayers", "numHeads",
                        "numKVHeads", "headDim", "ropeTheta", "normEps", "tieWordEmbeddings", "maxPositions"]:
                a, b = hf_info["config"].get(key), cfg.get(key)
                # transformers keeps GGUF float32 metadata as is (9.99999975e-06); auditgap takes 1e-05.
                same = abs(a - b) <= 1e-6 * abs(b) if isinstance(b, float) and isinstance(a, (int, float)) else a == b
                if not same:
                    failures.append(f"config {key}: HF directory {hf_info['config'].get(key)} != GGUF {cfg.get(key)}")
            exported = load_file(out)
            hf_worst = 0.0
            for name, tensor in bf.state_dict().items():
                if name == "lm_head.weight" and cfg["tieWordEmbeddings"]:
                    continue
                ref = tensor.float().numpy()
                got = exported.get(name)
                if got is None or got.shape != ref.shape:
                    failures.append(f"{name}: missing or misshapen in the HF-directory export")
                    continue
                d = float(np.max(np.abs(got - ref)))
                hf_worst = max(hf_worst, d)
                if d > 0:
                    failures.append(f"{name}: BF16 HF directory differs by {d:.3g}")
            print(f"HF directory round trip (BF16, {len(shards)} shards + index): max |diff| {hf_worst:.3g}")

    print(f"overall max |diff| {worst:.3g} (tolerance {args.tol:g})")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures[:50]))
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
