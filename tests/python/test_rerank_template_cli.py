"""Rerank prompt templates and reranker tokens through the front ends: `radix rerank` and
`radix serve` on a tiny Gemma folder (tests/fixtures/families, byte-level tokenizer) as a
one-token reranker, with the template from the folder's radix_rerank_template.json, from
--rerank-template (a file or inline JSON, RADIX_RERANK_TEMPLATE for serve), or missing."""
import json
import os
import shutil
import subprocess

import pytest

from test_family_cli import FIXTURES, byte_tokenizer
from test_server_helpers import start_server  # noqa: F401 (a fixture)

TEMPLATE = {"segments": ["A: {query}", "\n", "B: {document}", "\nIs B an answer to A?"]}
OTHER = {"segments": ["Query: {query} Document: {document}"]}
YES = str(ord("Y"))  # the byte tokenizer's id of "Y"


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gemma_reranker")
    for f in (FIXTURES / "gemma").iterdir():
        shutil.copy(f, folder / f.name)
    (folder / "tokenizer.json").write_text(json.dumps(byte_tokenizer()))
    return folder


@pytest.fixture(scope="module")
def gemma_with_template(gemma, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gemma_reranker_template")
    for f in gemma.iterdir():
        shutil.copy(f, folder / f.name)
    (folder / "radix_rerank_template.json").write_text(json.dumps(TEMPLATE))
    return folder


def rerank(radix_bin, folder, *args, ok=True):
    r = subprocess.run([str(radix_bin), "rerank", "--model", str(folder), "--reranker-tokens", "Y",
                        "--query", "what is a cat", *args, "a cat is an animal", "stocks fell"],
                       capture_output=True, text=True, timeout=120)
    if ok:
        assert r.returncode == 0, r.stderr
        return [x["score"] for x in json.loads(r.stdout)["results"]]
    assert r.returncode != 0
    return r.stderr


def test_rerank_without_a_template_says_how_to_give_one(radix_bin, gemma):
    err = rerank(radix_bin, gemma, ok=False)
    assert "no prompt template" in err and "--rerank-template" in err, err


def test_rerank_template_from_folder_flag_file_and_inline(radix_bin, gemma, gemma_with_template,
                                                          tmp_path):
    folder = rerank(radix_bin, gemma_with_template)
    file = tmp_path / "t.json"
    file.write_text(json.dumps(TEMPLATE))
    assert rerank(radix_bin, gemma, "--rerank-template", str(file)) == folder
    assert rerank(radix_bin, gemma, "--rerank-template", json.dumps(TEMPLATE)) == folder
    # The flag wins over the folder's file.
    other = rerank(radix_bin, gemma_with_template, "--rerank-template", json.dumps(OTHER))
    assert other == rerank(radix_bin, gemma, "--rerank-template", json.dumps(OTHER))
    assert other != folder
    # This template has no {instruction}.
    err = rerank(radix_bin, gemma_with_template, "--instruction", "judge", ok=False)
    assert "takes no instruction" in err, err
    err = rerank(radix_bin, gemma, "--rerank-template", '{"segments": ["{query}"]}', ok=False)
    assert "{document} must appear exactly once" in err, err


def test_serve_takes_reranker_tokens_and_template(radix_bin, gemma, gemma_with_template,
                                                  start_server, tmp_path):  # noqa: F811
    cli = rerank(radix_bin, gemma_with_template)
    server = start_server("--model", str(gemma_with_template), "--reranker-tokens", "Y")
    info = server.get("/info").json()
    assert info["model_type"].keys() == {"reranker"}
    assert info["reranker_tokens"] == [int(YES)]
    assert info["rerank_template"].endswith("radix_rerank_template.json")
    assert info["default_instruction"] == ""
    r = server.post("/rerank", {"query": "what is a cat",
                                "texts": ["a cat is an animal", "stocks fell"]})
    assert r.status_code == 200, r.text
    scores = {x["index"]: x["score"] for x in r.json()}
    assert [scores[0], scores[1]] == pytest.approx(cli, abs=1e-6)
    # The flag from the environment (RADIX_RERANK_TEMPLATE), token as an id.
    file = tmp_path / "t.json"
    file.write_text(json.dumps(TEMPLATE))
    os.environ["RADIX_RERANK_TEMPLATE"] = str(file)
    try:
        env_server = start_server("--model", str(gemma), "--reranker-tokens", YES)
    finally:
        del os.environ["RADIX_RERANK_TEMPLATE"]
    assert env_server.get("/info").json()["rerank_template"] == str(file)
    r = env_server.post("/rerank", {"query": "what is a cat",
                                    "texts": ["a cat is an animal", "stocks fell"]})
    assert sorted(x["score"] for x in r.json()) == pytest.approx(sorted(cli), abs=1e-6)


def test_serve_reranker_without_template_starts_and_answers_424(radix_bin, gemma,
                                                                start_server):  # noqa: F811
    server = start_server("--model", str(gemma), "--reranker-tokens", "Y")
    assert "no prompt template" in server.output()
    info = server.get("/info").json()
    assert info["rerank_template"] is None and info["reranker_tokens"] == [int(YES)]
    r = server.post("/rerank", {"query": "q", "texts": ["d"]})
    assert r.status_code == 424, r.text
    assert "--rerank-template" in r.json()["error"]
    assert server.get("/health").status_code == 200


def test_serve_refuses_a_bad_template_and_a_word_of_two_tokens(radix_bin, gemma):
    for args, expected in ((["--rerank-template", '{"segments": ["{query}"]}'], "{document}"),
                           (["--reranker-tokens", "Yes"], "not one")):
        r = subprocess.run([str(radix_bin), "serve", "--model", str(gemma), "--port", "1", *args],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and expected in r.stderr, r.stderr
