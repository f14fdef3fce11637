"""radix.fold against radix_mlp's numpy binding on docs/benchmarks.md's three fold workloads.

Both get the same uint32 numpy arrays (radix_mlp takes only uint32) and are timed side by side in
one process, interleaved run by run: `radix.compat.compute_fold_and_scatter` (the drop-in, with
its dtype checks and conversions), `radix.fold` (the full plan: parent, subtree_end, last rows
too) and `radix_mlp.compute_fold_and_scatter`. Prints one JSON line per workload and side.

    PYTHONPATH=build/python python bench/py_fold_bench.py [--runs 21] [--warmup 3]
"""

import argparse
import json
import statistics
import time

import numpy as np

import radix
from radix.compat import compute_fold_and_scatter as radix_compat

GAMMA = np.uint64(0x9E3779B97F4A7C15)


class Rng:
    """bench/workloads.cc's splitmix64, vectorised: call k returns mix(seed + k * gamma), so the
    workloads are the ones `radix bench fold` times (same token and unique counts)."""

    def __init__(self, seed):
        self.seed = np.uint64(seed)
        self.calls = 0

    def next(self, n):
        k = np.arange(self.calls + 1, self.calls + n + 1, dtype=np.uint64)
        self.calls += n
        with np.errstate(over="ignore"):
            z = self.seed + k * GAMMA
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

    def uniform(self, lo, hi, n=None):
        v = np.uint64(lo) + self.next(1 if n is None else n) % np.uint64(hi - lo)
        return int(v[0]) if n is None else v

    def tokens(self, n):
        return self.uniform(100, 150000, n)


def syn(batch, prefix, suffix, seed=1):
    rng = Rng(seed)
    shared = rng.tokens(prefix)
    return [np.concatenate([shared, rng.tokens(suffix)]) for _ in range(batch)]


def rerank_like(groups, docs, seed=1):
    rng = Rng(seed)
    system, end = rng.tokens(48), rng.tokens(10)
    seqs = []
    for _ in range(groups):
        query = rng.tokens(rng.uniform(6, 17))
        for _ in range(docs):
            seqs.append(np.concatenate([system, query, rng.tokens(rng.uniform(40, 121)), end]))
    return seqs


WORKLOADS = {
    "syn:B=32,P=2048,S=256": lambda: syn(32, 2048, 256),
    "rerank-like:G=40,D=10": lambda: rerank_like(40, 10),
    "wide:B=2048,L=512,P=128": lambda: syn(2048, 128, 512 - 128),
}


def flat_batch(seqs):
    ids = np.concatenate(seqs).astype(np.uint32)
    pos = np.concatenate([np.arange(len(s)) for s in seqs]).astype(np.uint32)
    cu = np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.uint32)
    return ids, pos, cu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    try:
        import radix_mlp
        peer = radix_mlp.compute_fold_and_scatter
    except ImportError:
        peer = None
        print("# radix_mlp is not installed (pip install radix-mlp): timing radix alone")

    for name, make in WORKLOADS.items():
        ids, pos, cu = flat_batch(make())
        ids32, pos32, cu32 = (a.view(np.int32) for a in (ids, pos, cu))
        sides = {
            "radix.compat": lambda: radix_compat(ids, pos, cu),
            "radix.fold": lambda: radix.fold(ids32, pos32, cu32),
        }
        if peer is not None:
            sides["radix_mlp"] = lambda: peer(ids, pos, cu, None)
            assert len(radix_compat(ids, pos, cu)[0]) == len(peer(ids, pos, cu, None)[0])
        unique = radix.fold(ids32, pos32, cu32).num_unique
        times = {side: [] for side in sides}
        for i in range(args.warmup + args.runs):
            for side, call in sides.items():  # interleaved: load changes hit every side alike
                t0 = time.perf_counter()
                call()
                if i >= args.warmup:
                    times[side].append(time.perf_counter() - t0)
        medians = {side: statistics.median(t) for side, t in times.items()}
        for side, med in medians.items():
            row = {"workload": name, "side": side, "tokens": len(ids), "unique": unique,
                   "median_us": round(med * 1e6, 1),
                   "ns_per_token": round(med * 1e9 / len(ids), 3), "runs": args.runs}
            if "radix_mlp" in medians and side != "radix_mlp":
                row["speedup_vs_radix_mlp"] = round(medians["radix_mlp"] / med, 2)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
