"""Every error `radix serve` answers, with its status and body (TEI shape, OpenAI shape on /v1)."""
import pytest
import requests

from test_server_helpers import RadixServer


@pytest.fixture(scope="module")
def server(radix_bin):
    s = RadixServer(radix_bin, "--model", "demo", "--max-client-batch-size", "4",
                    "--payload-limit", "20000", "--max-input-length", "64")
    yield s
    assert s.stop() == 0, s.output()


def tei_error(r, status, error_type, needle=""):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "error_type"}, body
    assert body["error_type"] == error_type, body
    assert needle in body["error"], body


def openai_error(r, status, needle=""):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}, err
    assert needle in err["message"], err
    return err


def raw_post(server, path, data: bytes, headers=None):
    h = {"Content-Type": "application/json", **(headers or {})}
    return requests.post(server.url + path, data=data, headers=h, timeout=30)


def test_400_empty_input(server):
    tei_error(server.post("/embed", {"inputs": ""}), 400, "Empty")
    tei_error(server.post("/embed", {"inputs": []}), 400, "Empty", "`inputs` cannot be empty")
    tei_error(server.post("/embed", {"inputs": ["a", ""]}), 400, "Empty")
    tei_error(server.post("/embed", {"inputs": [[]]}), 400, "Empty")
    tei_error(server.post("/rerank", {"query": "q", "texts": []}), 400, "Empty")
    tei_error(server.post("/tokenize", {"inputs": []}), 400, "Empty")
    tei_error(server.post("/decode", {"ids": []}), 400, "Empty")
    openai_error(server.post("/v1/embeddings", {"input": []}), 400)
    openai_error(server.post("/v1/rerank", {"query": "q", "documents": []}), 400)


def test_400_body_not_json(server):
    tei_error(raw_post(server, "/embed", b"{not json"), 400, "Validation", "not valid JSON")
    tei_error(raw_post(server, "/embed", b""), 400, "Validation")
    openai_error(raw_post(server, "/v1/embeddings", b"[1,"), 400, "not valid JSON")


def test_413_payload_over_limit(server):
    big = b'{"inputs": "' + b"a" * 30000 + b'"}'
    r = raw_post(server, "/embed", big)
    tei_error(r, 413, "PayloadTooLarge", "20000")
    openai_error(raw_post(server, "/v1/embeddings", b'{"input": "' + b"a" * 30000 + b'"}'), 413)
    assert server.post("/embed", {"inputs": "still fine"}).status_code == 200


def test_422_too_many_inputs(server):
    tei_error(server.post("/embed", {"inputs": ["a"] * 5}), 422, "Validation",
              "batch size 5 > maximum allowed batch size 4")
    tei_error(server.post("/rerank", {"query": "q", "texts": ["a"] * 5}), 422, "Validation")
    openai_error(server.post("/v1/embeddings", {"input": ["a"] * 5}), 422, "batch size")
    assert server.post("/embed", {"inputs": ["a"] * 4}).status_code == 200


def test_422_too_long_without_truncation(server):
    r = server.post("/embed", {"inputs": "x" * 100})
    tei_error(r, 422, "Validation", "must have less than 64 tokens. Given: 101")
    assert server.post("/embed", {"inputs": "x" * 100, "truncate": True}).status_code == 200
    tei_error(server.post("/embed", {"inputs": list(range(100, 200))}), 422, "Validation")
    openai_error(server.post("/v1/embeddings", {"input": "x" * 100}), 422, "less than 64")


def test_422_wrong_types(server):
    tei_error(server.post("/embed", {"inputs": 5}), 422, "Validation", "`inputs` must be")
    tei_error(server.post("/embed", {}), 422, "Validation", "missing field `inputs`")
    tei_error(server.post("/embed", {"inputs": "a", "normalize": "yes"}), 422, "Validation",
              "`normalize` must be a boolean")
    tei_error(server.post("/embed", {"inputs": "a", "dimensions": "8"}), 422, "Validation")
    tei_error(server.post("/embed", {"inputs": [1.5]}), 422, "Validation")
    tei_error(server.post("/embed", {"inputs": [-1]}), 422, "Validation")
    tei_error(server.post("/embed", {"inputs": [10240]}), 422, "Validation", "outside the vocabulary")
    tei_error(server.post("/embed", {"inputs": "a", "truncation_direction": "up"}), 422, "Validation")
    tei_error(server.post("/embed", ["inputs"]), 422, "Validation", "JSON object")
    tei_error(server.post("/rerank", {"query": 1, "texts": ["a"]}), 422, "Validation")
    tei_error(server.post("/decode", {"ids": [[1], 2]}), 422, "Validation")
    tei_error(server.post("/decode", {"ids": [999999]}), 422, "Validation")
    openai_error(server.post("/v1/embeddings", {"input": "a", "encoding_format": "hex"}), 422,
                 "encoding_format")


def test_422_invalid_utf8(server):
    r = raw_post(server, "/embed", b'{"inputs": "caf\xc3"}')
    tei_error(r, 422, "Validation", "UTF-8")
    tei_error(raw_post(server, "/embed", b'{"inputs": "\xff"}'), 422, "Validation", "offset 12")
    tei_error(raw_post(server, "/embed", b'{"inputs": "\\ud800"}'), 422, "Validation")
    openai_error(raw_post(server, "/v1/embeddings", b'{"input": "\xed\xa0\x80"}'), 422, "UTF-8")


def test_424_route_the_model_cannot_serve(server):
    tei_error(server.post("/rerank", {"query": "q", "texts": ["a"]}), 424, "Backend",
              "model is not a re-ranker model")
    tei_error(server.post("/predict", {"inputs": "a"}), 424, "Backend",
              "model is not a classifier model")
    openai_error(server.post("/v1/rerank", {"query": "q", "documents": ["a"]}), 424, "re-ranker")


def test_404_unknown_route(server):
    tei_error(server.get("/nope"), 404, "NotFound")
    tei_error(server.post("/embeddings", {"inputs": "a"}), 404, "NotFound")


def test_auto_truncate(radix_bin):
    s = RadixServer(radix_bin, "--model", "demo", "--max-input-length", "64", "--auto-truncate")
    try:
        assert s.get("/info").json()["auto_truncate"] is True
        assert s.post("/embed", {"inputs": "x" * 100}).status_code == 200
        assert s.post("/embed", {"inputs": "x" * 100, "truncate": False}).status_code == 422
    finally:
        assert s.stop() == 0


def test_api_key(radix_bin):
    s = RadixServer(radix_bin, "--model", "demo", "--api-key", "s3cret",
                    headers={"Authorization": "Bearer s3cret"})
    try:
        assert s.post("/embed", {"inputs": "a"}).status_code == 200
        no_key = requests.post(s.url + "/embed", json={"inputs": "a"}, timeout=30)
        tei_error(no_key, 401, "Unauthorized")
        wrong = requests.post(s.url + "/embed", json={"inputs": "a"},
                              headers={"Authorization": "Bearer nope"}, timeout=30)
        tei_error(wrong, 401, "Unauthorized")
        not_bearer = requests.post(s.url + "/embed", json={"inputs": "a"},
                                   headers={"Authorization": "s3cret"}, timeout=30)
        tei_error(not_bearer, 401, "Unauthorized")
        err = openai_error(requests.post(s.url + "/v1/embeddings", json={"input": "a"}, timeout=30),
                           401)
        assert err["code"] == "invalid_api_key"
        assert requests.get(s.url + "/info", timeout=30).status_code == 401
        assert s.get("/info").status_code == 200

        openai = pytest.importorskip("openai", reason="the openai client package is not installed")
        good = openai.OpenAI(base_url=s.url + "/v1", api_key="s3cret")
        assert len(good.embeddings.create(model="demo", input="a").data) == 1
        bad = openai.OpenAI(base_url=s.url + "/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.embeddings.create(model="demo", input="a")
    finally:
        assert s.stop() == 0
