#!/usr/bin/env python3
"""Loads a model directory written by the dissociation trainer with transformers and compares
its logits with auditgap's (swift_logits.json, written by TrainingTests when
AUDITGAP_EXPORT_DIR is set). Exit 1 on a max abs difference above 1e-4.

  AUDITGAP_EXPORT_DIR=/tmp/ag_train swift test --filter TrainingTests
  /work/venv/bin/python scripts/check_trained_model.py /tmp/ag_train
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM

root = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ag_train", "dissociated")
ref = json.load(open(os.path.join(root, "swift_logits.json")))
model = AutoModelForCausalLM.from_pretrained(root, dtype=torch.float32).eval()
ids = torch.tensor(ref["ids"]).view(ref["batch"], ref["length"])
mask = torch.tensor(ref["mask"]).view(ref["batch"], ref["length"])
pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
with torch.no_grad():
    logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
swift = torch.tensor(ref["logits"], dtype=torch.float32).view_as(logits)
valid = mask.bool()
diff = (logits[valid] - swift[valid]).abs().max().item()
print(f"{type(model).__name__} loaded from {root}; max abs logit diff vs auditgap (valid positions): {diff:.3g}")
sys.exit(0 if diff <= 1e-4 else 1)
