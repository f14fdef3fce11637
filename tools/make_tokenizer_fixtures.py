#!/usr/bin/env python3
"""Makes the SentencePiece-style tokenizer fixtures (tests/fixtures/tokenizers/).

    build/venv/bin/python tools/make_tokenizer_fixtures.py [--out tests/fixtures/tokenizers]

Needs only Hugging Face `tokenizers` (tests/python/requirements.txt). It trains one tiny BPE with
byte fallback on a seeded synthetic corpus (a small alphabet, so accents, CJK and emoji fall back
to <0xXX> byte tokens), then writes it in the shapes the real files have:

  llama2/   Llama-2, Mistral v0.1 and e5-mistral style: normalizer Sequence[Prepend("▁"),
            Replace(" ", "▁")], no pre-tokenizer, decoder Sequence[Replace("▁", " "),
            ByteFallback, Fuse, Strip(" ", 1, 0)], <unk> <s> </s>, template "<s> $A".
  mistral/  newer Mistral style: no normalizer, Metaspace pre-tokenizer (prepend_scheme "first",
            split false), Metaspace decoder, [INST] [/INST] control tokens.
  gemma/    Gemma / Gemma2 style: normalizer Replace(" ", "▁") and nothing prepended, decoder
            Sequence[Replace("▁", " "), ByteFallback, Fuse], <pad> <eos> <bos> <unk> <mask>
            <start_of_turn> <end_of_turn>, "\\n" runs in the vocabulary, template "<bos> $A".

Each folder gets tokenizer.json and expected.json: for every text of TEXTS what `tokenizers`
gives (ids without and with special tokens, byte offsets, and the decode of the ids with and
without skip_special_tokens), and the ids of a few pairs. The C++ tests
(tests/tokenizer/sentencepiece_fixtures_test.cc) compare radix against them; the Python tests
(tests/python/test_tokenizer_sentencepiece.py) start from the same tokenizer.json files.
"""
import argparse
import json
import pathlib
import random
import sys

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "hello", "world",
         "token", "model", "rerank", "query", "passage", "embedding", "Mistral", "Gemma",
         "Llama", "is", "a", "of", "and", "to", "in", "that", "it", "for", "on", "with",
         "don't", "it's", "café", "naïve", "résumé", "2024", "3.14", "100", "e.g.", "(x)",
         "http://a.b/c", "foo@bar", "#1", "$5", "50%", "A", "I", "OK", "CamelCase", "snake_case"]
SEPARATORS = [" ", " ", " ", " ", "  ", "   ", "\n", "\n\n", ", ", ". ", "\t", " - "]

# Texts with an answer in expected.json: whitespace at the edges and in runs, characters outside
# the vocabulary (byte fallback), special tokens inside text, the replacement character itself.
TEXTS = [
    "", " ", "  ", "   ", "\n", "\n\n", "\t", "a", "hello", "hello world", " hello", "hello ",
    "  hello  world  ", "hello\nworld", "hello\n\n\nworld", "line one\n line two",
    "The quick brown fox jumps over the lazy dog.", "don't stop, it's OK!", "café naïve résumé",
    "über straße", "日本語のテキスト", "emoji 😀 and 👍🏽 and 👨‍👩‍👧", "\u00a0non-breaking\u2009thin",
    "zero\u200bwidth", "▁", "▁hello ▁▁world", "a▁b", "1234567890", "3.14159 100%",
    "<s>hello", "hello</s> world", "x <s> y </s>", "<s><s>", "<unk>", "[INST] hi [/INST] ok",
    "[INST]x[/INST]", "<bos>text", "<start_of_turn>user\nhi<end_of_turn>\n", "<eos> <pad>",
    "Mistral e5 query: what is a reranker?", "\x00\x01 control \x7f", "tab\tand\r\nCRLF",
    "ĀāĂă ǅ ﬁ ①", "مرحبا بالعالم", "Привет, мир", "a" * 40, "hello " * 12,
]
PAIRS = [("hello", "world"), ("", "x"), (" query", "passage text "), ("<s>a", "b</s>"),
         ("日本", "café")]


def corpus(rng: random.Random, n: int) -> list:
    lines = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 14)):
            parts.append(rng.choice(WORDS))
            parts.append(rng.choice(SEPARATORS))
        lines.append("".join(parts).strip(" "))
    return lines


def train(seed: int) -> tuple:
    """Vocabulary tokens (in id order, without specials or byte tokens) and merges."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always",
                                                 split=True)
    trainer = trainers.BpeTrainer(vocab_size=360, limit_alphabet=64, show_progress=False)
    tok.train_from_iterator(corpus(random.Random(seed), 4000), trainer)
    model = json.loads(tok.to_str())["model"]
    tokens = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, list) else m.split(" ") for m in model["merges"]]
    return tokens, merges


def with_extra_merges(tokens: list, merges: list, extra: list) -> tuple:
    """Appends merges (and their results) that training did not make: runs of ▁ or \\n, which
    the real vocabularies have."""
    tokens, merges = list(tokens), list(merges)
    for a, b in extra:
        for t in (a, b, a + b):
            if t not in tokens:
                tokens.append(t)
        if [a, b] not in merges:
            merges.append([a, b])
    return tokens, merges


def special(content: str, i: int) -> dict:
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def template(bos: str, bos_id: int) -> dict:
    tok = {"SpecialToken": {"id": bos, "type_id": 0}}
    return {
        "type": "TemplateProcessing",
        "single": [tok, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [tok, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
    }


def document(specials: list, tokens: list, merges: list, normalizer, pre_tokenizer, decoder,
             bos: str) -> dict:
    vocab = {}
    for s in specials:
        vocab[s] = len(vocab)
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for t in tokens:
        if t not in vocab:
            vocab[t] = len(vocab)
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special(s, vocab[s]) for s in specials],
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": template(bos, vocab[bos]),
        "decoder": decoder,
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }


REPLACE_DECODER = {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}


def shapes(seed: int) -> dict:
    tokens, merges = train(seed)
    spaces = [("▁", "▁"), ("▁▁", "▁▁"), ("▁▁", "▁")]
    sp_tokens, sp_merges = with_extra_merges(tokens, merges, spaces)
    llama2 = document(
        ["<unk>", "<s>", "</s>"], sp_tokens, sp_merges,
        {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        None,
        {"type": "Sequence", "decoders": [
            REPLACE_DECODER, {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "<s>")
    mistral = document(
        ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"], sp_tokens, sp_merges, None,
        {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
        {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
        "<s>")
    gm_tokens, gm_merges = with_extra_merges(
        tokens, merges, spaces + [("\n", "\n"), ("\n\n", "\n"), ("\t", "\t")])
    gemma = document(
        ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"],
        gm_tokens, gm_merges,
        {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        None,
        {"type": "Sequence", "decoders": [REPLACE_DECODER, {"type": "ByteFallback"},
                                          {"type": "Fuse"}]},
        "<bos>")
    return {"llama2": llama2, "mistral": mistral, "gemma": gemma}


def byte_offsets(text: str, offsets) -> list:
    to_byte = [0]
    for c in text:
        to_byte.append(to_byte[-1] + len(c.encode("utf-8")))
    return [[to_byte[a], to_byte[b]] for a, b in offsets]


def expected(tok: Tokenizer) -> dict:
    cases = []
    for text in TEXTS:
        plain = tok.encode(text, add_special_tokens=False)
        full = tok.encode(text, add_special_tokens=True)
        cases.append({
            "text": text,
            "ids": plain.ids,
            "ids_special": full.ids,
            "offsets_special": byte_offsets(text, full.offsets),
            "decode": tok.decode(full.ids, skip_special_tokens=False),
            "decode_skip": tok.decode(full.ids, skip_special_tokens=True),
        })
    pairs = [{"a": a, "b": b, "ids_special": tok.encode(a, b, add_special_tokens=True).ids}
             for a, b in PAIRS]
    return {"cases": cases, "pairs": pairs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parents[1] /
                                         "tests" / "fixtures" / "tokenizers"))
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    import tokenizers
    for name, doc in shapes(args.seed).items():
        folder = pathlib.Path(args.out) / name
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(doc, ensure_ascii=False, indent=None)
        tok = Tokenizer.from_str(text)  # also proves `tokenizers` accepts the shape
        (folder / "tokenizer.json").write_text(text + "\n", encoding="utf-8")
        exp = expected(tok)
        # One case per line: small to commit, readable in a diff.
        lines = [f'{{"tokenizers_version": {json.dumps(tokenizers.__version__)},']
        for key in ("cases", "pairs"):
            rows = [json.dumps(c, ensure_ascii=False) for c in exp[key]]
            lines.append(f'"{key}": [\n' + ",\n".join(rows) + "]" +
                         ("," if key == "cases" else "}"))
        (folder / "expected.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{folder}: {len(doc['model']['vocab'])} tokens, "
              f"{len(doc['model']['merges'])} merges", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
