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

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

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
    "It'\u017fa and IT'Sa and it\u2019s",
    "control\x00chars\x07 and\rcarriage \u2028 line sep \ufeffbom",
    "x" * 150 + " " + "\u4f60\u597d\u4e16\u754c" * 40,
    "The <mask> sat on [SEP] the mat, a cat <mask>concatenated catalog cat",
    "hello world said hello  world and Hello world",
    "ΟΔΥΣΣΕΥΣ ΣΑΣ Σ and ﬁne ＡＢＣ１２ ① x⁵ 'quoted-text, with.dots-and,commas'",
    "re-enter 12,345.67 a.b.c 1-2-3 --x-- ,,lead trail..",
    "spaces before punctuation : yes . no ? ok ! a , b ' c do n't I 'm he 's we 've they 're",
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
    added = train_bytelevel(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), ["<|endoftext|>"])
    added.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, special=True, normalized=False),
                              AddedToken("[SEP]", lstrip=False, rstrip=True, special=True, normalized=False)])
    added.add_tokens([AddedToken("cat", single_word=True, normalized=True),
                      AddedToken("hello world", normalized=True)])
    toks["gpt2_added"] = added
    # A pattern without a hand-coded scanner: exercises the NSRegularExpression fallback.
    toks["split_icu"] = train_bytelevel(
        pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r"(?i:'s|n't)|\p{N}{1,2}|[A-Za-z]+|\s+|[^\sA-Za-z\p{N}]+"),
                                                      behavior="isolated"),
                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        ["<|endoftext|>"])
    toks["split_behaviors"] = train_bytelevel(
        pre_tokenizers.Sequence([pre_tokenizers.Split("-", behavior="merged_with_previous"),
                                 pre_tokenizers.Split(Regex(r"\d"), behavior="contiguous"),
                                 pre_tokenizers.Split(",", behavior="removed"),
                                 pre_tokenizers.Split(".", behavior="merged_with_next"),
                                 pre_tokenizers.Split(Regex(r"\s+"), behavior="isolated", invert=True),
                                 pre_tokenizers.Digits(individual_digits=False),
                                 pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=False)]),
        ["<|endoftext|>"])
    toks["normalizers"] = train_bytelevel(
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), ["<|endoftext|>"],
        normalizer=normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(),
                                         normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]))
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
    toks["metaspace_split"] = train_sentencepiece_like(
        None, pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True),
        decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True), llama2_specials)
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
    "thinking": [{"role": "user", "content": "What is 1+1?"},
                 {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\n2"},
                 {"role": "user", "content": "And 2+2?"},
                 {"role": "assistant", "content": "<think>\nAgain.\n</think>\n\n4"}],
    "tool_turns": [{"role": "system", "content": "Use tools."},
                   {"role": "user", "content": "Weather?"},
                   {"role": "tool", "content": "sunny"},
                   {"role": "tool", "content": "22C"},
                   {"role": "user", "content": "<tool_response>x</tool_response>"}],
}

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                          "parameters": {"type": "object", "properties": {
                                              "city": {"type": "string", "description": "City name"}},
                                              "required": ["city"]}}}]

TEMPLATES = {
    # template file -> (tokenizer fixture, bos, eos)
    "llama31": ("llama3", "<|begin_of_text|>", "<|eot_id|>"),
    "qwen25": ("qwen2", None, "<|im_end|>"),
    "gemma2": ("gemma", "<bos>", "<eos>"),
    "smollm2": ("smollm2", "<|im_start|>", "<|im_end|>"),
    "qwen3": ("qwen2", None, "<|im_end|>"),
    "deepseek_r1_distill": ("qwen2", "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>"),
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
        if tname == "qwen3":
            for cname in ("thinking", "user_only"):
                conv = CONVERSATIONS[cname]
                entry = {"template": tname, "tokenizer": tokname, "conversation": cname + "_no_thinking",
                         "messages": conv, "add_generation_prompt": True, "bos_token": bos, "eos_token": eos,
                         "extra": {"enable_thinking": False}}
                entry["text"] = fast.apply_chat_template(conv, tokenize=False, add_generation_prompt=True,
                                                         enable_thinking=False)
                results.append(entry)
        if tname in ("llama31", "qwen25", "qwen3"):
            for cname in ("user_only", "system_user"):
                conv = CONVERSATIONS[cname]
                entry = {"template": tname, "tokenizer": tokname, "conversation": cname + "_tools", "messages": conv,
                         "add_generation_prompt": True, "bos_token": bos, "eos_token": eos, "tools": ordered(TOOLS)}
                entry["text"] = fast.apply_chat_template(conv, tools=TOOLS, tokenize=False, add_generation_prompt=True)
                results.append(entry)
    with open(os.path.join(OUT, "chat_expected.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, ensure_ascii=False, indent=1)
    return results


MSGS = [{"role": "system", "content": "sys"}, {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}]

# (name, template, context): small templates covering the supported Jinja subset, rendered with
# transformers' own compiled environment (trim_blocks, lstrip_blocks, loopcontrols, tojson, ...).
JINJA_CASES = [
    ("if_elif_else", "{% if x > 2 %}big{% elif x == 2 %}two{% else %}small{% endif %}", {"x": 2}),
    ("for_loop_vars", "{% for i in items %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/"
     "{{ loop.first }}/{{ loop.last }}/{{ loop.length }};{% endfor %}", {"items": ["a", "b", "c"]}),
    ("for_else", "{% for i in [] %}x{% else %}empty{% endfor %}", {}),
    ("for_filter", "{% for i in range(10) if i is even %}{{ i }}{{ loop.length }},{% endfor %}", {}),
    ("for_unpack", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k, v in d|items %}{{ k }}{% endfor %}",
     {"d": {"b": 1, "a": 2}}),
    ("set_scoping", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = i * 10 %}{{ x }}{% endfor %}{{ x }}"
     "{% if true %}{% set y = 5 %}{% endif %}{{ y }}", {}),
    ("namespace", "{% set ns = namespace(found=false, n=0) %}{% for m in msgs %}{% if m.role == 'user' %}"
     "{% set ns.found = true %}{% set ns.n = ns.n + 1 %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }}", {"msgs": MSGS}),
    ("filters_basic", "{{ '  hi  ' | trim }}|{{ 'abc' | upper }}|{{ 'ABC' | lower }}|{{ [1, 2, 3] | length }}|"
     "{{ 'hello' | length }}|{{ undefined_var | default('dflt') }}|{{ '' | default('e', true) }}|{{ '' | default('e') }}|"
     "{{ ['a', 'b'] | join(', ') }}|{{ 'hello world' | title }}|{{ 'hELLO' | capitalize }}|{{ [1, 2] | count }}|"
     "{{ '42' | int + 1 }}|{{ 3.7 | int }}|{{ 'x' | int }}|{{ 2 | float }}|{{ -3 | abs }}|{{ 'a\nb' | indent(2) }}|"
     "{{ 'abc' | replace('b', 'X') }}|{{ [3, 1, 2] | sort }}|{{ [3, 1, 2] | sort(reverse=true) }}|{{ 'x' | string }}", {}),
    ("tojson", "{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ 'caf\u00e9 \"q\" \\n\\t' | tojson }}|"
     "{{ [1, 2.5, none, true] | tojson }}|{{ d | tojson(separators=(',', ':')) }}|{{ {} | tojson }}|{{ [] | tojson(indent=4) }}|"
     "{{ d | tojson(sort_keys=true) }}",
     {"d": {"b": [1, {"x": "y"}], "a": None, "c": 1.5}}),
    ("tests", "{{ x is defined }}{{ y is defined }}{{ y is undefined }}{{ n is none }}{{ d is mapping }}{{ l is iterable }}"
     "{{ s is string }}{{ 3 is odd }}{{ 4 is even }}{{ 6 is divisibleby 3 }}{{ x is not none }}{{ l is sequence }}"
     "{{ d is iterable }}{{ 1 is number }}{{ s is mapping }}{{ s is iterable }}{{ x is equalto 1 }}{{ true is boolean }}"
     "{{ 1 is integer }}{{ 1.0 is float }}{{ l is mapping }}{{ n is string }}",
     {"x": 1, "n": None, "d": {"k": 1}, "l": [1], "s": "str"}),
    ("string_ops", "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.startswith('  he') }}|{{ s.endswith('o  ') }}|"
     "{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'x' ~ 1 ~ none ~ true }}|{{ 'ab' * 3 }}|{{ 'hello'[1:3] }}|"
     "{{ 'hello'[::-1] }}|{{ 'hello'[-1] }}|{{ 'll' in 'hello' }}|{{ 'z' not in 'hello' }}|{{ 'a-b'.replace('-', '+') }}|"
     "{{ '\\n\\nx\\n'.strip('\\n') }}|{{ 'Hi'.upper() }}{{ 'Hi'.lower() }}|{{ 'a b c'.split(' ', 1) }}|"
     "{{ 'x</think>y'.split('</think>')[-1] }}|{{ 'hello'.startswith(('x', 'he')) }}|{{ 'ab' 'cd' }}|{{ 'a\\'b' }}",
     {"s": "  hello  "}),
    ("slicing_lists", "{{ l[1:] }}|{{ l[:-1] }}|{{ l[::-1] }}|{{ l[0] }}|{{ l[-1] }}|{{ l[1:3] }}|{{ l | first }}|"
     "{{ l | last }}|{{ l | reverse | list }}|{{ l[::2] }}|{{ l[10:] }}|{{ l[-2:] }}|{{ 2 in l }}|{{ 9 in l }}",
     {"l": [1, 2, 3, 4]}),
    ("arith", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }} "
     "{{ (1 + 2) * 3 }} {{ 1.5 + 1 }} {{ 10 / 5 }} {{ -3 }} {{ 3 - -3 }} {{ 'n=%d s=%s' % (3, 'x') }}", {}),
    ("logic", "{{ true and false }} {{ true or false }} {{ not true }} {{ 1 and 2 }} {{ 0 or 'x' }} {{ none or 'd' }} "
     "{{ 1 < 2 < 3 }} {{ 3 > 2 > 5 }} {{ 'a' if x else 'b' }} {{ 'a' if not x else 'b' }} {{ 'a' < 'b' }} "
     "{{ 'b' >= 'b' }} {{ 1 == 1.0 }} {{ none == none }} {{ [1, 2] == [1, 2] }} {{ not x is defined }} "
     "{{ x != 2 }} {{ (x == 1) != (2 % 2 == 0) }}", {"x": True}),
    ("whitespace_control", "  {%- if true -%}  \n  yes  \n  {%- endif -%}  \n{# comment #}\n  {% if true %}\n    line\n"
     "  {% endif %}\nend\n", {}),
    ("lstrip_trim", "a\n    {% for i in l %}\n    {{ i }}\n    {% endfor %}\nb\n  {{ 'expr keeps indent' }}\n"
     "{% if true %}  x{% endif %}  \n  {#- c -#}  y  {%+ if true %}z{% endif %}\n", {"l": [1, 2]}),
    ("macro", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} "
     "{{ greet('Al', '?') }} {{ greet(name='Z') }}", {}),
    ("set_block", "{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}]{% set a, b = 1, 2 %}{{ a }}{{ b }}", {}),
    ("break_continue", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 4 %}{% break %}"
     "{% endif %}{{ i }}{% endfor %}", {}),
    ("dict_access", "{{ m['role'] }} {{ m.role }} {{ m.get('x', 'dflt') }} {{ m.missing is defined }} {{ 'role' in m }} "
     "{{ m.keys() | list }} {{ m.values() | list }} {{ m }} {{ m.get('role') }}", {"m": {"role": "user", "content": "hi"}}),
    ("print_types", "{{ none }} {{ true }} {{ 1.0 }} {{ [1, 'a', none] }} {{ {'a': 1} }} {{ 0.1 }} {{ 1e20 }} {{ 2.50 }} "
     "{{ \"it's\" }} {{ [\"it's\"] }}", {}),
    ("selectattr_map", "{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}|"
     "{{ msgs | rejectattr('role', 'equalto', 'user') | list | length }}|{{ ['a', 'b', 'a'] | unique | list }}|"
     "{{ ['x', 'code_interpreter'] | reject('equalto', 'code_interpreter') | join(', ') }}|"
     "{{ [0, 1, 2] | select | list }}|{{ ['a', 'b'] | map('upper') | join }}", {"msgs": MSGS}),
    ("concat", "{{ 'a' + 'b' }}{{ [1] + [2] }}{{ 'x' ~ undefined_thing ~ 'y' }}", {}),
    ("messages_index", "{{ messages[0]['role'] }} {{ messages[1:] | length }} {{ (messages | length) - 1 }} "
     "{{ messages[-1].content }} {% for m in messages[::-1] %}{{ m.role[0] }}{% endfor %} "
     "{% for m in messages %}{% if loop.index0 > 0 and messages[loop.index0 - 1].role == 'user' %}{{ m.content }}"
     "{% endif %}{% endfor %}", {"messages": MSGS}),
    ("nested_loops", "{% for a in [1, 2] %}{% for b in [3, 4] %}{{ loop.index }}{% endfor %}{{ loop.index }}|"
     "{% endfor %}{% for x in 'ab' %}{{ x }}{{ loop.previtem is defined }}{% endfor %}", {}),
    ("generation_block", "{% for m in msgs %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}"
     "{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}", {"msgs": MSGS}),
    ("strftime_len", "{{ strftime_now('%Y-%m-%d') | length }} {{ strftime_now('%d %b %Y') | length }}", {}),
    ("dict_global", "{% set d = dict(a=1, b='x') %}{{ d.a }}{{ d['b'] }}{{ d | tojson }}", {}),
    ("format_filter", "{{ '%s-%d' | format('a', 3) }}|{{ '%r' | format('q') }}|{{ '100%%' | format() }}", {}),
    ("dict_method_vs_key", "{{ d['items'] }} {{ d.get('keys') }} {{ d.values() | list | length }} {{ d.other }}",
     {"d": {"items": "I", "keys": "K", "other": "O"}}),
    ("raise", "{% if x %}{{ raise_exception('bad input: ' ~ x) }}{% endif %}", {"x": 1}),
    ("undefined_attribute_error", "{{ foo.bar }}", {}),
    ("undefined_plus_error", "{{ foo + 'x' }}", {}),
]


def ordered(x):
    """JSON objects lose key order in Foundation; dicts are written as {"__ordered__": [[k, v], ...]}."""
    if isinstance(x, dict):
        return {"__ordered__": [[k, ordered(v)] for k, v in x.items()]}
    if isinstance(x, list):
        return [ordered(v) for v in x]
    return x


def render_jinja_cases():
    from transformers.utils.chat_template_utils import _compile_jinja_template
    out = []
    for name, template, ctx in JINJA_CASES:
        entry = {"name": name, "template": template, "context": ordered(ctx)}
        try:
            entry["text"] = _compile_jinja_template(template).render(**ctx)
        except Exception as e:
            entry["error"] = type(e).__name__ + ": " + str(e)
        out.append(entry)
    with open(os.path.join(OUT, "jinja_expected.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    return out


def main():
    os.makedirs(TOK_OUT, exist_ok=True)
    toks = build_all()
    written = {}
    for name, tok in toks.items():
        written[name] = write_tokenizer(name, tok, legacy_merges=(name in ("gpt2_prefix", "llama2")))
    results = render_templates(written)
    jinja = render_jinja_cases()
    print("tokenizers:", ", ".join(sorted(written)), "| strings each:", len(TEST_STRINGS),
          "| chat cases:", len(results), "errors:", sum(1 for r in results if "error" in r),
          "| jinja cases:", len(jinja), "errors:", sum(1 for r in jinja if "error" in r))


if __name__ == "__main__":
    main()
