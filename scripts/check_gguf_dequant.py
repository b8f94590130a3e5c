#!/usr/bin/env python3
"""Compares auditgap's GGUF dequantisation with `gguf.quants.dequantize` on any GGUF file.

Usage: /work/venv/bin/python scripts/check_gguf_dequant.py FILE.gguf [--auditgap .build/debug/auditgap]

Runs `auditgap model info --model FILE --raw --json --export OUT.safetensors` (tensors under
their GGUF names, no architecture mapping) and compares every exported tensor. Prints the max
abs difference per GGML type; exits 1 on any difference above --tol (default 0: bit-exact).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--auditgap", default=".build/debug/auditgap")
    ap.add_argument("--tol", type=float, default=0.0)
    args = ap.parse_args()
    import gguf
    from safetensors.numpy import load_file

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "raw.safetensors")
        info = json.loads(subprocess.run([args.auditgap, "model", "info", "--model", args.gguf, "--raw", "--json",
                                          "--export", out], check=True, capture_output=True, text=True).stdout)
        swift = load_file(out)
    print(f"auditgap: gguf v{info['version']} {info['architecture']}, {info['tensors']} tensors, types {info['types']}, "
          f"unsupported {len(info['unsupported'])}")
    reader = gguf.GGUFReader(args.gguf)
    worst, count, failures = {}, 0, []
    for t in reader.tensors:
        if t.name in info["unsupported"]:
            continue
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        ref = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        got = swift.get(t.name)
        if got is None or got.shape != ref.shape:
            failures.append(f"{t.name}: missing or shape {None if got is None else got.shape} != {ref.shape}")
            continue
        both_nan = np.isnan(got) & np.isnan(ref)
        d = float(np.max(np.where(both_nan, 0, np.abs(got - ref)))) if ref.size else 0.0
        worst[t.tensor_type.name] = max(worst.get(t.tensor_type.name, 0.0), d)
        count += 1
        if d > args.tol:
            failures.append(f"{t.name} ({t.tensor_type.name}): max |diff| {d:.3g}")
    print(f"compared {count} tensors with gguf.quants.dequantize: max |diff| per type " +
          ", ".join(f"{k} {v:.3g}" for k, v in sorted(worst.items())))
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures[:50]))
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
