#!/usr/bin/env python3
"""Loads models saved by auditgap with transformers / PEFT and compares logits.

  AUDITGAP_EXPORT_DIR=/tmp/ag_export swift test --filter ExportForPythonTests
  /work/venv/bin/python scripts/check_saved_models.py /tmp/ag_export

Checks: the PEFT adapter dir loads with PeftModel.from_pretrained on the fixture base and
reproduces auditgap's logits; the merged HF dir (config copied from the source) loads with
AutoModelForCausalLM; directories whose config.json auditgap generated (qwen2, gemma2, gpt2,
gpt2 sequence classification) load and reproduce auditgap's outputs. Exit 1 on any diff > 1e-4.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

ROOT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/ag_export"
FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ModelsTests", "Fixtures", "arch")


def main():
    from peft import PeftModel
    swift = load_file(os.path.join(ROOT, "swift_outputs.safetensors"))
    inp = json.load(open(os.path.join(ROOT, "inputs.json")))
    ids, mask = torch.tensor(inp["ids"]), torch.tensor(inp["mask"])
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    valid = mask.bool()
    worst = 0.0

    def report(name, a, b):
        nonlocal worst
        d = (a - b).abs()[valid].max().item() if a.dim() == 3 else (a - b).abs().max().item()
        worst = max(worst, d)
        print(f"{name}: max abs diff {d:.3g}")

    kw = dict(dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(os.path.join(FIX, "llama"), **kw).eval()
        peft = PeftModel.from_pretrained(base, os.path.join(ROOT, "llama_adapter")).eval()
        report("PEFT adapter (llama)", peft(input_ids=ids, attention_mask=mask, position_ids=pos).logits,
               swift["llama_lora.logits"])
        merged = AutoModelForCausalLM.from_pretrained(os.path.join(ROOT, "llama_merged"), **kw).eval()
        report("merged HF dir (llama)", merged(input_ids=ids, attention_mask=mask, position_ids=pos).logits,
               swift["llama_lora.logits"])
        for name in ["qwen2", "gemma2", "gpt2", "gpt2cls"]:
            cases = json.load(open(os.path.join(FIX, name, "cases.json")))
            i2, m2 = torch.tensor(cases["ids"]), torch.tensor(cases["mask"])
            p2 = torch.tensor(cases["positions"])
            path = os.path.join(ROOT, name + "_generated")
            if name == "gpt2cls":
                m = AutoModelForSequenceClassification.from_pretrained(path, **kw).eval()
                out = m(input_ids=i2, attention_mask=m2, position_ids=p2).logits
            else:
                m = AutoModelForCausalLM.from_pretrained(path, **kw).eval()
                out = m(input_ids=i2, attention_mask=m2, position_ids=p2).logits
            valid = m2.bool()
            report(f"generated config ({name})", out, swift[name + ".out"])
    print(f"worst {worst:.3g}")
    sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
