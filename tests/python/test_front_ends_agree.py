"""The CLI and the HTTP server are two front ends over one library core (src/service): for the
same input they give the same numbers. The server batches a request's inputs together as the
CLI does, so the folds match; the tolerance covers BLAS summing in another order if the
batches were ever split differently."""
import json
import subprocess

import pytest

from test_server_helpers import RadixServer

TOL = 1e-5
TEXTS = ["what is a radix trie", "what is a radix tree", "a completely different text"]


def cli(radix_bin, *args):
    r = subprocess.run([str(radix_bin), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def embedder(radix_bin):
    s = RadixServer(radix_bin, "--model", "demo", "--radix-threshold", "1")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def reranker(radix_bin):
    s = RadixServer(radix_bin, "--model", "demo", "--head", "reranker", "--radix-threshold", "1")
    yield s
    s.stop()


def close(a, b):
    assert len(a) == len(b)
    return max(abs(x - y) for x, y in zip(a, b)) <= TOL


def test_embed_cli_equals_server(radix_bin, embedder):
    served = embedder.post("/embed", {"inputs": TEXTS}).json()
    local = cli(radix_bin, "embed", "--model", "demo", *TEXTS)["embeddings"]
    assert len(served) == len(local) == 3
    assert all(close(a, b) for a, b in zip(served, local))


def test_embed_options_cli_equals_server(radix_bin, embedder):
    served = embedder.post("/embed", {"inputs": TEXTS, "dimensions": 32,
                                      "normalize": False}).json()
    local = cli(radix_bin, "embed", "--model", "demo", "--dimensions", "32", "--no-normalize",
                *TEXTS)["embeddings"]
    assert all(close(a, b) for a, b in zip(served, local))


def test_rerank_cli_equals_server(radix_bin, reranker):
    query = "what is a trie"
    served = reranker.post("/rerank", {"query": query, "texts": TEXTS,
                                       "raw_scores": True}).json()
    served = sorted(served, key=lambda x: x["index"])
    local = cli(radix_bin, "rerank", "--model", "demo", "--query", query, *TEXTS)["results"]
    assert [x["index"] for x in served] == [x["index"] for x in local] == [0, 1, 2]
    # raw_scores: the server answers the logit (TEI's raw score) instead of the probability.
    assert close([x["score"] for x in served], [x["logit"] for x in local])
    served = sorted(reranker.post("/rerank", {"query": query, "texts": TEXTS}).json(),
                    key=lambda x: x["index"])
    assert close([x["score"] for x in served], [x["score"] for x in local])


def test_pooling_and_default_prompt_cli_equals_server(radix_bin):
    s = RadixServer(radix_bin, "--model", "demo", "--radix-threshold", "1", "--pooling", "mean",
                    "--default-prompt-name", "query")
    try:
        assert s.get("/info").json()["model_type"] == {"embedding": {"pooling": "mean"}}
        served = s.post("/embed", {"inputs": TEXTS}).json()
    finally:
        s.stop()
    local = cli(radix_bin, "embed", "--model", "demo", "--pooling", "mean",
                "--default-prompt-name", "query", *TEXTS)["embeddings"]
    assert all(close(a, b) for a, b in zip(served, local))
    plain = cli(radix_bin, "embed", "--model", "demo", "--pooling", "mean", *TEXTS)["embeddings"]
    assert not close(plain[0], local[0])  # the prompt was applied
