#!/usr/bin/env python3
"""Converts a Hugging Face model directory with pytorch_model.bin weights to model.safetensors.

auditgap reads safetensors only (no pickle). Usage:
  /work/venv/bin/python scripts/convert_to_safetensors.py MODEL_DIR [OUT_DIR]
Copies config/tokenizer files to OUT_DIR (default: MODEL_DIR, in place) and writes
model.safetensors (or shards + model.safetensors.index.json for sharded .bin checkpoints).
Shared tensors (tied weights) are stored once.
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    src = sys.argv[1]
    dst = sys.argv[2] if len(sys.argv) > 2 else src
    os.makedirs(dst, exist_ok=True)
    if dst != src:
        for f in os.listdir(src):
            if f.endswith((".json", ".txt", ".model", ".jinja")) and not f.startswith("pytorch_model"):
                shutil.copy2(os.path.join(src, f), os.path.join(dst, f))
    index = os.path.join(src, "pytorch_model.bin.index.json")
    if os.path.exists(index):
        shards = sorted(set(json.load(open(index))["weight_map"].values()))
    elif os.path.exists(os.path.join(src, "pytorch_model.bin")):
        shards = ["pytorch_model.bin"]
    else:
        sys.exit(f"no pytorch_model.bin or pytorch_model.bin.index.json in {src}")
    weight_map = {}
    for i, shard in enumerate(shards):
        state = torch.load(os.path.join(src, shard), map_location="cpu", weights_only=True)
        seen = {}
        tensors = {}
        for name, t in state.items():
            key = (t.data_ptr(), t.shape, t.dtype)
            if key in seen:
                continue  # tied copy
            seen[key] = name
            tensors[name] = t.contiguous()
        out = "model.safetensors" if len(shards) == 1 else f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(tensors, os.path.join(dst, out), metadata={"format": "pt"})
        weight_map.update({n: out for n in tensors})
        print(f"wrote {out}: {len(tensors)} tensors")
    if len(shards) > 1:
        json.dump({"metadata": {}, "weight_map": weight_map}, open(os.path.join(dst, "model.safetensors.index.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
