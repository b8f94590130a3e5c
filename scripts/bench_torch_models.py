#!/usr/bin/env python3
"""PyTorch eager + transformers reference for `auditgap bench forward|generate`.

Random-weight SmolLM2-135M-shaped LlamaForCausalLM (hidden 576, 30 layers, 9 heads / 3 KV
heads, intermediate 1536, vocab 49152, tied), float32 holding bf16 values (as the published
bf16 checkpoint loaded in float32), torch threads 2 (override with
--threads). Workloads as in auditgap:
  forward:  hidden-state forward, batch 8 x 128, median tokens/s, two ways:
            - base model (`model.model(..., output_hidden_states=True)`): no LM head, the same
              work as auditgap's forward (the stricter comparison);
            - causal LM (`model(..., output_hidden_states=True)`): the usual transformers call
              for hidden states, which also computes the LM head's [8, 128, 49152] logits that
              auditgap skips when only hidden states are needed
  generate: model.generate greedy, 64 new tokens (min_new_tokens = max_new_tokens) after a
            16-token prompt, batch 1 and batch 8, median new tokens/s
Usage: /work/venv/bin/python scripts/bench_torch_models.py [--repeats N] [--json]
"""
import argparse
import json
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def median_seconds(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", choices=["forward", "generate"], default=None)
    ap.add_argument("--batches", default="1,8", help="generation batch sizes, comma-separated")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                      num_attention_heads=9, num_key_value_heads=3, head_dim=64, max_position_embeddings=8192,
                      rms_norm_eps=1e-5, tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
                      bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # bf16-valued float32 weights, as auditgap's bench (no effect on speed)
        for p in model.parameters():
            p.copy_(p.bfloat16().float())
    g = torch.Generator().manual_seed(1)
    results = {"threads": args.threads, "torch": torch.__version__}
    with torch.no_grad():
        if args.only in (None, "forward"):
            ids = torch.randint(10, cfg.vocab_size, (8, 128), generator=g)
            mask = torch.ones_like(ids)
            secs = median_seconds(lambda: model.model(input_ids=ids, attention_mask=mask, output_hidden_states=True),
                                  args.repeats)
            results["forward_median_seconds"] = secs
            results["forward_tokens_per_second"] = 8 * 128 / secs
            causal = median_seconds(lambda: model(input_ids=ids, attention_mask=mask, output_hidden_states=True),
                                    args.repeats)
            results["forward_causal_lm_median_seconds"] = causal
            results["forward_causal_lm_tokens_per_second"] = 8 * 128 / causal
            if not args.json:
                print(f"torch forward (hidden states, no LM head) batch 8 x 128: median {secs:.3f} s, {8 * 128 / secs:.0f} tokens/s")
                print(f"torch forward (hidden states + LM head logits, LlamaForCausalLM) batch 8 x 128: median {causal:.3f} s, "
                      f"{8 * 128 / causal:.0f} tokens/s")
        if args.only in (None, "generate"):
            for b in [int(x) for x in args.batches.split(",")]:
                prompt = torch.randint(10, cfg.vocab_size, (b, 16), generator=g)
                mask = torch.ones_like(prompt)
                fn = lambda: model.generate(input_ids=prompt, attention_mask=mask, max_new_tokens=64, min_new_tokens=64,
                                            do_sample=False, pad_token_id=0)
                secs = median_seconds(fn, args.repeats)
                results[f"generate_batch{b}_median_seconds"] = secs
                results[f"generate_batch{b}_tokens_per_second"] = b * 64 / secs
                if not args.json:
                    print(f"torch generate (greedy) batch {b}, 64 new tokens: median {secs:.3f} s, {b * 64 / secs:.1f} new tokens/s")
    if args.json:
        print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
