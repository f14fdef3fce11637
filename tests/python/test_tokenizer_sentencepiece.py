"""radix's tokenizer against Hugging Face `tokenizers` on SentencePiece-style tokenizer.json files.

The Llama-2 / Mistral / Gemma shapes of tests/fixtures/tokenizers (made by
tools/make_tokenizer_fixtures.py: a tiny BPE with byte fallback) and variants of them (every
Metaspace prepend scheme with and without split, ignore_merges, unknown characters without byte
fallback, a normalised added token, Replace with a regex, other decoder chains) encode seeded
random and tricky strings through `radix tokenize --jsonl`; ids, byte offsets, pair ids and
decodes (`radix tokenize --decode`) must equal what `tokenizers` gives.
"""
import copy
import json
import pathlib
import random
import subprocess
import unicodedata

import pytest

from test_tokenizer_differential import assert_same, random_text, run_radix

tokenizers = pytest.importorskip(
    "tokenizers", reason="Hugging Face `tokenizers` is not installed (PyPI unreachable?)")

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "tokenizers"

# Pieces the random texts mix in besides random_text's own: special tokens of every shape (and
# near misses), the replacement character, whitespace at the edges, unknown characters.
EXTRAS = ["<s>", "</s>", "<unk>", "<s", "s>", "[INST]", "[/INST]", "<bos>", "<eos>", "<pad>",
          "<start_of_turn>", "<end_of_turn>", "▁", "▁▁", " ▁", "▁ ", "  ", "   ", " \n ", "\n\n\n",
          "\t\t", "hello", " hello", "world ", "the quick", "café", "ü", "日本", "😀", "\u00a0",
          "\u2581\u2581x", "<0x41>", "<0xZZ>"]


def load_shape(name: str) -> dict:
    return json.loads((FIXTURES / name / "tokenizer.json").read_text(encoding="utf-8"))


def save(doc: dict, tmp_path, name: str):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path, tokenizers.Tokenizer.from_file(str(path))


def texts_for(seed: str, n: int) -> list:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        t = random_text(rng, EXTRAS)
        # Edges matter here (prepend, Strip): put spaces or newlines around some texts.
        r = rng.random()
        if r < 0.15:
            t = " " * rng.randint(1, 3) + t
        elif r < 0.30:
            t = t + " " * rng.randint(1, 3)
        elif r < 0.35:
            t = "\n" + t + "\n"
        out.append(t)
    return out


def to_byte_offsets(text: str, offsets) -> list:
    to_byte = [0]
    for c in text:
        to_byte.append(to_byte[-1] + len(c.encode("utf-8")))
    return [[to_byte[a], to_byte[b]] for a, b in offsets]


def run_decode(radix_bin, path, id_lists, tmp_path, skip_special):
    src = tmp_path / "ids.jsonl"
    src.write_text("".join(json.dumps({"ids": ids}) + "\n" for ids in id_lists), encoding="utf-8")
    cmd = [str(radix_bin), "tokenize", "--tokenizer", str(path), "--decode", "--jsonl", str(src)]
    if skip_special:
        cmd.append("--skip-special-tokens")
    out = subprocess.run(cmd, check=True, capture_output=True, timeout=120).stdout.decode("utf-8")
    # Not splitlines(): the JSON text may hold U+2028 or U+0085 unescaped.
    lines = out.split("\n")[:-1]
    assert len(lines) == len(id_lists)
    return [json.loads(line)["text"] for line in lines]


def check_all(radix_bin, tmp_path, doc, name, n=1200, unicode_form=None):
    """Ids with and without special tokens, offsets, pairs and decodes, radix against HF.
    With a Unicode normaliser (`unicode_form`) offsets are compared on the texts it leaves
    unchanged only: where it rewrites, radix aligns per normalisation segment, coarser than HF
    (docs/tokenizer.md)."""
    path, hf = save(doc, tmp_path, name)
    texts = texts_for(name, n)
    rows = [{"text": t} for t in texts]
    for add_special in (False, True):
        ours = run_radix(radix_bin, path, rows, tmp_path, add_special)
        theirs = [e.ids for e in hf.encode_batch(texts, add_special_tokens=add_special)]
        assert_same(texts, ours, theirs)

    encodings = hf.encode_batch(texts, add_special_tokens=True)
    keep = [unicode_form is None or unicodedata.normalize(unicode_form, t) == t for t in texts]
    ours = run_radix(radix_bin, path, [r for r, k in zip(rows, keep) if k], tmp_path, True,
                     "offsets")
    theirs = [to_byte_offsets(t, e.offsets) for t, e, k in zip(texts, encodings, keep) if k]
    assert_same([t for t, k in zip(texts, keep) if k], ours, theirs)

    pairs = list(zip(texts[: n // 4], texts_for(name + "-b", n // 4)))
    ours = run_radix(radix_bin, path, [{"text": a, "text_pair": b} for a, b in pairs], tmp_path,
                     True)
    theirs = [e.ids for e in hf.encode_batch(pairs, add_special_tokens=True)]
    assert_same(pairs, ours, theirs)

    # Decodes of real encodings, and of random id runs (byte tokens in any order: invalid UTF-8).
    rng = random.Random(name)
    vocab_size = hf.get_vocab_size()
    id_lists = [e.ids for e in encodings[:400]]
    id_lists += [[rng.randrange(vocab_size) for _ in range(rng.randint(0, 12))]
                 for _ in range(300)]
    for skip in (False, True):
        ours = run_decode(radix_bin, path, id_lists, tmp_path, skip)
        theirs = hf.decode_batch(id_lists, skip_special_tokens=skip)
        assert_same(id_lists, ours, theirs)


@pytest.mark.parametrize("shape", ["llama2", "mistral", "gemma"])
def test_fixture_shapes_match_hf(radix_bin, tmp_path, shape):
    check_all(radix_bin, tmp_path, load_shape(shape), shape)


@pytest.mark.parametrize("scheme", ["always", "first", "never"])
@pytest.mark.parametrize("split", [True, False])
def test_metaspace_schemes_match_hf(radix_bin, tmp_path, scheme, split):
    doc = load_shape("mistral")
    for key in ("pre_tokenizer", "decoder"):
        doc[key] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme,
                    "split": split}
    check_all(radix_bin, tmp_path, doc, f"metaspace-{scheme}-{split}", n=600)


def test_legacy_metaspace_fields_match_hf(radix_bin, tmp_path):
    """Files written before prepend_scheme say add_prefix_space (and carry str_rep)."""
    doc = load_shape("mistral")
    doc["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "str_rep": "▁",
                            "add_prefix_space": False, "prepend_scheme": "never"}
    doc["decoder"] = {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True}
    check_all(radix_bin, tmp_path, doc, "metaspace-legacy", n=400)


def test_metaspace_after_split_matches_hf(radix_bin, tmp_path):
    """Metaspace inside a Sequence: "first" prepends only to the piece at offset 0."""
    doc = load_shape("mistral")
    doc["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "[0-9]"}, "behavior": "Isolated", "invert": False},
        {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True}]}
    check_all(radix_bin, tmp_path, doc, "metaspace-sequence", n=400)


def test_bpe_options_match_hf(radix_bin, tmp_path):
    """ignore_merges; no byte fallback (unknown characters become <unk>, fused or not)."""
    doc = load_shape("llama2")
    doc["model"]["ignore_merges"] = True
    check_all(radix_bin, tmp_path, doc, "ignore-merges", n=400)
    for fuse in (True, False):
        doc = load_shape("gemma")
        doc["model"]["byte_fallback"] = False
        doc["model"]["fuse_unk"] = fuse
        check_all(radix_bin, tmp_path, doc, f"unk-fuse-{fuse}", n=400)


def test_normalizer_variants_match_hf(radix_bin, tmp_path):
    """A normalised added token (found after Prepend/Replace rewrote the text), Replace with a
    regex and with a longer replacement, NFKC before Replace."""
    doc = load_shape("llama2")
    n = len(doc["model"]["vocab"])
    doc["added_tokens"].append({"id": n, "content": "hello", "single_word": False,
                                "lstrip": False, "rstrip": False, "normalized": True,
                                "special": False})
    doc["added_tokens"].append({"id": n + 1, "content": "o w", "single_word": False, "lstrip": False,
                                "rstrip": False, "normalized": True, "special": False})
    check_all(radix_bin, tmp_path, doc, "normalized-added", n=600)

    doc = load_shape("gemma")
    doc["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "NFKC"},
        {"type": "Replace", "pattern": {"Regex": " {2,}|\t"}, "content": " "},
        {"type": "Replace", "pattern": {"String": "e"}, "content": "ee"},
        {"type": "Prepend", "prepend": "▁▁"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
    check_all(radix_bin, tmp_path, doc, "replace-regex", n=600, unicode_form="NFKC")


def test_decoder_variants_match_hf(radix_bin, tmp_path):
    doc = load_shape("gemma")
    doc["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "ByteFallback"},
        {"type": "Replace", "pattern": {"Regex": "▁+"}, "content": "_"},
        {"type": "Strip", "content": "_", "start": 2, "stop": 0},
        {"type": "Fuse"}]}
    check_all(radix_bin, tmp_path, doc, "decoder-variants", n=300)
    doc["decoder"] = None
    check_all(radix_bin, tmp_path, doc, "decoder-none", n=300)


def test_unsupported_components_are_named(radix_bin, tmp_path):
    for key, value, name in [
            ("normalizer", {"type": "Lowercase"}, "Lowercase"),
            ("pre_tokenizer", {"type": "Whitespace"}, "Whitespace"),
            ("decoder", {"type": "WordPiece", "prefix": "##", "cleanup": True}, "WordPiece"),
            ("decoder", {"type": "Sequence", "decoders": [{"type": "CTC"}]}, "CTC")]:
        doc = copy.deepcopy(load_shape("llama2"))
        doc[key] = value
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        r = subprocess.run([str(radix_bin), "tokenize", "--tokenizer", str(path), "x"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0
        assert f'type "{name}" is not supported' in r.stderr, r.stderr


def test_merges_across_spaces_match_hf(radix_bin, tmp_path):
    """A BPE trained on whole texts (no pre-tokenizer), so merges join across "▁" ("e▁", "s▁t",
    ...): radix cuts words before "▁" only where no merge can join across, and must still give
    HF's tokens."""
    from tokenizers import Tokenizer, models, normalizers, trainers
    doc = load_shape("llama2")
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                           normalizers.Replace(" ", "▁")])
    corpus = [t for t in texts_for("cross-corpus", 3000)]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=900, limit_alphabet=80,
                                                        show_progress=False))
    trained = json.loads(tok.to_str())["model"]
    vocab = {t: i for t, i in doc["model"]["vocab"].items() if i < 3 + 256}  # specials, bytes
    for t, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(t, len(vocab))
    merges = [m if isinstance(m, list) else m.split(" ") for m in trained["merges"]]
    crossing = [m for m in merges if "▁" in (m[0] + m[1])[1:]]
    assert len(crossing) > 50, "the corpus should make merges across spaces"
    doc["model"]["vocab"], doc["model"]["merges"] = vocab, merges
    check_all(radix_bin, tmp_path, doc, "cross-merges", n=1500)
