#!/usr/bin/env python3
"""How far one dtype's results are from another's on the same weights (issue 13's accuracy rows).

Runs the offline-corpus CLI (`radix rerank|embed --input`) once per dtype on the same model (a
`random:` shape has the same weights in every dtype: they are drawn in fp32 and then rounded) and
compares the outputs row by row:
  rerank  the dl19 set (43 queries x 100 BM25 passages): Spearman rank correlation of the reranker
          scores per query, against the reference dtype (target for fp8: >= 0.99 per query)
  embed   the dl19 passages: cosine of each embedding with the
          reference dtype's (target for fp8: mean >= 0.999, min >= 0.995)
Prints one JSON line per (task, dtype) and a short table.

  python3 bench/dtype_agreement.py --radix build/radix --model random:qwen3-0.6b --device cuda \
      --dtypes bfloat16,fp8 --tokenizer ../shared/assets/qwen3-embedding-0.6b/tokenizer.json
"""
import argparse
import json
import math
import pathlib
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
DL19 = REPO.parent / "shared" / "assets" / "msmarco" / "dl19_bm25_top100.json"


def ranks(values):
    """Average ranks (ties share the mean of their positions), as Spearman's rho needs."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2.0
        i = j + 1
    return out


def pearson(a, b):
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    if va == 0 or vb == 0:
        return float("nan")
    return cov / math.sqrt(va * vb)


def spearman(a, b):
    return pearson(ranks(a), ranks(b))


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else float("nan")


def run_cli(args, task, dtype, inp, out):
    cmd = [args.radix, task, "--model", args.model, "--device", args.device, "--dtype", dtype,
           "--input", str(inp), "--output", str(out), "--restart"]
    if args.tokenizer:
        cmd += ["--tokenizer", args.tokenizer]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    return summary


def read_scores(path):
    rows = [json.loads(l) for l in pathlib.Path(path).read_text().splitlines() if l.strip()]
    rows.sort(key=lambda r: r["index"])
    return [r["logit"] for r in rows]


def read_embeddings(path):
    rows = [json.loads(l) for l in pathlib.Path(path).read_text().splitlines() if l.strip()]
    rows.sort(key=lambda r: r["index"])
    return [r["embedding"] for r in rows]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--radix", default=str(REPO / "build" / "radix"))
    ap.add_argument("--model", default="random:qwen3-0.6b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtypes", default="bfloat16,fp8",
                    help="comma-separated; the first is the reference")
    ap.add_argument("--tokenizer", default="")
    ap.add_argument("--dl19", default=str(DL19))
    ap.add_argument("--queries", type=int, default=0, help="first N queries (0: all 43)")
    ap.add_argument("--tasks", default="rerank,embed")
    ap.add_argument("--json", default="", help="also append the JSON lines to this file")
    args = ap.parse_args()

    data = json.loads(pathlib.Path(args.dl19).read_text())
    if args.queries:
        data = data[: args.queries]
    dtypes = args.dtypes.split(",")
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        pairs = tmp / "pairs.jsonl"
        pairs.write_text("".join(json.dumps({"query": q["query"], "document": h["content"]}) + "\n"
                                 for q in data for h in q["hits"]))
        # One text per line: jsonl keeps newlines inside a passage intact.
        passages = tmp / "passages.jsonl"
        passages.write_text("".join(json.dumps({"text": h["content"]}) + "\n"
                                    for q in data for h in q["hits"]))
        sizes = [len(q["hits"]) for q in data]
        for task in args.tasks.split(","):
            results = {}
            for dt in dtypes:
                suffix = ".jsonl"
                out = tmp / f"{task}-{dt}{suffix}"
                summary = run_cli(args, task, dt, pairs if task == "rerank" else passages, out)
                results[dt] = read_scores(out) if task == "rerank" else read_embeddings(out)
                print(f"{task} {dt}: {summary['items']} items in {summary['seconds']:.2f} s",
                      file=sys.stderr)
            ref = results[dtypes[0]]
            for dt in dtypes[1:]:
                got = results[dt]
                if task == "rerank":
                    per_query, start = [], 0
                    for n in sizes:
                        per_query.append(spearman(ref[start:start + n], got[start:start + n]))
                        start += n
                    ok = [r for r in per_query if not math.isnan(r)]
                    line = {"task": task, "model": args.model, "reference": dtypes[0], "dtype": dt,
                            "queries": len(sizes), "spearman_mean": sum(ok) / len(ok),
                            "spearman_min": min(ok), "spearman_per_query": per_query}
                else:
                    cos = [cosine(a, b) for a, b in zip(ref, got)]
                    line = {"task": task, "model": args.model, "reference": dtypes[0], "dtype": dt,
                            "rows": len(cos), "cosine_mean": sum(cos) / len(cos),
                            "cosine_min": min(cos)}
                lines.append(line)
                print(json.dumps(line))
    if args.json:
        with open(args.json, "a") as f:
            f.writelines(json.dumps(l) + "\n" for l in lines)
    for l in lines:
        if l["task"] == "rerank":
            print(f"{l['model']:20s} {l['dtype']:8s} vs {l['reference']:8s} rerank  spearman "
                  f"mean {l['spearman_mean']:.4f} min {l['spearman_min']:.4f}")
        else:
            print(f"{l['model']:20s} {l['dtype']:8s} vs {l['reference']:8s} embed   cosine "
                  f"mean {l['cosine_mean']:.5f} min {l['cosine_min']:.5f}")


if __name__ == "__main__":
    main()
