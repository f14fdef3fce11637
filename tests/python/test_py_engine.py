"""radix.Engine: the library core from Python, against the CLI and the HF fixture's reference."""
import json
import math
import os
import pathlib
import subprocess
import sys
import threading

import pytest

if os.environ.get("RADIX_PY_TESTS") != "1":
    pytest.importorskip("radix._core", reason="the radix Python package is not built for this "
                        "interpreter (scripts/test.sh builds it and runs these tests)")

import numpy as np  # noqa: E402

import radix  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "hf_tiny_bf16"
TEXTS = ["hello world", "hello there", "a prefix tree folds shared prompts", "hello world"]


# As the `radix` binary runs (fold whenever the mode can, one thread), so the numbers compare.
@pytest.fixture(scope="module")
def embedder():
    with radix.Engine("demo", threads=1, radix_threshold=1.0) as engine:
        yield engine


@pytest.fixture(scope="module")
def reranker():
    with radix.Engine("demo", head="reranker", threads=1, radix_threshold=1.0) as engine:
        yield engine


def test_embed_shapes_norms_and_duplicates(embedder):
    v = embedder.embed(TEXTS)
    assert v.dtype == np.float32 and v.shape == (4, embedder.info["hidden_size"])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(v[0], v[3])  # same text, same rows of the same batch
    assert embedder.embed([]).shape == (0, embedder.info["hidden_size"])
    single = embedder.embed("hello world")
    assert single.shape == (embedder.info["hidden_size"],)
    # A batch and each input alone agree (float rounding may differ with the GEMM rows).
    np.testing.assert_allclose(single, v[0], rtol=1e-5, atol=1e-6)


def test_dimensions_and_normalize(embedder):
    full = embedder.embed(TEXTS[:2], normalize=False)
    cut = embedder.embed(TEXTS[:2], dimensions=16)
    want = full[:, :16] / np.linalg.norm(full[:, :16], axis=1, keepdims=True)
    np.testing.assert_allclose(cut, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.linalg.norm(full, axis=1), 1.0)


def test_modes_agree(embedder):
    with radix.Engine("demo", attention_mode="off", threads=1) as off:
        np.testing.assert_allclose(off.embed(TEXTS), embedder.embed(TEXTS), rtol=1e-4, atol=1e-5)


def test_embed_ids_matches_the_transformers_fixture():
    ref = json.loads((FIXTURE / "reference.json").read_text())
    with radix.Engine(str(FIXTURE), tokenizer="demo", threads=1) as engine:
        got = engine.embed_ids(ref["sequences"])
    # The C++ fixture test's tolerance: fp32 forward against transformers' fp32 run.
    np.testing.assert_allclose(got, np.array(ref["embeddings"]), atol=1e-5)


def test_rerank_scores_are_sigmoid_of_logits(reranker):
    docs = ["a prefix tree", "a fruit", "a trie is a prefix tree"]
    scores = reranker.rerank("what is a trie", docs)
    logits = reranker.rerank("what is a trie", docs, raw_scores=True)
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-logits)), rtol=1e-5)


def run_cli(args):
    radix_bin = pathlib.Path(os.environ.get("RADIX_BIN", REPO / "build" / "radix"))  # as test.sh
    if not radix_bin.exists():
        pytest.fail(f"radix binary not found at {radix_bin}: scripts/test.sh builds it")
    out = subprocess.run([str(radix_bin), *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_python_cli_and_binary_give_the_same_numbers(embedder, reranker):
    # One library core under all three front ends: the same input gives the same numbers. The
    # binary runs one batch of exactly these inputs, as the Python calls do here.
    cli = run_cli(["embed", "--model", "demo", "--threads", "1", *TEXTS[:3]])
    np.testing.assert_allclose(embedder.embed(TEXTS[:3]), np.array(cli["embeddings"]),
                               rtol=1e-6, atol=1e-7)
    docs = ["a prefix tree", "a fruit"]
    cli = run_cli(["rerank", "--model", "demo", "--threads", "1", "--query", "what is a trie",
                   *docs])
    got = reranker.rerank("what is a trie", docs)
    np.testing.assert_allclose(got, [r["score"] for r in cli["results"]], rtol=1e-6)
    py = subprocess.run([sys.executable, "-m", "radix", "embed", "--model", "demo", "--threads",
                         "1", *TEXTS[:3]], capture_output=True, text=True, check=True)
    np.testing.assert_allclose(np.array(json.loads(py.stdout)["embeddings"]),
                               embedder.embed(TEXTS[:3]), rtol=1e-6, atol=1e-7)


def test_encode_is_sentence_transformers_shaped(embedder):
    texts = [f"sentence number {i}" for i in range(7)]
    out = embedder.encode(texts, batch_size=3, show_progress_bar=False)
    assert isinstance(out, np.ndarray) and out.shape == (7, embedder.info["hidden_size"])
    np.testing.assert_allclose(out, embedder.embed(texts), rtol=1e-5, atol=1e-6)
    assert embedder.encode("one").shape == (embedder.info["hidden_size"],)
    raw = embedder.encode(texts[:2], normalize_embeddings=False)
    np.testing.assert_allclose(raw, embedder.embed(texts[:2], normalize=False), rtol=1e-5,
                               atol=1e-6)


def test_stats_count_the_folded_batches():
    with radix.Engine("demo", threads=1, radix_threshold=1.0) as engine:
        engine.embed(["a shared prompt, then one", "a shared prompt, then two"])
        engine.embed(["alone"])
        s = engine.stats()
    assert s["batches"] == 2 and s["requests"] == 2 and s["sequences"] == 3
    assert s["folded_batches"] == 2 and s["rows"] == s["unique_tokens"] < s["tokens"]


def test_threads_share_the_engine(embedder):
    texts = [f"shared system prompt, question {i}" for i in range(16)]
    want = embedder.embed(texts)
    got = [None] * len(texts)

    def work(i):
        got[i] = embedder.embed([texts[i]])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Concurrent calls land in shared batches (other rows, other GEMM splits): equal to rounding.
    np.testing.assert_allclose(np.stack(got), want, rtol=1e-5, atol=1e-6)


def test_errors_are_python_exceptions(embedder):
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        radix.Engine("/nonexistent/model")
    with pytest.raises(ValueError, match="tree"):
        radix.Engine("demo", attention_mode="sideways")
    with pytest.raises(ValueError, match="radix_threshold|threshold"):
        radix.Engine("demo", radix_threshold=2.0)
    with pytest.raises(ValueError):
        embedder.embed(TEXTS, prompt_name="no-such-prompt")
    with pytest.raises(ValueError):
        embedder.rerank("q", ["d"])  # an embedding model has no reranker head
    with pytest.raises(ValueError, match=r"texts\[0\] must be a string, got int"):
        embedder.embed([1, 2])
    with pytest.raises(ValueError, match="list of strings"):
        embedder.rerank("q", "one document, not a list")
    with pytest.raises(ValueError, match="1-D sequence of integers"):
        embedder.embed_ids([[1.5, 2.0]])
    with pytest.raises(ValueError, match="outside"):
        embedder.embed_ids([[-1, 2]])
    with radix.Engine("demo", threads=1, max_input_length=64) as short:
        with pytest.raises(ValueError):
            short.embed(["x" * 200])  # over the maximum input length, no truncation asked
        assert short.embed(["x" * 200], truncate=True).shape[0] == 1


def test_dtype_and_enforce_eager():
    # The CPU runs float32 and never records forwards; fp8 is CUDA's.
    e = radix.Engine("demo", enforce_eager=True)
    assert e.info["cuda_graphs"] is False and e.info["dtype"] == "float32"
    assert radix.Engine("demo").info["cuda_graphs"] is False
    with pytest.raises(ValueError, match="fp8"):
        radix.Engine("demo", dtype="fp8")


def test_shutdown_refuses_later_calls():
    engine = radix.Engine("demo", threads=1)
    engine.shutdown()
    with pytest.raises(RuntimeError):
        engine.embed(["hello"])


def test_http_server_gives_the_same_numbers(radix_bin):
    """The third front end: `radix serve` answers with the Python engine's numbers (both default
    options; float tolerance because the server runs two CPU threads, the engine one)."""
    from test_server_helpers import RadixServer

    docs = ["a prefix tree", "a fruit", "a trie is a prefix tree"]
    with radix.Engine("demo", threads=1) as engine:
        want_embed = engine.embed(TEXTS[:3])
    with radix.Engine("demo", head="reranker", threads=1) as engine:
        want_rerank = engine.rerank("what is a trie", docs)
    server = RadixServer(radix_bin, "--model", "demo")
    try:
        got = np.array(server.post("/embed", {"inputs": TEXTS[:3]}).json())
    finally:
        assert server.stop() == 0, server.output()
    np.testing.assert_allclose(got, want_embed, rtol=1e-5, atol=1e-6)
    server = RadixServer(radix_bin, "--model", "demo", "--head", "reranker")
    try:
        ranked = server.post("/rerank", {"query": "what is a trie", "texts": docs}).json()
    finally:
        assert server.stop() == 0, server.output()
    got = np.zeros(len(docs))
    for r in ranked:
        got[r["index"]] = r["score"]
    np.testing.assert_allclose(got, want_rerank, rtol=1e-5)


def test_torch_output(embedder):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed for this interpreter")
    with radix.Engine("demo", threads=1, radix_threshold=1.0, output="torch") as engine:
        got = engine.embed(TEXTS[:2])
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
        np.testing.assert_array_equal(got.numpy(), embedder.embed(TEXTS[:2]))
    assert isinstance(embedder.encode(TEXTS[:2], convert_to_tensor=True), torch.Tensor)


def test_rerank_template_keyword_matches_the_cli(reranker):
    # Engine(rerank_template=...) is --rerank-template: inline JSON or a file, same numbers.
    template = json.dumps({"segments": ["Q: {query}", "\n", "D: {document}", "\nRelevant:"]})
    docs = ["a prefix tree", "a fruit"]
    cli = run_cli(["rerank", "--model", "demo", "--threads", "1", "--query", "what is a trie",
                   "--rerank-template", template, *docs])
    with radix.Engine("demo", head="reranker", threads=1, radix_threshold=1.0,
                      rerank_template=template) as engine:
        assert engine.info["rerank_template"] == "--rerank-template"
        assert engine.info["default_rerank_instruction"] == ""
        got = engine.rerank("what is a trie", docs)
        with pytest.raises(ValueError, match="takes no instruction"):
            engine.rerank("what is a trie", docs, instruction="judge")
    np.testing.assert_allclose(got, [r["score"] for r in cli["results"]], rtol=1e-6)
    assert not np.allclose(got, reranker.rerank("what is a trie", docs))  # not Qwen3's template
    assert reranker.info["rerank_template"] == "qwen3-reranker (built in)"
    with pytest.raises(ValueError, match="must appear exactly once"):
        radix.Engine("demo", head="reranker", rerank_template='{"segments": ["{query}"]}')
