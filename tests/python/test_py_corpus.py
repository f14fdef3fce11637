"""Engine.embed_corpus / rerank_corpus (the core's corpus pipeline, as `radix embed --input`):
results equal per-text calls, prefix order folds more than input order, an output resumes, and
bad items are named. Also `radix embed --input` against the Python results."""
import json
import os
import subprocess

import pytest

if os.environ.get("RADIX_PY_TESTS") != "1":
    pytest.importorskip("radix._core", reason="the radix Python package is not built for this "
                        "interpreter (scripts/test.sh builds it and runs these tests)")

import numpy as np  # noqa: E402

import radix  # noqa: E402

INSTRUCTIONS = ["Given a web search query, retrieve relevant passages that answer the query",
                "Represent this sentence for finding duplicate questions on a forum"]
# A row alone and inside another batch differ by ~1e-7 (docs/numerics.md: another trie, other
# BLAS blocking); 1e-5 on unit vectors, while another text's row is off by O(0.1).
TOL = 1e-5


def corpus(n=40):
    return [{"text": f"passage {i * 37 % 100} on topic {i % 4}", "instruction": INSTRUCTIONS[i % 2]}
            for i in range(n)]


@pytest.fixture(scope="module")
def engine():
    with radix.Engine("demo", threads=2, radix_threshold=1.0, max_batch_tokens=4096) as e:
        yield e


def test_embed_corpus_equals_per_text_embed(engine):
    items = corpus()
    got = engine.embed_corpus(iter(items), batch_tokens=150, chunk_items=16)  # a generator
    assert got.shape == (len(items), engine.info["hidden_size"]) and got.dtype == np.float32
    for i, it in enumerate(items):
        alone = engine.embed([it["text"]], instruction=it["instruction"])[0]
        assert np.abs(got[i] - alone).max() <= TOL, i
    plain = engine.embed_corpus(["a", "b", "a"], dimensions=16)
    np.testing.assert_allclose(plain, engine.embed(["a", "b", "a"], dimensions=16), atol=TOL)
    assert engine.embed_corpus([]).shape == (0, engine.info["hidden_size"])


def test_prefix_order_runs_fewer_rows():
    items = corpus(60)

    def rows(order_by_prefix):
        # The engine's own batch limit equal to batch_tokens, so each batch is one cut of the
        # pipeline (a larger limit lets the engine run queued cuts together).
        with radix.Engine("demo", threads=2, radix_threshold=1.0, max_batch_tokens=600) as e:
            e.embed_corpus(items, batch_tokens=600, order_by_prefix=order_by_prefix)
            return e.stats()["rows"], e.stats()["tokens"]

    file_rows, file_tokens = rows(False)
    sorted_rows, sorted_tokens = rows(True)
    assert file_tokens == sorted_tokens
    assert sorted_rows < 0.8 * file_rows, (file_rows, sorted_rows)


def test_output_files_and_resume(engine, tmp_path):
    items = corpus(30)
    whole = engine.embed_corpus(items, batch_tokens=150)
    out = tmp_path / "e.npy"

    class Interrupted(Exception):
        pass

    def dies_after(n):
        for i, it in enumerate(items):
            if i == n:
                raise Interrupted("simulated crash")
            yield it

    with pytest.raises(ValueError, match="item 17: iterating the corpus raised"):
        engine.embed_corpus(dies_after(17), batch_tokens=150, output=out, chunk_items=5)
    state = json.loads((tmp_path / "e.npy.progress").read_text())
    assert state["items"] == 15  # three whole chunks of 5
    assert np.load(out).shape == (15, whole.shape[1])  # a valid .npy of what is committed
    with pytest.raises(ValueError, match="state of another run"):
        engine.embed_corpus(items, output=out, dimensions=8)
    totals = engine.embed_corpus(items, batch_tokens=150, output=out, chunk_items=5)
    assert totals["resumed"] == 15 and totals["items"] == 15
    assert not (tmp_path / "e.npy.progress").exists()
    np.testing.assert_allclose(np.load(out), whole, atol=TOL)

    jl = tmp_path / "e.jsonl"
    engine.embed_corpus(items, output=str(jl))
    lines = [json.loads(x) for x in jl.read_text().splitlines()]
    assert [x["index"] for x in lines] == list(range(30))
    np.testing.assert_allclose(np.array([x["embedding"] for x in lines]), whole, atol=TOL)


def test_bad_items_are_named(engine):
    with pytest.raises(ValueError, match=r"item 2: missing \"text\""):
        engine.embed_corpus(["a", {"text": "b"}, {"txt": "c"}])
    with pytest.raises(ValueError, match=r"item 1: expected a str or a dict"):
        engine.embed_corpus(["a", 5])
    with pytest.raises(ValueError, match=r"item 1: .*more than the maximum input length"):
        engine.embed_corpus(["a", "word " * 5000])
    with pytest.raises(ValueError, match="not a single string"):
        engine.embed_corpus("abc")
    with pytest.raises(ValueError, match=".npy or .jsonl"):
        engine.embed_corpus(["a"], output="x.csv")
    # The engine keeps serving after a bad corpus.
    assert engine.embed_corpus(["still fine"]).shape[0] == 1


def test_rerank_corpus_equals_per_query_rerank():
    with radix.Engine("demo", head="reranker", threads=2, radix_threshold=1.0) as rr:
        queries = ["what is a trie", "how long do fleas live"]
        docs = ["a prefix tree", "an insect", "a fruit"]
        pairs = [(q, d) for d in docs for q in queries]  # queries interleaved
        scores = rr.rerank_corpus(pairs, batch_tokens=120)
        logits = rr.rerank_corpus([{"query": q, "document": d} for q, d in pairs],
                                  raw_scores=True)
        for k, (q, d) in enumerate(pairs):
            assert abs(scores[k] - rr.rerank(q, [d])[0]) <= 1e-5
            # logits: O(1) dot products (docs/numerics.md, 1e-4 across batches)
            assert abs(logits[k] - rr.rerank(q, [d], raw_scores=True)[0]) <= 1e-4


def test_cli_input_matches_python(engine, radix_bin, tmp_path):
    items = corpus(25)
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps(it) + "\n" for it in items))
    out = tmp_path / "c.npy"
    run = subprocess.run([str(radix_bin), "embed", "--input", str(src), "--output", str(out),
                          "--threads", "2", "--batch-tokens", "300"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["items"] == 25 and summary["order"] == "prefix"
    assert "100.0% 25/25 items" in run.stderr  # the plain progress line (not a terminal)
    np.testing.assert_allclose(np.load(out), engine.embed_corpus(items), atol=TOL)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n{"text": 1}\n')
    run = subprocess.run([str(radix_bin), "embed", "--input", str(bad), "--output",
                          str(tmp_path / "bad.npy")], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and f"{bad} line 2: \"text\" must be a string" in run.stderr
