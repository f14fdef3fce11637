"""Every route and field of `radix serve`, against the real binary with the demo model."""
import base64
import math
import signal
import struct

import pytest

from test_server_helpers import DEMO_CLASSIFIER, RadixServer

HIDDEN = 128  # the demo model's hidden size
QUERY_PROMPT = ("Instruct: Given a web search query, retrieve relevant passages that answer the query\n"
                "Query:")
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


@pytest.fixture(scope="module")
def embedder(radix_bin):
    s = RadixServer(radix_bin, "--model", "demo", "--served-model-name", "demo-embed")
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture(scope="module")
def reranker(radix_bin):
    s = RadixServer(radix_bin, "--model", "demo", "--head", "reranker")
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture(scope="module")
def classifier(radix_bin):
    s = RadixServer(radix_bin, "--model", DEMO_CLASSIFIER, "--tokenizer", "demo")
    yield s
    assert s.stop() == 0, s.output()


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def close(a, b, tol=1e-5):
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


def test_health_and_info(embedder):
    r = embedder.get("/health")
    assert r.status_code == 200
    info = embedder.get("/info").json()
    assert info["model_id"] == "demo-embed"
    assert info["model_type"] == {"embedding": {"pooling": "last_token"}}
    assert info["model_dtype"] == "float32"
    assert info["max_input_length"] == 8192
    assert info["max_batch_tokens"] == 16384
    assert info["max_client_batch_size"] == 32
    assert info["max_concurrent_requests"] == 512
    assert info["auto_truncate"] is False
    assert info["attention_mode"] == "tree"
    assert info["device"] == "cpu"
    assert info["cuda_graphs"] is False  # only a CUDA device records forwards
    assert info["hidden_size"] == HIDDEN
    assert set(info["prompts"]) == {"query", "document"}
    assert info["warmup_seconds"] > 0


def test_embed_string_list_and_normalize(embedder):
    one = embedder.post("/embed", {"inputs": "hello world"})
    assert one.status_code == 200
    [e] = one.json()
    assert len(e) == HIDDEN
    assert abs(norm(e) - 1) < 1e-5

    two = embedder.post("/embed", {"inputs": ["hello world", "goodbye"]}).json()
    assert len(two) == 2
    assert close(two[0], e)
    assert not close(two[1], e, 1e-3)

    raw = embedder.post("/embed", {"inputs": "hello world", "normalize": False}).json()[0]
    n = norm(raw)
    assert abs(n - 1) > 1e-3
    assert close([x / n for x in raw], e)


def test_embed_dimensions_truncate_then_normalize(embedder):
    raw = embedder.post("/embed", {"inputs": "matryoshka", "normalize": False}).json()[0]
    d16 = embedder.post("/embed", {"inputs": "matryoshka", "dimensions": 16}).json()[0]
    assert len(d16) == 16
    n = norm(raw[:16])
    assert close(d16, [x / n for x in raw[:16]])
    r = embedder.post("/embed", {"inputs": "x", "dimensions": HIDDEN + 1})
    assert r.status_code == 422


def test_embed_token_ids_equal_text(embedder):
    tokens = embedder.post("/tokenize", {"inputs": "same input"}).json()[0]
    ids = [t["id"] for t in tokens]
    by_text = embedder.post("/embed", {"inputs": "same input"}).json()[0]
    by_ids = embedder.post("/embed", {"inputs": ids}).json()[0]
    by_batch = embedder.post("/embed", {"inputs": [ids, "same input"]}).json()
    assert close(by_ids, by_text, 1e-6)
    assert close(by_batch[0], by_batch[1], 1e-6)


def test_embed_prompt_name(embedder):
    with_prompt = embedder.post("/embed", {"inputs": "cats", "prompt_name": "query"}).json()[0]
    spelled_out = embedder.post("/embed", {"inputs": QUERY_PROMPT + "cats"}).json()[0]
    plain = embedder.post("/embed", {"inputs": "cats"}).json()[0]
    assert close(with_prompt, spelled_out, 1e-6)
    assert not close(with_prompt, plain, 1e-3)
    doc = embedder.post("/embed", {"inputs": "cats", "prompt_name": "document"}).json()[0]
    assert close(doc, plain, 1e-6)  # the document prompt is empty
    r = embedder.post("/embed", {"inputs": "cats", "prompt_name": "nope"})
    assert r.status_code == 422
    assert "nope" in r.json()["error"]


def test_embed_truncation_direction(radix_bin):
    s = RadixServer(radix_bin, "--model", "demo", "--max-input-length", "64")
    try:
        text = "abcdefghij" * 10  # 100 tokens + <|endoftext|> > 64
        assert s.post("/embed", {"inputs": text}).status_code == 422
        right = s.post("/embed", {"inputs": text, "truncate": True}).json()[0]
        left = s.post("/embed", {"inputs": text, "truncate": True,
                                 "truncation_direction": "left"}).json()[0]
        # Right truncation keeps the first 63 bytes (+ <|endoftext|>): the same as sending them.
        first = s.post("/embed", {"inputs": text[:63]}).json()[0]
        last = s.post("/embed", {"inputs": text[-63:]}).json()[0]
        assert close(right, first, 1e-6)
        assert close(left, last, 1e-6)
        assert not close(left, right, 1e-4)
    finally:
        assert s.stop() == 0


def test_openai_embeddings(embedder):
    r = embedder.post("/v1/embeddings", {"input": ["hello world", "goodbye"], "model": "m"})
    assert r.status_code == 200
    j = r.json()
    assert j["object"] == "list"
    assert j["model"] == "m"
    assert [d["index"] for d in j["data"]] == [0, 1]
    assert all(d["object"] == "embedding" for d in j["data"])
    tei = embedder.post("/embed", {"inputs": ["hello world", "goodbye"]}).json()
    assert close(j["data"][0]["embedding"], tei[0], 1e-6)
    ntok = sum(len(t) for t in embedder.post("/tokenize", {"inputs": ["hello world", "goodbye"]}).json())
    assert j["usage"] == {"prompt_tokens": ntok, "total_tokens": ntok}

    b = embedder.post("/v1/embeddings", {"input": "hello world", "encoding_format": "base64",
                                         "dimensions": 8}).json()
    raw = base64.b64decode(b["data"][0]["embedding"])
    floats = list(struct.unpack("<8f", raw))
    f = embedder.post("/v1/embeddings", {"input": "hello world", "dimensions": 8}).json()
    # The list carries each float32 in its shortest decimal form (as TEI does): read as float32,
    # it is the base64 form's value exactly.
    listed = f["data"][0]["embedding"]
    assert list(struct.unpack("<8f", struct.pack("<8f", *listed))) == floats
    assert all(isinstance(x, float) for x in listed)
    assert f["model"] == "demo-embed"

    ids = embedder.post("/v1/embeddings", {"input": [[104, 105]]}).json()
    assert len(ids["data"][0]["embedding"]) == HIDDEN


def test_openai_client(embedder):
    openai = pytest.importorskip("openai", reason="the openai client package is not installed")
    client = openai.OpenAI(base_url=embedder.url + "/v1", api_key="unused")
    out = client.embeddings.create(model="demo", input=["hello world", "goodbye"])
    tei = embedder.post("/embed", {"inputs": ["hello world", "goodbye"]}).json()
    assert len(out.data) == 2
    assert close(out.data[1].embedding, tei[1], 1e-6)  # the client asks for base64 and decodes it
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="demo", input=[])


def test_rerank_sorted_text_raw_scores_instruction(reranker):
    texts = ["a cat is a small domesticated carnivore", "stocks fell on monday", "cats purr",
             "the weather is fine"]
    r = reranker.post("/rerank", {"query": "what is a cat", "texts": texts, "return_text": True})
    assert r.status_code == 200
    ranks = r.json()
    assert sorted(x["index"] for x in ranks) == [0, 1, 2, 3]
    scores = [x["score"] for x in ranks]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s < 1 for s in scores)
    assert all(x["text"] == texts[x["index"]] for x in ranks)

    raw = reranker.post("/rerank", {"query": "what is a cat", "texts": texts, "raw_scores": True}).json()
    by_index = {x["index"]: x["score"] for x in ranks}
    for x in raw:
        assert "text" not in x
        assert abs(1 / (1 + math.exp(-x["score"])) - by_index[x["index"]]) < 1e-5

    explicit = reranker.post("/rerank", {"query": "what is a cat", "texts": texts,
                                         "instruction": DEFAULT_INSTRUCTION}).json()
    assert {x["index"]: x["score"] for x in explicit} == pytest.approx(by_index, abs=1e-6)
    other = reranker.post("/rerank", {"query": "what is a cat", "texts": texts,
                                      "instruction": "Find documents about finance"}).json()
    assert {x["index"]: x["score"] for x in other} != pytest.approx(by_index, abs=1e-6)
    assert reranker.get("/info").json()["default_instruction"] == DEFAULT_INSTRUCTION


def test_rerank_scores_do_not_depend_on_the_other_texts(reranker):
    alone = reranker.post("/rerank", {"query": "q", "texts": ["cats purr"]}).json()[0]["score"]
    mixed = reranker.post("/rerank", {"query": "q", "texts": ["dogs bark", "cats purr", "x"]}).json()
    assert [x["score"] for x in mixed if x["index"] == 1][0] == pytest.approx(alone, abs=1e-6)


def test_v1_rerank(reranker):
    docs = ["cats purr", {"text": "stocks fell"}, "a cat is an animal"]
    r = reranker.post("/v1/rerank", {"query": "what is a cat", "documents": docs, "top_n": 2,
                                     "return_documents": True, "model": "rr"})
    assert r.status_code == 200
    j = r.json()
    assert j["model"] == "rr"
    assert len(j["results"]) == 2
    tei = reranker.post("/rerank", {"query": "what is a cat",
                                    "texts": ["cats purr", "stocks fell", "a cat is an animal"]}).json()
    assert [x["index"] for x in j["results"]] == [x["index"] for x in tei[:2]]
    for res, t in zip(j["results"], tei):
        assert res["relevance_score"] == pytest.approx(t["score"], abs=1e-6)
        plain = docs[res["index"]]
        assert res["document"]["text"] == (plain if isinstance(plain, str) else plain["text"])
    assert j["usage"]["total_tokens"] > 0
    bare = reranker.post("/v1/rerank", {"query": "q", "documents": ["a", "b"]}).json()
    assert len(bare["results"]) == 2
    assert "document" not in bare["results"][0]


def test_predict_single_pair_and_batch(classifier):
    info = classifier.get("/info").json()
    assert info["model_type"]["classifier"]["id2label"] == {"0": "LABEL_0", "1": "LABEL_1"}
    single = classifier.post("/predict", {"inputs": "hello"})
    assert single.status_code == 200
    preds = single.json()
    assert {p["label"] for p in preds} == {"LABEL_0", "LABEL_1"}
    assert sum(p["score"] for p in preds) == pytest.approx(1, abs=1e-5)
    assert preds[0]["score"] >= preds[1]["score"]

    raw = classifier.post("/predict", {"inputs": "hello", "raw_scores": True}).json()
    logits = {p["label"]: p["score"] for p in raw}
    p1 = 1 / (1 + math.exp(logits["LABEL_0"] - logits["LABEL_1"]))
    assert {p["label"]: p["score"] for p in preds}["LABEL_1"] == pytest.approx(p1, abs=1e-5)

    pair = classifier.post("/predict", {"inputs": ["hello", "world"]}).json()
    assert isinstance(pair[0], dict)
    batch = classifier.post("/predict", {"inputs": [["hello"], ["hello", "world"]]}).json()
    assert len(batch) == 2 and isinstance(batch[0], list)
    assert {p["label"]: p["score"] for p in batch[0]} == pytest.approx(
        {p["label"]: p["score"] for p in preds}, abs=1e-6)
    assert {p["label"]: p["score"] for p in batch[1]} == pytest.approx(
        {p["label"]: p["score"] for p in pair}, abs=1e-6)


def test_tokenize_and_decode(embedder):
    r = embedder.post("/tokenize", {"inputs": "hi <|im_start|>"})
    assert r.status_code == 200
    [tokens] = r.json()
    assert tokens[0] == {"id": 104, "text": "h", "special": False, "start": 0, "stop": 1}
    assert tokens[-1] == {"id": 256, "text": "<|endoftext|>", "special": True,
                          "start": None, "stop": None}
    assert tokens[-2]["text"] == "<|im_start|>" and tokens[-2]["special"] is True
    text = "hi <|im_start|>"
    for t in tokens:
        if not t["special"]:
            assert text.encode()[t["start"]:t["stop"]].decode() == t["text"]

    no_special = embedder.post("/tokenize", {"inputs": ["hi"], "add_special_tokens": False}).json()
    assert [t["id"] for t in no_special[0]] == [104, 105]
    prompted = embedder.post("/tokenize", {"inputs": "x", "prompt_name": "query"}).json()[0]
    assert len(prompted) == len(QUERY_PROMPT.encode()) + 2

    ids = [t["id"] for t in tokens]
    assert embedder.post("/decode", {"ids": ids}).json() == ["hi "]
    assert embedder.post("/decode", {"ids": ids, "skip_special_tokens": False}).json() == [
        "hi <|im_start|><|endoftext|>"]
    assert embedder.post("/decode", {"ids": [[104], [105, 33]]}).json() == ["h", "i!"]


def test_metrics(embedder):
    embedder.post("/embed", {"inputs": ["shared prefix one", "shared prefix two"]})
    embedder.post("/embed", {"inputs": []})
    text = embedder.get("/metrics").text
    assert 'radix_requests_total{route="/embed",status="200"}' in text
    assert 'radix_requests_total{route="/embed",status="400"}' in text
    assert 'radix_request_duration_seconds_bucket{route="/embed",le="+Inf"}' in text
    for name in ["radix_queue_depth", "radix_inflight_requests", "radix_batch_tokens_count",
                 "radix_batch_unique_tokens_count", "radix_batch_compression_ratio_count",
                 "radix_compression_ratio", "radix_tokens_total", "radix_unique_tokens_total",
                 "radix_batches_total"]:
        assert embedder.metric(name) >= 0
    assert embedder.metric("radix_unique_tokens_total") < embedder.metric("radix_tokens_total")
    assert 0 < embedder.metric("radix_compression_ratio") < 1


def test_openapi_describes_every_route(embedder):
    doc = embedder.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in ["/", "/embed", "/embed_all", "/embed_sparse", "/similarity", "/rerank", "/predict",
                 "/tokenize", "/decode", "/info", "/health", "/metrics", "/v1/models",
                 "/v1/models/{model}", "/v1/embeddings", "/v1/rerank", "/openapi.json"]:
        assert path in doc["paths"], path
    assert "requestBody" in doc["paths"]["/embed"]["post"]
    for status in ["200", "400", "413", "422", "429", "503"]:
        assert status in doc["paths"]["/embed"]["post"]["responses"]


def test_sigterm_exits_cleanly(radix_bin):
    s = RadixServer(radix_bin, "--model", "demo")
    assert s.post("/embed", {"inputs": "x"}).status_code == 200
    assert s.stop(signal.SIGINT) == 0
    assert "stopped" in s.output()
