"""Prefix-affine routing through `radix serve --device cpu,cpu` (two CPU workers, the demo model):
a stream of requests sharing a prefix lands on one worker, whose cache hit rate is the one-worker
server's; per-worker metrics and /info show it (docs/server.md, docs/prefix_cache.md)."""
import re

from test_server_helpers import RadixServer

# Two prompt families, each a long shared prefix (the demo tokenizer is byte-level: ~300 tokens)
# and short own parts, sent one request at a time.
FAMILY_A = "Examples of support tickets and their labels. " * 6 + "\nTicket: "
FAMILY_B = "Rate the following product review from one to five stars. " * 5 + "\nReview: "
TEXTS_A = [FAMILY_A + f"my order {i} arrived {'late' if i % 2 else 'broken'}" for i in range(10)]
TEXTS_B = [FAMILY_B + f"item {i} is {'great' if i % 3 else 'bad'}" for i in range(6)]


def worker_metrics(server):
    """{metric: {worker: value}} of the radix_worker_* families."""
    out = {}
    for line in server.get("/metrics").text.splitlines():
        m = re.match(r'^(radix_worker_\w+)\{worker="([^"]+)"\} (\S+)$', line)
        if m:
            out.setdefault(m.group(1), {})[m.group(2)] = float(m.group(3))
    return out


def delta(before, after, name):
    return {w: after[name][w] - before[name].get(w, 0) for w in after[name]}


def send_one_at_a_time(server, texts):
    return [server.post("/embed", {"inputs": t}).json()[0] for t in texts]


def test_a_prefix_family_stays_on_one_worker_with_the_one_worker_hit_rate(radix_bin):
    cache = ("--model", "demo", "--prefix-cache-mib", "64")
    one = RadixServer(radix_bin, *cache, "--device", "cpu")
    try:
        lookup0 = one.metric("radix_prefix_cache_lookup_tokens")
        hit0 = one.metric("radix_prefix_cache_hit_tokens")
        single = send_one_at_a_time(one, TEXTS_A)
        one_hits = one.metric("radix_prefix_cache_hit_tokens") - hit0
        one_lookups = one.metric("radix_prefix_cache_lookup_tokens") - lookup0
        # One worker: no worker label needed, but the family is still rendered with its one series.
        assert set(worker_metrics(one)["radix_worker_batches_total"]) == {"cpu"}
    finally:
        assert one.stop() == 0
    assert one_hits > 0.8 * one_lookups  # the prefix is most of every request

    two = RadixServer(radix_bin, *cache, "--device", "cpu,cpu")
    try:
        info = two.get("/info").json()
        assert [w["worker"] for w in info["workers"]] == ["cpu#0", "cpu#1"]

        before = worker_metrics(two)
        got = send_one_at_a_time(two, TEXTS_A)
        after = worker_metrics(two)
        batches = delta(before, after, "radix_worker_batches_total")
        hits = delta(before, after, "radix_worker_prefix_cache_hit_tokens")
        lookups = delta(before, after, "radix_worker_prefix_cache_lookup_tokens")
        home = max(batches, key=batches.get)
        other = "cpu#1" if home == "cpu#0" else "cpu#0"
        # Affinity: every request of the family ran where its prefix was cached...
        assert batches == {home: len(TEXTS_A), other: 0}, batches
        routed = delta(before, after, "radix_worker_prefix_routed_batches_total")
        assert routed[home] >= len(TEXTS_A) - 1, routed
        # ... so that worker saw exactly the one-worker server's lookups and hits.
        assert (hits[home], lookups[home]) == (one_hits, one_lookups)
        assert hits[other] == 0
        # Both workers hold the same weights: the same answers as one worker (fp32; the cached K/V
        # came from other batches' GEMMs, so allow rounding, far below any mix-up).
        for a, b in zip(got, single):
            assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4

        # A second family, cached nowhere: the tie goes to the worker that took fewer batches (the
        # other one), so the two families fill both caches; it then stays there.
        before = worker_metrics(two)
        send_one_at_a_time(two, TEXTS_B)
        after = worker_metrics(two)
        batches_b = delta(before, after, "radix_worker_batches_total")
        assert batches_b == {home: 0, other: len(TEXTS_B)}, batches_b
        # And the first family still finds its worker.
        before = worker_metrics(two)
        send_one_at_a_time(two, [FAMILY_A + "one more ticket"])
        after = worker_metrics(two)
        assert delta(before, after, "radix_worker_batches_total") == {home: 1, other: 0}

        # The summed metrics are the per-worker ones added up; /info agrees with /metrics.
        total = two.metric("radix_prefix_cache_hit_tokens")
        assert total == sum(after["radix_worker_prefix_cache_hit_tokens"].values())
        info = two.get("/info").json()
        for w in info["workers"]:
            assert w["batches"] == after["radix_worker_batches_total"][w["worker"]]
            assert w["prefix_cache_hit_tokens"] == after["radix_worker_prefix_cache_hit_tokens"][w["worker"]]
            assert w["busy"] is False and w["running_sequences"] == 0
        assert after["radix_worker_prefix_cache_bytes"][home] > 0
    finally:
        assert two.stop() == 0
