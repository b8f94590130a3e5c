#!/usr/bin/env python3
"""PyTorch eager reference for `auditgap bench pgd` (docs/BENCHMARKS.md, "bench pgd").

Seconds per PGD step on the SmolLM2-135M architecture (random weights, fp32, CPU): a forward
hook adds delta to the output of the embedding or of decoder layer i, the full model runs on
a 64-token prompt + 4 target tokens, the NLL of the target tokens is taken from the logits and
backpropagated to delta (weights frozen), as a straightforward eager implementation does.

With --batch B (default 4) it also times B prompts attacked together (one delta per prompt,
one forward/backward per step) and reports seconds per step per prompt, like auditgap's
batched column.

Usage: /work/venv/bin/python scripts/bench_torch_pgd.py [--threads 2] [--repeats 5] [--batch 4] [--json]
"""
import argparse
import json
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--target-tokens", type=int, default=4)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                      rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = LlamaForCausalLM(cfg).float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    L = cfg.num_hidden_layers
    g = torch.Generator().manual_seed(5)
    P = a.prompt_tokens

    def time_step(block, batch):
        ids = torch.randint(3, cfg.vocab_size, (batch, P + a.target_tokens), generator=g)
        targets = ids[:, P:]
        delta = torch.zeros(batch, 1, cfg.hidden_size, requires_grad=True)
        mask = torch.zeros(1, ids.shape[1], 1)
        mask[:, :P] = 1

        def hook(_module, _inputs, output):
            if isinstance(output, tuple):
                return (output[0] + mask * delta,) + tuple(output[1:])
            return output + mask * delta

        module = model.model.embed_tokens if block < 0 else model.model.layers[block]
        handle = module.register_forward_hook(hook)

        def step():
            logits = model(input_ids=ids, use_cache=False).logits
            loss = torch.nn.functional.cross_entropy(logits[:, P - 1:-1].reshape(-1, cfg.vocab_size), targets.reshape(-1))
            loss.backward()
            with torch.no_grad():
                delta.sub_(2.5e-4 * delta.grad.sign()).clamp_(-1e-3, 1e-3)
                delta.grad = None

        step()  # warm-up
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        handle.remove()
        return statistics.median(times)

    rows = []
    for name, block in [("embedding", -1), ("mid", L // 2), ("last", L - 1)]:
        rows.append({"layer": name, "block": block, "seconds_per_step": time_step(block, 1), "batch": a.batch,
                     "batch_seconds_per_step_per_prompt": time_step(block, a.batch) / a.batch})
    if a.json:
        print(json.dumps({"benchmark": "pgd-torch", "threads": a.threads, "torch": torch.__version__, "rows": rows}))
    else:
        print(f"torch {torch.__version__} eager, threads {a.threads}, median of {a.repeats}")
        print(f"layer       block   s/step (1 prompt)   s/step per prompt (batch {a.batch})")
        for r in rows:
            print(f"{r['layer']:<11} {r['block']:5d} {r['seconds_per_step']:19.4f} {r['batch_seconds_per_step_per_prompt']:36.4f}")


if __name__ == "__main__":
    main()
