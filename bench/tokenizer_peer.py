#!/usr/bin/env python3
"""Hugging Face `tokenizers` on one thread over the dl19 passages: the peer figure for
`radix bench tokenize`. Prints one JSON line per method (encode in a loop; encode_batch)."""
import argparse
import json
import os
import statistics
import sys
import time

# One thread: rayon (encode_batch) reads this before the library starts its pool.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import tokenizers  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default="../shared/assets/qwen3-embedding-0.6b/tokenizer.json")
    ap.add_argument("--passages", default="../shared/assets/msmarco/dl19_bm25_top100.json")
    ap.add_argument("--repetitions", type=int, default=5)
    args = ap.parse_args()

    with open(args.passages, encoding="utf-8") as f:
        texts = [hit["content"] for q in json.load(f) for hit in q["hits"]]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    t0 = time.perf_counter()
    tok = tokenizers.Tokenizer.from_file(args.tokenizer)
    load_s = time.perf_counter() - t0

    def loop():
        return sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)

    def batch():
        return sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))

    for name, fn in (("encode", loop), ("encode_batch", batch)):
        seconds = []
        tokens = 0
        for _ in range(args.repetitions + 1):
            t0 = time.perf_counter()
            tokens = fn()
            seconds.append(time.perf_counter() - t0)
        cold, warm = seconds[0], seconds[1:]
        median = statistics.median(warm)
        print(json.dumps({
            "bench": "tokenize-hf", "method": name, "tokenizers": tokenizers.__version__,
            "passages": len(texts), "bytes": nbytes, "tokens": tokens, "threads": 1,
            "load_s": round(load_s, 3), "cold_mb_per_s": round(nbytes / 1e6 / cold, 2),
            "median_s": round(median, 4), "mb_per_s": round(nbytes / 1e6 / median, 2),
            "repetitions": args.repetitions}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
