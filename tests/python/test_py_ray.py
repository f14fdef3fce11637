"""radix.ray on a local Ray cluster (CPU, two actors, demo model): a dataset embedded across
actors equals the single-process Engine.embed_corpus results, row for row."""
import os
import pathlib
import signal
import time

import pytest

if os.environ.get("RADIX_PY_TESTS") != "1":
    pytest.importorskip("radix._core", reason="the radix Python package is not built for this "
                        "interpreter (scripts/test.sh builds it and runs these tests)")
try:
    import ray
    import ray.data
except ImportError as e:  # only where pip could not install it (scripts/test.sh tries)
    pytest.skip(f"Ray Data is not installed ({e}): pip install 'ray[data]' to run this test",
                allow_module_level=True)

import numpy as np  # noqa: E402

import radix  # noqa: E402
import radix.ray  # noqa: E402

INSTRUCTIONS = ["Given a web search query, retrieve relevant passages that answer the query",
                "Represent this sentence for finding duplicate questions on a forum"]
TOL = 1e-5  # docs/numerics.md: a row in another batch differs by ~1e-7


@pytest.fixture(scope="module")
def cluster():
    import radix as package
    python_path = str(pathlib.Path(package.__file__).resolve().parents[1])
    # Logical CPUs: two actors hold one each, and Ray Data's read and split tasks need more (with
    # only two, the actors would starve them and the dataset never finishes).
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": python_path, "RADIX_PY_TESTS": "1"}})

    def too_slow(*_):
        raise TimeoutError("the Ray dataset did not finish in 240 s")

    # A resource deadlock would hang the suite; fail it instead.
    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(240)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
    ray.shutdown()


def test_two_actors_equal_single_process(cluster, tmp_path):
    rows = [{"id": i, "text": f"passage {i * 37 % 100} on topic {i % 4}",
             "instruction": INSTRUCTIONS[i % 2]} for i in range(48)]
    started = time.time()
    ds = ray.data.from_items(rows, override_num_blocks=4)
    ds = radix.ray.embed_dataset(ds, "demo", actors=2, batch_size=12, threads=1,
                                 instruction_column="instruction")
    out = sorted(ds.take_all(), key=lambda r: r["id"])
    assert [r["id"] for r in out] == list(range(48))
    got = np.stack([r["embedding"] for r in out])
    with radix.Engine("demo", threads=1) as engine:
        want = engine.embed_corpus(rows)
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= TOL
        # and each row is its own text's vector, not a neighbour's
        alone = engine.embed([rows[5]["text"]], instruction=rows[5]["instruction"])[0]
        assert np.abs(got[5] - alone).max() <= TOL
    print(f"ray: 48 rows over 2 actors in {time.time() - started:.1f} s")


def test_reranker_actor_on_pandas_batches(cluster):
    pairs = [{"query": q, "document": d} for d in ["a prefix tree", "an insect", "a fruit"]
             for q in ["what is a trie", "how long do fleas live"]]
    ds = ray.data.from_items(pairs, override_num_blocks=2).map_batches(
        radix.ray.Reranker, fn_constructor_kwargs={"model": "demo", "head": "reranker",
                                                   "threads": 1},
        compute=ray.data.ActorPoolStrategy(size=2), batch_size=3, batch_format="pandas")
    got = {(r["query"], r["document"]): r["score"] for r in ds.take_all()}
    with radix.Engine("demo", head="reranker", threads=1) as engine:
        for p in pairs:
            assert abs(got[(p["query"], p["document"])] - engine.rerank(p["query"], [p["document"]])[0]) <= 1e-5
