"""radix's tokenizer against Hugging Face `tokenizers` on random Unicode text.

Thousands of seeded random strings (mixed scripts, emoji with joiners, combining marks, digits,
contractions, whitespace runs, special tokens) go through `radix tokenize --jsonl`; every id list
must equal what `tokenizers` gives. Two tokenizers: the Qwen3 tokenizer.json from ../shared, and a
small byte-level BPE trained here with every added-token option and a pair template (no ../shared
needed).
"""
import json
import random
import subprocess

import pytest

tokenizers = pytest.importorskip(
    "tokenizers", reason="Hugging Face `tokenizers` is not installed (PyPI unreachable?)")

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>",
            "<|fim_prefix|>", "<|im_", "<|endoftext", "|>", "<"]
WORDS = ["the", "The", "THE", "don't", "I'm", "we're", "they've", "you'll", "he'd", "it's",
         "IT'S", "O'Neil", "rock'n'roll", "hello", "world", "naïve", "café", "Führer", "straße",
         "123", "4567", "3.14", "1,000,000", "x2", "__init__", "http://a.b/c?d=e", "foo@bar.com",
         "e.g.", "U.S.A.", "...", "--", "'''", "\"quoted\"", "(paren)", "[x]", "{y}", "#tag",
         "$9.99", "50%", "a+b=c", "C++", "snake_case", "camelCase", "ﬁ", "Ⅻ", "①", "½", "x²"]
SCRIPTS = [
    (0x0041, 0x007A), (0x00C0, 0x024F), (0x0370, 0x03FF), (0x0400, 0x04FF), (0x0530, 0x058F),
    (0x05D0, 0x05EA), (0x0620, 0x064A), (0x0900, 0x097F), (0x0E01, 0x0E5B), (0x1100, 0x11FF),
    (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x2000, 0x206F), (0x2190, 0x22FF),
    (0xFF01, 0xFF5E), (0x0300, 0x036F), (0x1F300, 0x1F64F), (0x1F900, 0x1F9FF),
]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u3000", "\u2028",
          "\u0085", "\u200b", " \t ", "\n \n", "    "]
EMOJI = ["\U0001F468\u200D\U0001F469\u200D\U0001F467", "\U0001F44D\U0001F3FD", "\U0001F1FA\U0001F1F8",
         "\u2764\uFE0F", "\U0001F3F3\uFE0F\u200D\U0001F308", "\U0001F600", "\u263A"]


def random_text(rng: random.Random, specials) -> str:
    parts = []
    for _ in range(rng.randint(0, 12)):
        kind = rng.random()
        if kind < 0.30:
            parts.append(rng.choice(WORDS))
        elif kind < 0.50:
            parts.append(rng.choice(SPACES))
        elif kind < 0.65:
            lo, hi = rng.choice(SCRIPTS)
            parts.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6))))
        elif kind < 0.72:
            parts.append(rng.choice(EMOJI))
        elif kind < 0.80:
            parts.append(rng.choice(specials))
        elif kind < 0.88:
            parts.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9))))
        elif kind < 0.94:
            # A base letter with stacked combining marks (NFC composes some of them).
            parts.append(rng.choice("aeiouAEIOUnc") +
                         "".join(chr(rng.randint(0x300, 0x36F)) for _ in range(rng.randint(1, 3))))
        else:
            parts.append("".join(rng.choice("'!?.,;:-_/\\|@#&*()[]{}<>\"`~^") for _ in range(rng.randint(1, 4))))
    return "".join(parts)


def run_radix(radix_bin, tokenizer_path, rows, tmp_path, add_special_tokens, field="ids"):
    path = tmp_path / "in.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    cmd = [str(radix_bin), "tokenize", "--tokenizer", str(tokenizer_path), "--jsonl", str(path),
           "--threads", "2"]
    if add_special_tokens:
        cmd.append("--add-special-tokens")
    if field == "offsets":
        cmd.append("--offsets")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout
    lines = out.splitlines()
    assert len(lines) == len(rows)
    return [json.loads(line)[field] for line in lines]


def assert_same(texts, ours, theirs):
    bad = [(t, o, h) for t, o, h in zip(texts, ours, theirs) if o != h]
    assert not bad, f"{len(bad)} of {len(texts)} differ; first: {bad[0]!r}"


@pytest.fixture(scope="module")
def qwen3(shared_assets):
    path = shared_assets / "qwen3-embedding-0.6b" / "tokenizer.json"
    if not path.exists():
        pytest.skip(f"missing {path}")
    return path, tokenizers.Tokenizer.from_file(str(path))


def test_qwen3_random_unicode_matches_hf(radix_bin, qwen3, tmp_path):
    path, hf = qwen3
    rng = random.Random(20240603)
    texts = [random_text(rng, SPECIALS) for _ in range(4000)]
    rows = [{"text": t} for t in texts]
    for add_special in (False, True):
        ours = run_radix(radix_bin, path, rows, tmp_path, add_special)
        theirs = [e.ids for e in hf.encode_batch(texts, add_special_tokens=add_special)]
        assert_same(texts, ours, theirs)


def test_qwen3_offsets_match_hf(radix_bin, qwen3, tmp_path):
    """Byte offsets equal HF's (character offsets in Python, converted to bytes) wherever NFC
    leaves the text alone; where NFC rewrites it, HF aligns per character and radix per
    normalisation segment, so those texts are left out."""
    import unicodedata
    path, hf = qwen3
    rng = random.Random(31337)
    texts = [random_text(rng, SPECIALS) for _ in range(1500)]
    texts = [t for t in texts if unicodedata.normalize("NFC", t) == t]
    ours = run_radix(radix_bin, path, [{"text": t} for t in texts], tmp_path, True, "offsets")
    theirs = []
    for t, e in zip(texts, hf.encode_batch(texts, add_special_tokens=True)):
        to_byte = [0]
        for c in t:
            to_byte.append(to_byte[-1] + len(c.encode("utf-8")))
        theirs.append([[to_byte[a], to_byte[b]] for a, b in e.offsets])
    assert_same(texts, ours, theirs)


def tiny_tokenizer(tmp_path):
    """A byte-level BPE trained here, with every added-token option and a pair template."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    rng = random.Random(7)
    corpus = [random_text(rng, [""]) for _ in range(3000)]
    trainer = trainers.BpeTrainer(vocab_size=600, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<s>", "</s>"])
    tok.train_from_iterator(corpus, trainer)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False),
                            AddedToken("[SEP]", rstrip=True, normalized=False)])
    tok.add_tokens([AddedToken("hello", single_word=True), AddedToken("ＡＢ", normalized=True),
                    AddedToken("wor", lstrip=True, rstrip=True)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    path = tmp_path / "tiny_tokenizer.json"
    tok.save(str(path))
    return Tokenizer.from_file(str(path)), path


def test_tiny_trained_tokenizer_matches_hf(radix_bin, tmp_path):
    hf, path = tiny_tokenizer(tmp_path)
    rng = random.Random(99)
    specials = ["<mask>", " <mask>", "\t<mask> ", "[SEP]", "[SEP]  x", "hello", "xhello", "hello!",
                " wor ", "world", "ＡＢ", "AB", "<s>", "</s>"]
    texts = [random_text(rng, specials) for _ in range(2000)]
    pairs = [random_text(rng, specials) for _ in range(2000)]
    for add_special in (False, True):
        ours = run_radix(radix_bin, path, [{"text": t} for t in texts], tmp_path, add_special)
        theirs = [e.ids for e in hf.encode_batch(texts, add_special_tokens=add_special)]
        assert_same(texts, ours, theirs)
        rows = [{"text": a, "text_pair": b} for a, b in zip(texts, pairs)]
        ours = run_radix(radix_bin, path, rows, tmp_path, add_special)
        theirs = [e.ids for e in hf.encode_batch(list(zip(texts, pairs)),
                                                 add_special_tokens=add_special)]
        assert_same(list(zip(texts, pairs)), ours, theirs)


@pytest.mark.parametrize("behavior", ["removed", "isolated", "merged_with_previous",
                                      "merged_with_next", "contiguous"])
@pytest.mark.parametrize("invert", [False, True])
def test_split_behaviours_match_hf(radix_bin, tmp_path, behavior, invert):
    from tokenizers import Regex, pre_tokenizers
    hf, _ = tiny_tokenizer(tmp_path)
    hf.pre_tokenizer = pre_tokenizers.Sequence([
        # x* also matches the empty string everywhere: exercises the empty-match rule.
        pre_tokenizers.Split(Regex(r"\s+|[0-9]|x*"), behavior=behavior, invert=invert),
        pre_tokenizers.Split("-", behavior=behavior, invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    path = tmp_path / f"split_{behavior}_{invert}.json"
    hf.save(str(path))
    rng = random.Random(f"{behavior}-{invert}")
    texts = [random_text(rng, ["-", "--", "a-b", "1-2", " - ", "x", "xx-x"]) for _ in range(300)]
    ours = run_radix(radix_bin, path, [{"text": t} for t in texts], tmp_path, False)
    theirs = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    assert_same(texts, ours, theirs)
