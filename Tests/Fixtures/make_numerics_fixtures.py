#!/usr/bin/env python3
"""Golden numbers for Tests/NumericsTests (run: /work/venv/bin/python Tests/Fixtures/make_numerics_fixtures.py).

Writes Tests/NumericsTests/Fixtures/numerics_fixtures.json with:
  adamw      torch.optim.AdamW, two parameter groups (own lr / weight decay), several steps with
             given gradients under transformers' get_linear_schedule_with_warmup
  sgd        torch.optim.SGD with momentum and weight decay
  clip       torch.nn.utils.clip_grad_norm_
  schedules  transformers linear / cosine warmup schedules (LambdaLR factors per step)
  rope       transformers LlamaRotaryEmbedding (default, llama3, linear): inv_freq, cos, sin
  activations torch GELU (exact, tanh), SiLU, softmax, log-softmax on fixed inputs
"""
import json
import math
import pathlib

import torch
from transformers import LlamaConfig, get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

torch.manual_seed(0)
out = {}


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


# --- AdamW with two groups and a linear warmup/decay schedule -------------------------------
p1 = torch.nn.Parameter(torch.randn(7))
p2 = torch.nn.Parameter(torch.randn(2, 3))
init1, init2 = flat(p1), flat(p2)
opt = torch.optim.AdamW([{"params": [p1], "lr": 1e-2, "weight_decay": 0.1},
                         {"params": [p2], "lr": 3e-3, "weight_decay": 0.0}], betas=(0.9, 0.95), eps=1e-8)
steps, warmup = 6, 2
sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=warmup, num_training_steps=steps)
grads1, grads2, after1, after2, lrs = [], [], [], [], []
for s in range(steps):
    g1, g2 = torch.randn(7), torch.randn(2, 3) * 0.1
    p1.grad, p2.grad = g1.clone(), g2.clone()
    lrs.append([group["lr"] for group in opt.param_groups])
    opt.step()
    sched.step()
    grads1.append(flat(g1)); grads2.append(flat(g2))
    after1.append(flat(p1)); after2.append(flat(p2))
out["adamw"] = {"beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "steps": steps, "warmup": warmup,
                "groups": [{"lr": 1e-2, "weight_decay": 0.1, "shape": [7], "init": init1, "grads": grads1, "after": after1},
                           {"lr": 3e-3, "weight_decay": 0.0, "shape": [2, 3], "init": init2, "grads": grads2, "after": after2}],
                "lrs": lrs}

# --- SGD with momentum ------------------------------------------------------------------------
q = torch.nn.Parameter(torch.randn(5))
initq = flat(q)
sgd = torch.optim.SGD([q], lr=0.05, momentum=0.9, weight_decay=0.01)
gq, aq = [], []
for s in range(4):
    g = torch.randn(5)
    q.grad = g.clone()
    sgd.step()
    gq.append(flat(g)); aq.append(flat(q))
out["sgd"] = {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01, "init": initq, "grads": gq, "after": aq}

# --- gradient clipping ---------------------------------------------------------------------------
a, b = torch.nn.Parameter(torch.zeros(4)), torch.nn.Parameter(torch.zeros(3))
a.grad, b.grad = torch.randn(4) * 3, torch.randn(3) * 3
ga, gb = flat(a.grad), flat(b.grad)
norm = torch.nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
out["clip"] = {"grads": [ga, gb], "max_norm": 1.0, "norm": float(norm), "clipped": [flat(a.grad), flat(b.grad)]}

# --- schedules -------------------------------------------------------------------------------------
def factors(make, total):
    o = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sch = make(o)
    fs = []
    for _ in range(total + 2):
        fs.append(o.param_groups[0]["lr"])
        o.step()
        sch.step()
    return fs

out["schedules"] = {
    "warmup": 3, "total": 10,
    "linear": factors(lambda o: get_linear_schedule_with_warmup(o, 3, 10), 10),
    "cosine": factors(lambda o: get_cosine_schedule_with_warmup(o, 3, 10), 10),
}

# --- RoPE tables -----------------------------------------------------------------------------------
positions = [0, 1, 5, 100, 4097]
rope = {"head_dim": 16, "positions": positions, "cases": []}
cases = [
    ("default", 10000.0, {"rope_type": "default"}),
    ("llama3", 500000.0, {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    ("llama3_small", 10000.0, {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 2.0, "original_max_position_embeddings": 64}),
    ("linear", 10000.0, {"rope_type": "linear", "factor": 2.0}),
]
for name, theta, params in cases:
    params = dict(params, rope_theta=theta)
    cfg = LlamaConfig(hidden_size=64, num_attention_heads=4, head_dim=16, max_position_embeddings=131072,
                      rope_parameters=params)
    emb = LlamaRotaryEmbedding(cfg)
    x = torch.zeros(1, len(positions), 16)
    cos, sin = emb(x, torch.tensor([positions]))
    rope["cases"].append({"name": name, "theta": theta, "params": {k: v for k, v in params.items() if k != "rope_theta"},
                          "inv_freq": flat(emb.inv_freq), "attention_scaling": float(emb.attention_scaling),
                          "cos": flat(cos[0, :, :8]), "sin": flat(sin[0, :, :8])})
out["rope"] = rope

# --- activations -------------------------------------------------------------------------------------
xs = torch.linspace(-6, 6, 25)
rows = torch.randn(3, 11) * 3
out["activations"] = {
    "x": flat(xs),
    "gelu": flat(torch.nn.functional.gelu(xs)),
    "gelu_tanh": flat(torch.nn.functional.gelu(xs, approximate="tanh")),
    "silu": flat(torch.nn.functional.silu(xs)),
    "rows": flat(rows), "rows_shape": [3, 11],
    "softmax": flat(torch.softmax(rows, -1)),
    "log_softmax": flat(torch.log_softmax(rows, -1)),
}

path = pathlib.Path(__file__).resolve().parent.parent / "NumericsTests" / "Fixtures" / "numerics_fixtures.json"
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(out, indent=1))
print(f"wrote {path} ({path.stat().st_size} bytes)")
