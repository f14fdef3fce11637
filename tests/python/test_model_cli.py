"""radix embed / rerank on the built-in demo model: JSON shape, normalisation, Matryoshka
truncation, modes agreeing, and clear errors."""
import json
import math
import subprocess


def run(radix_bin, *args):
    return subprocess.run([str(radix_bin), *args], capture_output=True, text=True, timeout=120)


def embed(radix_bin, *args):
    r = run(radix_bin, "embed", "--model", "demo", *args)
    assert r.returncode == 0, r.stderr
    assert "forward" in r.stderr  # timings go to stderr, JSON alone to stdout
    return json.loads(r.stdout)


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def test_embed_demo_prints_unit_vectors(radix_bin):
    out = embed(radix_bin, "hello world", "hello there", "h")
    assert out["dim"] == 128
    assert len(out["embeddings"]) == 3
    for v in out["embeddings"]:
        assert len(v) == 128
        assert abs(norm(v) - 1.0) < 1e-5
    assert out["embeddings"][0] != out["embeddings"][1]


def test_embed_modes_agree_and_texts_are_independent(radix_bin):
    texts = ["the same prefix, then A", "the same prefix, then B", "unrelated"]
    modes = {m: embed(radix_bin, "--mode", m, *texts)["embeddings"] for m in ("off", "scatter", "tree")}
    alone = embed(radix_bin, texts[1])["embeddings"][0]
    for m, vecs in modes.items():
        for a, b in zip(vecs, modes["off"]):
            assert max(abs(x - y) for x, y in zip(a, b)) < 1e-5, m
    assert max(abs(x - y) for x, y in zip(alone, modes["tree"][1])) < 1e-5


def test_embed_dimensions_and_no_normalize(radix_bin):
    full = embed(radix_bin, "--no-normalize", "abc")["embeddings"][0]
    cut = embed(radix_bin, "--dimensions", "32", "abc")["embeddings"][0]
    assert len(cut) == 32
    n = norm(full[:32])
    assert max(abs(c - f / n) for c, f in zip(cut, full[:32])) < 1e-5
    assert abs(norm(full) - 1.0) > 1e-3  # really not normalised


def test_embed_query_instruction_changes_the_input(radix_bin):
    plain = embed(radix_bin, "what is radix")["embeddings"][0]
    query = embed(radix_bin, "--query-instruction", "Find it", "what is radix")["embeddings"][0]
    prompt = embed(radix_bin, "Instruct: Find it\nQuery:what is radix")["embeddings"][0]
    assert plain != query
    assert max(abs(a - b) for a, b in zip(query, prompt)) < 1e-6


def test_rerank_demo_scores_are_probabilities(radix_bin):
    r = run(radix_bin, "rerank", "--model", "demo", "--query", "what is a trie", "a prefix tree",
            "a fruit", "a prefix tree")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    res = out["results"]
    assert [x["index"] for x in res] == [0, 1, 2]
    for x in res:
        assert 0.0 < x["score"] < 1.0
        # logit: logit("yes") - logit("no"), the core's RerankScore
        assert abs(x["score"] - 1 / (1 + math.exp(-x["logit"]))) < 1e-6
    assert abs(res[0]["score"] - res[2]["score"]) < 1e-6  # the same document twice


def test_errors_are_clear(radix_bin):
    r = run(radix_bin, "embed", "--model", "/nonexistent/folder", "x")
    assert r.returncode != 0 and "nonexistent" in r.stderr
    r = run(radix_bin, "embed", "--model", "demo", "--dimensions", "999", "x")
    assert r.returncode != 0 and "dimensions" in r.stderr
    r = run(radix_bin, "embed", "--model", "random:qwen3-0.6b", "x")
    assert r.returncode != 0 and "tokenizer" in r.stderr
    r = run(radix_bin, "rerank", "--model", "demo", "doc")  # no --query
    assert r.returncode != 0


def test_overlong_input_is_refused_unless_truncate(radix_bin):
    text = "x" * 9000  # the demo tokenizer is byte-level: 9000 tokens > 8192 positions
    r = run(radix_bin, "embed", "--model", "demo", "short", text)
    assert r.returncode != 0
    assert "input 1 has 9001 tokens, more than the model's 8192; pass --truncate" in r.stderr
    assert r.stdout == ""
    out = embed(radix_bin, "--truncate", "short", text)
    assert len(out["embeddings"]) == 2
    r = run(radix_bin, "rerank", "--model", "demo", "--query", "q", text)
    assert r.returncode != 0 and "pass --truncate" in r.stderr
