#!/usr/bin/env python3
"""Offline-corpus throughput: `radix embed/rerank --input` (the corpus pipeline) against the
engine's own time on the same batches, and prefix order against file order (issue 15 §1).

Corpora, from ../shared/assets/msmarco/dl19_bm25_top100.json (43 queries x 100 BM25 passages):
  rerank-pairs : the 4,300 (query, passage) pairs, shuffled (a query's pairs scattered)
  embed-instr  : the 4,300 passages, each under one of 3 retrieval instructions, shuffled
Each corpus runs twice through the CLI, ordered by prefix (the default) and in file order
(--file-order). Reported per run, from the CLI's JSON summary:
  tok/s        end to end: tokens / wall time of the pipeline (read, tokenize, order, batch,
               run, write), the model loaded beforehand
  fwd tok/s    tokens / the engine's time in those same batches (fold plan + forward, summed
               back to back): what `radix bench model` measures for a batch, here for exactly
               the batches the pipeline formed
  pipe         tok/s / fwd tok/s: how much of the host work the pipeline hides (target >= 0.9)
  compression  tokens / rows the position-wise ops ran on
and `radix bench model --workload rerank-like:G=..,D=..` (a synthetic batch of the same shape) as
a reference line.

  python3 bench/corpus_bench.py --model random:qwen3-0.6b --device cuda     # H200
  python3 bench/corpus_bench.py --model demo --limit 600 --threads 2        # CPU smoke run
"""
import argparse
import json
import pathlib
import random
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
DL19 = REPO.parent / "shared" / "assets" / "msmarco" / "dl19_bm25_top100.json"
QWEN3_TOKENIZER = REPO.parent / "shared" / "assets" / "qwen3-embedding-0.6b" / "tokenizer.json"
INSTRUCTIONS = [
    "Given a web search query, retrieve relevant passages that answer the query",
    "Given a question, retrieve passages from a web corpus that contain its answer",
    "Represent this passage of a web page for retrieving it with short search queries",
]


def corpora(dl19, limit, seed, out_dir):
    data = json.loads(pathlib.Path(dl19).read_text())
    pairs = [{"query": q["query"], "document": h["content"]} for q in data for h in q["hits"]]
    rng = random.Random(seed)
    rng.shuffle(pairs)
    passages = [{"text": p["document"], "instruction": INSTRUCTIONS[i % 3]}
                for i, p in enumerate(pairs)]
    rng.shuffle(passages)
    if limit:
        pairs, passages = pairs[:limit], passages[:limit]
    files = {}
    for name, rows in (("rerank-pairs", pairs), ("embed-instr", passages)):
        path = out_dir / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        files[name] = path
    return files, len(data)


def run(cmd, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0 and check:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr}")
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--radix", default=str(REPO / "build" / "radix"))
    ap.add_argument("--model", default="demo")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--batch-tokens", type=int, default=16384)
    ap.add_argument("--limit", type=int, default=0, help="items per corpus (0: all 4,300)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dl19", default=str(DL19), help="dl19_bm25_top100.json")
    ap.add_argument("--tokenizer", default="",
                    help="for random: models (default: Qwen3's tokenizer.json from ../shared "
                         "if there, else demo)")
    ap.add_argument("--out", default="", help="also write the rows as JSON here")
    args = ap.parse_args()
    if not pathlib.Path(args.dl19).exists():
        sys.exit(f"missing {args.dl19} (--dl19)")

    tokenizer = args.tokenizer
    if not tokenizer and args.model.startswith("random:"):
        tokenizer = str(QWEN3_TOKENIZER) if QWEN3_TOKENIZER.exists() else "demo"
    common = (["--tokenizer", tokenizer] if tokenizer else []) + ["--model", args.model, "--device", args.device, "--threads", str(args.threads),
              "--batch-tokens", str(args.batch_tokens), "--truncate", "--progress-every", "30"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        files, queries = corpora(args.dl19, args.limit, args.seed, tmp)
        for name, path in files.items():
            command = "rerank" if name.startswith("rerank") else "embed"
            for order in ("prefix", "file"):
                out = tmp / f"{name}-{order}.npy"
                cmd = [args.radix, command, "--input", str(path), "--output", str(out), "--restart",
                       *common] + (["--file-order"] if order == "file" else [])
                s = json.loads(run(cmd).stdout)
                s.update(corpus=name, order_name=order)
                rows.append(s)
        docs = max(1, (args.limit or queries * 100) // queries)
        bench = run([args.radix, "bench", "model", "--model", args.model, "--device", args.device,
                     "--threads", str(args.threads), "--modes", "tree", "--json",
                     "--workload", f"rerank-like:G={min(queries, args.limit or queries)},D={docs}"],
                    check=False)
    print(f"model {args.model} on {args.device}, tokenizer {tokenizer or 'of the model'}, "
          f"batch tokens {args.batch_tokens}")
    print(f"{'corpus':14} {'order':7} {'items':>6} {'tokens':>9} {'tok/s':>10} {'fwd tok/s':>10} "
          f"{'pipe':>5} {'compr':>6} {'batches':>7}")
    for s in rows:
        pipe = s["tokens_per_s"] / s["forward_tokens_per_s"] if s["forward_tokens_per_s"] else 0
        print(f"{s['corpus']:14} {s['order_name']:7} {s['items']:6d} {s['tokens']:9d} "
              f"{s['tokens_per_s']:10.0f} {s['forward_tokens_per_s']:10.0f} {pipe:5.2f} "
              f"{s['compression']:6.2f} {s['batches']:7d}")
    for name in files:
        p, f = [s for s in rows if s["corpus"] == name]
        print(f"{name}: prefix order {p['tokens_per_s'] / max(f['tokens_per_s'], 1e-9):.2f}x the "
              f"file order's tokens/s ({f['rows'] / max(p['rows'], 1):.2f}x fewer rows)")
    print("radix bench model (reference, synthetic rerank-like batch):")
    for line in (bench.stdout if bench.returncode == 0 else bench.stderr).splitlines():
        print("  " + line)
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps({"runs": rows, "bench_model": bench.stdout}))


if __name__ == "__main__":
    main()
