"""/openapi.json against a running `radix serve`: a bounded schemathesis pass (positive mode) per
model head. Every body the document allows must be accepted (2xx), no answer may be a 5xx, and
every answer (status, content type, body) must be one the document describes. The routes another
head serves, and /embed_sparse (radix serves no SPLADE model), are checked for no 5xx and a
documented answer (their 424), not for acceptance.

Bounded: a fixed seed, a few examples an operation, no shrinking, a timeout per request, and
small server limits (a batch of 4, 512 tokens an input), so the coverage phase's boundary bodies
(a full batch, the longest id list) stay cheap and the module takes seconds on 2 cores.

What the schema cannot say: a text's length in tokens. A text over --max-input-length without
truncation is a 422 the document describes but no JSON Schema can exclude; the generated texts
here stay far below 512 tokens.
"""
import pathlib
import shutil
import subprocess
import sys

import pytest

from test_server_helpers import DEMO_CLASSIFIER, RadixServer

try:
    import schemathesis  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    schemathesis = None

pytestmark = pytest.mark.skipif(
    schemathesis is None,
    reason="schemathesis is not installed (pip install -r tests/python/requirements.txt); "
           "the OpenAPI conformance pass did not run")

EMBED_ROUTES = ["/", "/embed", "/embed_all", "/similarity", "/tokenize", "/decode", "/v1/embeddings",
                "/v1/models", "/v1/models/{model}", "/info", "/health", "/metrics", "/openapi.json"]
LIMITS = ["--max-client-batch-size", "4", "--max-input-length", "512"]
SERVED = {
    "embedding": (["--model", "demo", "--served-model-name", "demo-embed"], EMBED_ROUTES),
    "reranker": (["--model", "demo", "--head", "reranker"], ["/", "/rerank", "/v1/rerank"]),
    "classifier": (["--model", DEMO_CLASSIFIER, "--tokenizer", "demo"], ["/", "/predict"]),
}
# Answered 424 by the embedding model: documented, never a 5xx, never accepted.
REFUSED = ["/rerank", "/v1/rerank", "/predict", "/embed_sparse"]

ALWAYS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def schemathesis_cli():
    exe = shutil.which("schemathesis", path=str(pathlib.Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "schemathesis.cli"]


def run_schemathesis(server, paths, checks, cwd, examples=8):
    cmd = [*schemathesis_cli(), "run", server.url + "/openapi.json",
           "--mode", "positive", "--phases", "examples,coverage,fuzzing", "--checks", checks,
           "--max-examples", str(examples), "--seed", "20261130", "--no-shrink",
           "--request-timeout", "20", "--suppress-health-check", "all",
           "--generation-database", "none", "--no-color", "--warnings", "off"]
    for p in paths:
        cmd += ["--include-path", p]
    # In a temporary folder: schemathesis keeps caches in its working directory.
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"schemathesis found mismatches ({' '.join(cmd)}):\n{out[-8000:]}"
    # Every selected operation ran (a typo in a path would otherwise select nothing and pass).
    assert f"Tested: {len(paths)}" in out or f"Selected: {len(paths)}/" in out, out[-3000:]


@pytest.mark.parametrize("head", list(SERVED))
def test_every_allowed_body_is_accepted_and_every_answer_documented(radix_bin, head, tmp_path):
    args, paths = SERVED[head]
    server = RadixServer(radix_bin, *args, *LIMITS)
    try:
        run_schemathesis(server, paths, ALWAYS + ",positive_data_acceptance", tmp_path)
    finally:
        assert server.stop() == 0, server.output()


def test_routes_of_other_heads_answer_a_documented_424(radix_bin, tmp_path):
    server = RadixServer(radix_bin, "--model", "demo", *LIMITS)
    try:
        for path in REFUSED:
            body = {"inputs": "x"} if path in ("/predict", "/embed_sparse") else {
                "query": "q", "texts": ["a"], "documents": ["a"]}
            assert server.post(path, body).status_code == 424, path
        run_schemathesis(server, REFUSED, ALWAYS, tmp_path, examples=4)
    finally:
        assert server.stop() == 0, server.output()
