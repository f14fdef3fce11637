"""radix embed on the CPU for a folder of each decoder family (the tiny transformers checkpoints
of tests/fixtures/families), with a byte-level tokenizer.json whose ids are the byte values."""
import json
import math
import pathlib
import shutil
import subprocess

import pytest

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "families"
FAMILIES = ["mistral", "qwen2", "qwen2_bidirectional", "llama", "gemma", "gemma2"]


def byte_symbol(b):
    """GPT-2's byte-to-unicode map (the ByteLevel pre-tokenizer's alphabet)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + \
        list(range(0xAE, 0xFF + 1))
    if b in printable:
        return chr(b)
    return chr(256 + sorted(set(range(256)) - set(printable)).index(b))


def byte_tokenizer():
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {byte_symbol(b): b for b in range(256)}, "merges": []},
    }


@pytest.fixture(scope="module", params=FAMILIES)
def family_folder(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    for f in (FIXTURES / request.param).iterdir():
        shutil.copy(f, folder / f.name)
    (folder / "tokenizer.json").write_text(json.dumps(byte_tokenizer()))
    return request.param, folder


def embed(radix_bin, folder, *args):
    r = subprocess.run([str(radix_bin), "embed", "--model", str(folder), *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), r.stderr


def test_embed_works_for_every_family(radix_bin, family_folder):
    name, folder = family_folder
    texts = ["a shared prefix, then one end", "a shared prefix, then another", "a shared"]
    outs = {m: embed(radix_bin, folder, "--mode", m, *texts) for m in ("off", "scatter", "tree")}
    vecs, stderr = outs["tree"]
    assert vecs["dim"] == 64
    for v in vecs["embeddings"]:
        assert abs(math.sqrt(sum(x * x for x in v)) - 1.0) < 1e-5
    for m, (out, _) in outs.items():
        for a, b in zip(out["embeddings"], outs["off"][0]["embeddings"]):
            assert max(abs(x - y) for x, y in zip(a, b)) < 1e-5, (name, m)
    alone, _ = embed(radix_bin, folder, texts[1])
    assert max(abs(x - y) for x, y in zip(alone["embeddings"][0], vecs["embeddings"][1])) < 1e-5
    if name == "qwen2_bidirectional":
        assert "bidirectional" in stderr


def test_pooling_flag_overrides_the_folder(radix_bin, family_folder):
    _, folder = family_folder
    last, _ = embed(radix_bin, folder, "the quick brown fox")
    mean, _ = embed(radix_bin, folder, "--pooling", "mean", "the quick brown fox")
    assert last["embeddings"][0] != mean["embeddings"][0]
