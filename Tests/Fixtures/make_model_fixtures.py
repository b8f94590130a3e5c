#!/usr/bin/env python3
"""Tiny random checkpoints + transformers reference outputs for the Models architecture tests.

Run with the private venv:  /work/venv/bin/python Tests/Fixtures/make_model_fixtures.py
Writes Tests/ModelsTests/Fixtures/arch/<name>/:
  config.json, model.safetensors   the checkpoint as transformers saves it (F32; qwen2 also BF16)
  modelconfig.json                 the same hyper-parameters in auditgap's ModelConfig JSON form
  cases.json                       inputs (ids, attention masks with left padding, position ids),
                                   greedy continuations, intervention / LoRA settings
  expected.safetensors             float32 expected arrays (logits, hidden states, grads)
Everything runs with eager attention, float32, CPU, fixed seeds.
"""
import json
import os
import shutil
import tempfile

import torch
from safetensors.torch import save_file
import transformers
from transformers import (GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel, Gemma2Config,
                          Gemma2ForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ModelsTests", "Fixtures", "arch")
VOCAB = 256
T = 10
PAD = 3  # left padding of row 1


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (2, T), generator=g)
    mask = torch.ones(2, T, dtype=torch.long)
    mask[1, :PAD] = 0
    ids[1, :PAD] = 0
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    return ids, mask, pos


def reinit(model, std, scale=None, seed=0):
    """Wider random init than transformers' default so that every term matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g) if p.dim() == 1 else p)
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))
            if scale:
                for key, factor in scale.items():
                    if key in name:
                        p.mul_(factor)


def model_config_json(cfg, arch, head="causalLM"):
    """auditgap ModelConfig's Codable JSON for the same hyper-parameters."""
    d = cfg.to_dict()
    if arch == "gpt2":
        out = dict(architecture="gpt2", head=head, vocabSize=d["vocab_size"], hiddenSize=d["n_embd"],
                   intermediateSize=d.get("n_inner") or 4 * d["n_embd"], numLayers=d["n_layer"],
                   numHeads=d["n_head"], numKVHeads=d["n_head"], headDim=d["n_embd"] // d["n_head"],
                   maxPositions=d["n_positions"], normEps=d["layer_norm_epsilon"], ropeTheta=10000.0,
                   ropeScaling={"none": {}}, tieWordEmbeddings=True, attentionBias=True,
                   hiddenAct=d["activation_function"], numLabels=d.get("num_labels", 1),
                   eosTokenIds=[], padTokenId=d.get("pad_token_id"))
        return out
    rp = d.get("rope_parameters") or {}
    theta = rp.get("rope_theta", d.get("rope_theta", 10000.0))
    scaling = {"none": {}}
    if rp.get("rope_type") == "llama3":
        scaling = {"llama3": {"factor": rp["factor"], "lowFreqFactor": rp["low_freq_factor"],
                              "highFreqFactor": rp["high_freq_factor"],
                              "originalMaxPositions": rp["original_max_position_embeddings"]}}
    out = dict(architecture=arch, head=head, vocabSize=d["vocab_size"], hiddenSize=d["hidden_size"],
               intermediateSize=d["intermediate_size"], numLayers=d["num_hidden_layers"],
               numHeads=d["num_attention_heads"], numKVHeads=d["num_key_value_heads"],
               headDim=d.get("head_dim") or d["hidden_size"] // d["num_attention_heads"],
               maxPositions=d["max_position_embeddings"], normEps=d["rms_norm_eps"], ropeTheta=float(theta),
               ropeScaling=scaling, tieWordEmbeddings=bool(d.get("tie_word_embeddings")),
               attentionBias=arch == "qwen2" or bool(d.get("attention_bias")),
               hiddenAct=d.get("hidden_activation") or d.get("hidden_act"), numLabels=1, eosTokenIds=[])
    if arch == "gemma2":
        out.update(queryPreAttnScalar=float(d["query_pre_attn_scalar"]),
                   attnLogitSoftcap=float(d["attn_logit_softcapping"]),
                   finalLogitSoftcap=float(d["final_logit_softcapping"]),
                   slidingWindow=d["sliding_window"],
                   slidingLayers=[t == "sliding_attention" for t in d["layer_types"]])
    return out


def save_dir(name, model, arch, head="causalLM", bf16=False):
    path = os.path.join(ROOT, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    model.save_pretrained(path, safe_serialization=True)
    if bf16:
        import copy
        copy.deepcopy(model).to(torch.bfloat16).save_pretrained(os.path.join(path, "bf16"), safe_serialization=True)
    with open(os.path.join(path, "modelconfig.json"), "w") as f:
        json.dump(model_config_json(model.config, arch, head), f, indent=1)
    return path


def forward_case(model, ids, mask, pos):
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, output_hidden_states=True)
    arrays = {"logits": out.logits.float().contiguous()}
    for i, h in enumerate(out.hidden_states):
        arrays[f"hidden.{i}"] = h.float().contiguous()
    return arrays


def generate_case(model, ids, mask, new_tokens=8, eos=None):
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False,
                             eos_token_id=eos, pad_token_id=0)
    return out[:, ids.shape[1]:].tolist()


def pick_eos(model, ids, mask):
    """A token that row 0 emits at step 3 but not before (so generation must stop there)."""
    seq = generate_case(model, ids, mask, 8)
    for step in (3, 2, 4, 1):
        tok = seq[0][step]
        if tok not in seq[0][:step]:
            return tok
    return None


def stats(name, model, ids, mask, pos):
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos)
    print(f"  {name}: max|logit| {out.logits.abs().max().item():.2f}")


def write_case(path, cases, arrays):
    with open(os.path.join(path, "cases.json"), "w") as f:
        json.dump(cases, f)
    save_file({k: v.detach().float().contiguous() for k, v in arrays.items()}, os.path.join(path, "expected.safetensors"))


def layer_hook(model, layer, delta, prompt_len=None):
    """Adds delta to the residual stream at `layer` (-1 = embedding output) like auditgap's intervention."""
    layers = model.model.layers

    def add(h):
        if prompt_len is None:
            return h + delta
        # prompt positions only: only the prefill call (length > 1) is perturbed
        return h + delta if h.shape[1] > 1 else h

    if layer < 0:
        def pre(mod, args, kwargs):
            return (add(args[0]),) + args[1:], kwargs if args else None
        def pre_kw(mod, args, kwargs):
            if args:
                return (add(args[0]),) + tuple(args[1:]), kwargs
            kwargs["hidden_states"] = add(kwargs["hidden_states"])
            return args, kwargs
        return layers[0].register_forward_pre_hook(pre_kw, with_kwargs=True)

    def post(mod, args, output):
        if isinstance(output, tuple):
            return (add(output[0]),) + output[1:]
        return add(output)
    return layers[layer].register_forward_hook(post)


def make_llama():
    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      rms_norm_eps=1e-5, tie_word_embeddings=True,
                      rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                       "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 16},
                      bos_token_id=1, eos_token_id=2, pad_token_id=0, attn_implementation="eager")
    model = LlamaForCausalLM(cfg).eval()
    reinit(model, 0.15, seed=1)
    path = save_dir("llama", model, "llama")
    ids, mask, pos = inputs(11)
    stats("llama", model, ids, mask, pos)
    arrays = forward_case(model, ids, mask, pos)
    eos = pick_eos(model, ids, mask)
    cases = {"ids": ids.tolist(), "mask": mask.tolist(), "positions": pos.tolist(),
             "generate": {"max_new_tokens": 8, "eos": [eos] if eos is not None else [],
                          "ids": generate_case(model, ids, mask, 8, eos)}}

    # Intervention: shared delta after block 1, on all positions (prefill and decoding).
    g = torch.Generator().manual_seed(5)
    delta = 0.5 * torch.randn(64, generator=g)
    hook = layer_hook(model, 1, delta)
    iv = forward_case(model, ids, mask, pos)
    arrays["intervention.logits"] = iv["logits"]
    arrays["intervention.hidden.3"] = iv["hidden.3"]
    gen_iv = generate_case(model, ids, mask, 6)
    hook.remove()
    arrays["intervention.delta"] = delta
    cases["intervention"] = {"layer": 1, "generate_ids": gen_iv, "max_new_tokens": 6}

    # Per-position delta at the embedding, gradient of the NLL of targets wrt delta.
    d2 = (0.3 * torch.randn(T, 64, generator=g)).requires_grad_(True)
    hook = layer_hook(model, -1, d2)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos)
    hook.remove()
    tpos = [6, 7, 8]
    targets = [[int(ids[b, p + 1]) for p in tpos] for b in range(2)]
    lp = torch.log_softmax(out.logits, -1)
    nll = -sum(lp[b, p, targets[b][i]] for b in range(2) for i, p in enumerate(tpos)) / (2 * len(tpos))
    nll.backward()
    arrays["grad.delta"] = d2.detach()
    arrays["grad.delta_grad"] = d2.grad
    cases["grad"] = {"layer": "embedding", "positions": tpos, "targets": targets, "nll": nll.item()}
    write_case(path, cases, arrays)
    return model, ids, mask, pos


def make_qwen():
    torch.manual_seed(2)
    cfg = Qwen2Config(vocab_size=VOCAB, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      rms_norm_eps=1e-6, tie_word_embeddings=False, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                      bos_token_id=1, eos_token_id=2, pad_token_id=0, attn_implementation="eager")
    model = Qwen2ForCausalLM(cfg).eval()
    reinit(model, 0.15, seed=2)
    path = save_dir("qwen2", model, "qwen2", bf16=True)
    ids, mask, pos = inputs(12)
    stats("qwen2", model, ids, mask, pos)
    arrays = forward_case(model, ids, mask, pos)
    cases = {"ids": ids.tolist(), "mask": mask.tolist(), "positions": pos.tolist(),
             "generate": {"max_new_tokens": 8, "eos": [], "ids": generate_case(model, ids, mask, 8)}}
    bf = Qwen2ForCausalLM.from_pretrained(os.path.join(path, "bf16"), dtype=torch.float32, attn_implementation="eager").eval()
    arrays["bf16.logits"] = forward_case(bf, ids, mask, pos)["logits"]
    write_case(path, cases, arrays)


def make_gemma():
    torch.manual_seed(3)
    cfg = Gemma2Config(vocab_size=VOCAB, hidden_size=48, intermediate_size=96, num_hidden_layers=4,
                       num_attention_heads=2, num_key_value_heads=1, head_dim=32, query_pre_attn_scalar=24,
                       sliding_window=4, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                       max_position_embeddings=128, rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                       bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=True,
                       attn_implementation="eager")
    model = Gemma2ForCausalLM(cfg).eval()
    reinit(model, 0.12, scale={"q_proj": 2.0, "k_proj": 2.0, "embed_tokens": 3.0}, seed=3)
    path = save_dir("gemma2", model, "gemma2")
    ids, mask, pos = inputs(13)
    stats("gemma2", model, ids, mask, pos)
    # Attention logits reach the soft-cap's non-linear range?
    with torch.no_grad():
        h = model.model.embed_tokens(ids) * (48 ** 0.5)
        x = model.model.layers[0].input_layernorm(h)
        att = model.model.layers[0].self_attn
        q = att.q_proj(x).view(2, T, 2, 32).transpose(1, 2)
        k = att.k_proj(x).view(2, T, 1, 32).transpose(1, 2)
        s = (q @ k.transpose(-1, -2)) * att.scaling
        print(f"  gemma2: max|attn score| layer0 {s.abs().max().item():.1f} (cap 50)")
    arrays = forward_case(model, ids, mask, pos)
    cases = {"ids": ids.tolist(), "mask": mask.tolist(), "positions": pos.tolist(),
             "generate": {"max_new_tokens": 8, "eos": [], "ids": generate_case(model, ids, mask, 8)}}
    write_case(path, cases, arrays)


def make_gpt2():
    torch.manual_seed(4)
    cfg = GPT2Config(vocab_size=VOCAB, n_embd=48, n_layer=2, n_head=4, n_positions=64,
                     activation_function="gelu_new", bos_token_id=1, eos_token_id=2, pad_token_id=0,
                     attn_implementation="eager")
    model = GPT2LMHeadModel(cfg).eval()
    reinit(model, 0.15, seed=4)
    path = save_dir("gpt2", model, "gpt2")
    ids, mask, pos = inputs(14)
    stats("gpt2", model, ids, mask, pos)
    arrays = forward_case(model, ids, mask, pos)
    cases = {"ids": ids.tolist(), "mask": mask.tolist(), "positions": pos.tolist(),
             "generate": {"max_new_tokens": 8, "eos": [], "ids": generate_case(model, ids, mask, 8)}}
    write_case(path, cases, arrays)

    # Reward model: sequence classification, reward = logit at the last non-pad token.
    cfg2 = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=64, num_labels=1,
                      activation_function="gelu_new", bos_token_id=1, eos_token_id=2, pad_token_id=0, attn_implementation="eager")
    cls = GPT2ForSequenceClassification(cfg2).eval()
    reinit(cls, 0.15, seed=5)
    path = save_dir("gpt2cls", cls, "gpt2", head="sequenceClassification")
    with torch.no_grad():
        out = cls(input_ids=ids, attention_mask=mask, position_ids=pos, output_hidden_states=True)
    arrays = {"scores": out.logits.float()}
    for i, h in enumerate(out.hidden_states):
        arrays[f"hidden.{i}"] = h.float().contiguous()
    write_case(path, {"ids": ids.tolist(), "mask": mask.tolist(), "positions": pos.tolist()}, arrays)


def make_lora(model, ids, mask, pos):
    """One LoRA step on the llama fixture with PEFT: loss and gradients of every LoRA tensor."""
    from peft import LoraConfig, get_peft_model
    path = os.path.join(ROOT, "llama_lora")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    lcfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    peft_model = get_peft_model(model, lcfg)
    g = torch.Generator().manual_seed(9)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:  # PEFT starts B at zero; make it non-zero so A's gradient is not zero
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    peft_model.save_pretrained(path)  # adapter_config.json + adapter_model.safetensors (initial state)
    if os.path.exists(os.path.join(path, "README.md")):
        os.remove(os.path.join(path, "README.md"))
    labels = ids.masked_fill(mask == 0, -100)
    labels[1, PAD] = -100  # the first real token of a left-padded row is predicted from padding: skip it
    peft_model.train()
    out = peft_model(input_ids=ids, attention_mask=mask, position_ids=pos, labels=labels)
    out.loss.backward()
    arrays = {}
    for name, p in peft_model.named_parameters():
        if p.requires_grad:
            key = name.replace(".default", "")
            arrays["grad." + key] = p.grad.detach().clone()
    write_case(path, {"ids": ids.tolist(), "mask": mask.tolist(), "positions": pos.tolist(),
                      "loss": out.loss.item(), "r": 4, "alpha": 8}, arrays)
    print(f"  lora: loss {out.loss.item():.5f}, {len(arrays)} grads")


def main():
    os.makedirs(ROOT, exist_ok=True)
    print("transformers", transformers.__version__, "torch", torch.__version__)
    torch.set_num_threads(1)
    model, ids, mask, pos = make_llama()
    make_qwen()
    make_gemma()
    make_gpt2()
    make_lora(model, ids, mask, pos)
    total = 0
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            total += os.path.getsize(os.path.join(dirpath, f))
    print(f"fixtures: {total / 1e6:.2f} MB under {ROOT}")


if __name__ == "__main__":
    main()
