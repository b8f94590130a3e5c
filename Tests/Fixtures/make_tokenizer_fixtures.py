#!/usr/bin/env python3
"""Builds the Tokenizers test fixtures (run with /work/venv/bin/python).

No hub downloads: tiny tokenizers are trained locally with the `tokenizers` library on the
committed corpus Tests/Fixtures/tokenizer_corpus.txt, with the pre-tokenizer, normalizer and
decoder configurations of GPT-2, Llama-3, Qwen2, SmolLM2 and a Gemma/Llama-2-like
SentencePiece-style BPE (byte fallback, "▁"). For each one we write
  Tests/TokenizersTests/Fixtures/tokenizers/<name>.json           (the tokenizer.json)
  Tests/TokenizersTests/Fixtures/tokenizers/<name>.expected.json  (ids and decodes per string)
and for the chat templates in Tests/TokenizersTests/Fixtures/templates/*.jinja
  Tests/TokenizersTests/Fixtures/chat_expected.json
rendered with transformers' apply_chat_template.

Usage: /work/venv/bin/python Tests/Fixtures/make_tokenizer_fixtures.py
"""
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "Tests", "Fixtures", "tokenizer_corpus.txt")
OUT = os.path.join(ROOT, "Tests", "TokenizersTests", "Fixtures")
TOK_OUT = os.path.join(OUT, "tokenizers")

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

TEST_STRINGS = [
    "Hello world",
    "hello world",
    " Hello world",
    "  two leading spaces",
    "trailing space ",
    "trailing spaces   ",
    "multiple   spaces   inside",
    "tab\tseparated\tvalues",
    "line one\nline two",
    "line one\n\nline three after blank",
    "windows\r\nline endings\r\n",
    "\n\n\nleading newlines",
    "ends with newline\n",
    "   \n  \t \n",
    "I'm sure you're right, he's here and we'll see; they'd've known.",
    "DON'T SHOUT, I'M LISTENING. IT'S FINE. WE'LL GO.",
    "'s 't 're 've 'm 'll 'd",
    "Numbers 0 1 22 333 4444 55555 666666 1234567890",
    "Pi is 3.14159, e is 2.71828 and 1,000,000 is a million.",
    "Prices: $5.99, €10, £7.50, ¥1000 (20% off!)",
    "Dates 2024-07-26 and times 10:30:00",
    "café naïve résumé Ångström Straße façade",
    "Cafe\u0301 with a combining accent and n\u0303",
    "Αλφάβητο και λόγος",
    "Привет, как дела?",
    "你好，世界！我们今天去公园散步。",
    "日本語のテキストです。こんにちは",
    "한국어 문장입니다",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "Emoji 😀🎉 👍🏽 ❤️ 🇫🇷 🧑‍💻",
    "Symbols © ® ™ § ¶ • … ← → ∑ ∞ ≠ ≤ ≥ √ π",
    "½ ¾ x² y³ Ⅻ Ⅳ ① ② ③",
    "def f(x):\n    return x**2 + 1  # comment",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "<html><body class=\"main\">Hello &amp; goodbye</body></html>",
    "{\"key\": \"value\", \"list\": [1, 2, 3]}",
    "https://example.com/path?query=1&x=y someone@example.org",
    "aaaaaaaaaaaaaaaa bbbbbbbbbbbb ------------ ............",
    "!!!???...,,,;;;:::",
    "camelCaseWords snake_case_words kebab-case-words",
    "The quick brown fox jumps over the lazy dog.",
    "Safety evaluation of language models requires careful measurement.",
    "zebra xylophone quixotic juxtaposition",
    "unseen characters: \u2603 \u2764 \U0001F680 \u00b5 \u03a9",
    "",
    " ",
    "a",
    "\u00a0non-breaking\u00a0spaces\u2003em space",
    "mixed 12abc34def 5g",
    "<|im_start|>user\nHi there<|im_end|>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>",
    "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
    "text<|endoftext|>more text",
    "<bos>Hello<eos>",
]


def corpus_lines():
    with open(CORPUS, encoding="utf-8") as f:
        lines = f.read().split("\n")
    # Repeat so that frequent pairs dominate; the trainer only sees this small corpus.
    return [l + "\n" for l in lines] * 3


def train_bytelevel(pre_tokenizer, specials, vocab_size=900, normalizer=None, ignore_merges=False,
                    post_processor=None):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=specials, show_progress=False)
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    tok.post_processor = post_processor if post_processor is not None else processors.ByteLevel(trim_offsets=False)
    return tok


def train_sentencepiece_like(normalizer, pre_tokenizer, decoder, specials, post_processor=None, vocab_size=700):
    """Byte-fallback BPE over "▁"-joined text, with <0xXX> byte tokens in the model vocab."""
    base = Tokenizer(models.BPE())
    base.normalizer = normalizers.Replace(" ", "\u2581")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[], show_progress=False,
                                  max_token_length=12)
    base.train_from_iterator(corpus_lines(), trainer=trainer)
    data = json.loads(base.to_str())
    trained_vocab = sorted(data["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = {}
    for s in specials:
        vocab[s] = len(vocab)
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for token, _ in trained_vocab:
        if token not in vocab:
            vocab[token] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in data["model"]["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True, unk_token="<unk>",
                               fuse_unk=True))
    if normalizer is not None:
        tok.normalizer = normalizer
    if pre_tokenizer is not None:
        tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoder
    tok.add_special_tokens(specials)
    if post_processor is not None:
        tok.post_processor = post_processor(tok)
    return tok


def build_all():
    toks = {}
    toks["gpt2"] = train_bytelevel(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                                   ["<|endoftext|>"])
    toks["gpt2_prefix"] = train_bytelevel(pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True),
                                          ["<|endoftext|>"])
    llama_specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                      "<|eot_id|>", "<|eom_id|>", "<|python_tag|>"]
    llama3 = train_bytelevel(
        pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        llama_specials, ignore_merges=True)
    bos = llama3.token_to_id("<|begin_of_text|>")
    llama3.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    toks["llama3"] = llama3
    # Same configuration without ignore_merges, to show the difference.
    toks["llama3_merges"] = train_bytelevel(
        pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        llama_specials, ignore_merges=False)
    qwen = train_bytelevel(
        pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], normalizer=normalizers.NFC())
    qwen.add_tokens(["<tool_call>", "</tool_call>"])  # non-special added tokens
    toks["qwen2"] = qwen
    toks["smollm2"] = train_bytelevel(
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]),
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    gemma_specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    toks["gemma"] = train_sentencepiece_like(
        normalizers.Replace(" ", "\u2581"), None,
        decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]),
        gemma_specials,
        post_processor=lambda t: processors.TemplateProcessing(
            single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", t.token_to_id("<bos>"))]))
    llama2_specials = ["<unk>", "<s>", "</s>"]
    toks["llama2"] = train_sentencepiece_like(
        normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")]), None,
        decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                           decoders.Strip(" ", 1, 0)]),
        llama2_specials,
        post_processor=lambda t: processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", t.token_to_id("<s>"))]))
    toks["metaspace"] = train_sentencepiece_like(
        None, pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False),
        decoders.Sequence([decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=False),
                           decoders.ByteFallback(), decoders.Fuse()]),
        llama2_specials)
    return toks


def write_tokenizer(name, tok, legacy_merges=False):
    data = json.loads(tok.to_str())
    if legacy_merges:
        data["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
    path = os.path.join(TOK_OUT, name + ".json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
    # Re-load what we wrote, so the expectations are those of the committed file.
    tok = Tokenizer.from_file(path)
    cases = []
    for s in TEST_STRINGS:
        with_special = tok.encode(s, add_special_tokens=True).ids
        without = tok.encode(s, add_special_tokens=False).ids
        cases.append({
            "text": s,
            "ids": with_special,
            "ids_no_special": without,
            "decoded": tok.decode(with_special, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(with_special, skip_special_tokens=True),
        })
    with open(os.path.join(TOK_OUT, name + ".expected.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer": name + ".json", "cases": cases}, f, ensure_ascii=False, indent=0)
    return tok


CONVERSATIONS = {
    "user_only": [{"role": "user", "content": "Hello, how are you?"}],
    "system_user": [{"role": "system", "content": "You are a careful assistant. "},
                    {"role": "user", "content": "  What is 2+2?  "}],
    "multi_turn": [{"role": "user", "content": "Hi!"},
                   {"role": "assistant", "content": "Hello! How can I help?"},
                   {"role": "user", "content": "Tell me a joke.\nMake it short."}],
    "system_multi_turn": [{"role": "system", "content": "Be brief."},
                          {"role": "user", "content": "Name a color."},
                          {"role": "assistant", "content": "Blue."},
                          {"role": "user", "content": "Another, with unicode: café 😀"}],
    "bad_alternation": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
}

TEMPLATES = {
    # template file -> (tokenizer fixture, bos, eos)
    "llama31": ("llama3", "<|begin_of_text|>", "<|eot_id|>"),
    "qwen25": ("qwen2", None, "<|im_end|>"),
    "gemma2": ("gemma", "<bos>", "<eos>"),
    "smollm2": ("smollm2", "<|im_start|>", "<|im_end|>"),
}


def render_templates(toks):
    from transformers import PreTrainedTokenizerFast
    results = []
    for tname, (tokname, bos, eos) in TEMPLATES.items():
        with open(os.path.join(OUT, "templates", tname + ".jinja"), encoding="utf-8") as f:
            template = f.read()
        kwargs = {"eos_token": eos}
        if bos is not None:
            kwargs["bos_token"] = bos
        fast = PreTrainedTokenizerFast(tokenizer_object=toks[tokname], chat_template=template, **kwargs)
        for cname, conv in CONVERSATIONS.items():
            for agp in (False, True):
                entry = {"template": tname, "tokenizer": tokname, "conversation": cname, "messages": conv,
                         "add_generation_prompt": agp, "bos_token": bos, "eos_token": eos}
                try:
                    entry["text"] = fast.apply_chat_template(conv, tokenize=False, add_generation_prompt=agp)
                except Exception as e:  # raise_exception in the template
                    entry["error"] = str(e)
                results.append(entry)
    with open(os.path.join(OUT, "chat_expected.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, ensure_ascii=False, indent=1)
    return results


def main():
    os.makedirs(TOK_OUT, exist_ok=True)
    toks = build_all()
    written = {}
    for name, tok in toks.items():
        written[name] = write_tokenizer(name, tok, legacy_merges=(name in ("gpt2_prefix", "llama2")))
    results = render_templates(written)
    print("tokenizers:", ", ".join(sorted(written)), "| strings each:", len(TEST_STRINGS),
          "| chat cases:", len(results), "errors:", sum(1 for r in results if "error" in r))


if __name__ == "__main__":
    main()
