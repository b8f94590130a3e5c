#!/usr/bin/env python3
"""PyTorch (+ PEFT) side of `auditgap bench train|lora`.

One optimiser step (forward, backward, AdamW) on the SmolLM2-135M architecture with random
weights, batch 2 x 256 random tokens, fp32, eager, 2 threads; prints tokens/s of the median
step and the process's peak RSS (getrusage ru_maxrss), as the Swift benchmark does.

    /work/venv/bin/python scripts/bench_torch_train.py full  [--steps 3] [--checkpointing]
    /work/venv/bin/python scripts/bench_torch_train.py lora  [--steps 3]
"""
import argparse
import json
import resource
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["full", "lora"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpointing", action="store_true", help="gradient checkpointing (recompute blocks)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                      rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True, hidden_act="silu")
    model = LlamaForCausalLM(cfg).float()
    if args.checkpointing:
        model.gradient_checkpointing_enable()
    if args.mode == "lora":
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(
            r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM",
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
        lr = 1e-4
    else:
        lr = 2e-5
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.length), generator=torch.Generator().manual_seed(3))

    losses = []

    def step():
        t0 = time.perf_counter()
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(out.loss.item())
        return time.perf_counter() - t0

    warm = step()
    times = [step() for _ in range(max(1, args.steps))]
    med = sorted(times)[len(times) // 2]
    tokens = args.batch * args.length
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({
        "benchmark": "torch-" + args.mode, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "checkpointing": args.checkpointing, "batch": args.batch, "length": args.length,
        "trainable_parameters": sum(p.numel() for p in params), "warmup_seconds": warm, "step_seconds": times,
        "median_step_seconds": med, "tokens_per_second": tokens / med, "peak_rss_bytes": rss, "losses": losses,
    }, sort_keys=True))


if __name__ == "__main__":
    main()
