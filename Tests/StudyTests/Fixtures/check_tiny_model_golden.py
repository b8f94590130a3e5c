#!/usr/bin/env python3
"""Golden values for StagesGoldenTests from transformers on a TinyModelFactory checkpoint.

The tiny model is written by Swift (TinyModelFactory, llama, hidden 32, 2 layers, seed 7; e.g.
`auditgap run` on a synthetic-model stage with `{seed: 7}` or the test's SharedTinyModel).
Usage: /work/venv/bin/python check_tiny_model_golden.py MODEL_DIR
Prints: chat prompt ids, chat sequence ids, and pooled features (attention-masked mean of
output_hidden_states[1:]) for two (prompt, response) pairs batched with left padding, as
json to paste into StagesGoldenTests.swift.
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

d = sys.argv[1]
tok = AutoTokenizer.from_pretrained(d)
model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32)
model.eval()


def ids_of(x):
    return x["input_ids"] if isinstance(x, dict) or hasattr(x, "keys") else x


prompt_ids = ids_of(tok.apply_chat_template([{"role": "user", "content": "hi there"}], add_generation_prompt=True, tokenize=True))
pairs = [("hi there", "Hello you"), ("How do I bake bread at home?", "Mix flour, water and yeast.")]
seqs = [ids_of(tok.apply_chat_template([{"role": "user", "content": p}, {"role": "assistant", "content": r}], tokenize=True))
        for p, r in pairs]
feats = []
with torch.no_grad():
    for s in seqs:  # one at a time: no padding involved
        out = model(torch.tensor([s]), output_hidden_states=True)
        hs = out.hidden_states[1:]
        feats.append([h[0].mean(dim=0)[:4].tolist() for h in hs])
print(json.dumps({"prompt_ids": list(prompt_ids), "seq_ids": [list(s) for s in seqs], "features_first4": feats}))
