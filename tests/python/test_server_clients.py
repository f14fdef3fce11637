"""The official clients against `radix serve --model demo`: openai (embeddings, models.list) and
huggingface_hub.InferenceClient pointed at the server's URL (feature_extraction,
sentence_similarity on an embedding model; text_classification on a classifier)."""
import math

import pytest

from test_server_helpers import DEMO_CLASSIFIER, RadixServer

openai = pytest.importorskip("openai", reason="the openai package could not be installed")
hf = pytest.importorskip("huggingface_hub",
                         reason="the huggingface_hub package could not be installed")
np = pytest.importorskip("numpy", reason="numpy (huggingface_hub's feature_extraction) is missing")


@pytest.fixture(scope="module")
def embedder(radix_bin):
    s = RadixServer(radix_bin, "--model", "demo", "--served-model-name", "demo-embed")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def classifier(radix_bin):
    s = RadixServer(radix_bin, "--model", DEMO_CLASSIFIER, "--tokenizer", "demo")
    yield s
    s.stop()


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_openai_embeddings_and_models(embedder):
    client = openai.OpenAI(base_url=embedder.url + "/v1", api_key="unused", max_retries=0,
                           timeout=30)
    models = client.models.list()
    assert [m.id for m in models.data] == ["demo-embed"]
    assert client.models.retrieve("demo-embed").id == "demo-embed"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("another-model")
    out = client.embeddings.create(model="demo-embed", input=["hello world", "goodbye"])
    tei = embedder.post("/embed", {"inputs": ["hello world", "goodbye"]}).json()
    assert [d.index for d in out.data] == [0, 1]
    # The client asks for base64 and decodes float32: equal up to float32 rounding of the JSON.
    assert all(abs(x - y) < 1e-6 for x, y in zip(out.data[0].embedding, tei[0]))
    assert out.usage.prompt_tokens > 0
    # `truncate` as an extra body field is honoured, not a 422.
    long_text = "word " * 5000
    with pytest.raises(openai.UnprocessableEntityError):
        client.embeddings.create(model="demo-embed", input=long_text)
    t = client.embeddings.create(model="demo-embed", input=long_text, extra_body={"truncate": True})
    assert len(t.data) == 1


def test_inference_client_on_an_embedding_model(embedder):
    client = hf.InferenceClient(model=embedder.url, timeout=30)
    emb = client.feature_extraction("hello world")
    tei = embedder.post("/embed", {"inputs": "hello world"}).json()
    assert emb.shape == (1, len(tei[0]))
    assert np.allclose(emb[0], np.array(tei[0], dtype=np.float32), atol=1e-6)

    sims = client.sentence_similarity("hello world", other_sentences=["hello world", "goodbye"])
    assert len(sims) == 2
    assert abs(sims[0] - 1.0) < 1e-5  # a sentence with itself
    e = embedder.post("/embed", {"inputs": ["hello world", "goodbye"]}).json()
    assert abs(sims[1] - cosine(e[0], e[1])) < 1e-5
    assert embedder.post("/similarity", {"inputs": {"source_sentence": "hello world",
                                                    "sentences": ["goodbye"]}}).json() == \
        pytest.approx([sims[1]], abs=1e-6)


def test_inference_client_on_a_classifier(classifier):
    client = hf.InferenceClient(model=classifier.url, timeout=30)
    out = client.text_classification("I like you")
    expected = classifier.post("/predict", {"inputs": "I like you"}).json()
    # POST / answers a list per input, as the Hub does, so the client returns every label.
    assert [o.label for o in out] == [e["label"] for e in expected]
    assert all(abs(o.score - e["score"]) < 1e-6 for o, e in zip(out, expected))
