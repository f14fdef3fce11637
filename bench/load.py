#!/usr/bin/env python3
"""Load benchmark for `radix serve`: throughput and p50/p99 latency at several concurrencies.

Workloads
  embed    /embed, one text of 30-60 words per request (seeded), any embedding model
  rerank   /rerank, a query and 10 documents per request (seeded), a reranker model
  dl19     /rerank, the 43 TREC DL19 queries with their 100 BM25 passages each, from
           ../shared/assets/msmarco/dl19_bm25_top100.json (one request per query), a reranker;
           --dl19-queries N takes the first N only (a slow device)
  stream:P=2048,S=64
           /embed, one text per request: a shared prefix of P tokens and S own tokens (seeded
           words), the few-shot-prompt shape the prefix cache (docs/prefix_cache.md) is for. The
           prefix ends with a newline and every own part starts with a letter, so the prefix is
           its own pre-token run and tokenizes the same in every request; its token count is
           fitted to P through the server's /tokenize and checked against the first request. The
           warm-up requests share the prefix, so the timed requests find it cached (cache on).
           Concurrency defaults to 1 here (one request at a time).
Each (workload, concurrency) prints one JSON line: requests, errors, seconds, requests/s, inputs/s,
latency p50/p90/p99/max (ms), and what the server's /metrics saw meanwhile (batches, tokens, unique
tokens, compression, the prefix cache's hit rate = hit tokens / looked-up tokens, result hits, the
mean batch (fold + forward) time and its phases, tokenization and queue-wait times, and batches per
worker when the server runs several).

The server is either running already (--url) or started here (--radix-bin and --serve-args, on a
free loopback port, stopped at the end), e.g.

  python bench/load.py --radix-bin build/radix --serve-args "--model demo" \\
      --workload embed --concurrency 1,16,64 --requests 400

--hf scores the dl19 pairs with Hugging Face transformers instead (Qwen3ForCausalLM with random
weights of --hf-config's shape, bf16, the same template and token ids as radix), timing it the same
way, one query (100 pairs) per forward, for comparison on the same GPU.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import random
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ../shared/assets beside the checkout, or RADIX_ASSETS (e.g. a copy carried to the GPU machine).
ASSETS = os.environ.get("RADIX_ASSETS", os.path.join(os.path.dirname(REPO), "shared", "assets"))
DL19 = os.path.join(ASSETS, "msmarco", "dl19_bm25_top100.json")
QWEN_TOKENIZER = os.path.join(ASSETS, "qwen3-embedding-0.6b")

WORDS = ("the of and to in is was for on that with as by at from his her an which are this be "
         "cat dog house river market system model token batch server query passage answer city "
         "music history science water energy light number language engine prefix tree").split()

RERANK_PREFIX = ("<|im_start|>system\nJudge whether the Document meets the requirements based on "
                 "the Query and the Instruct provided. Note that the answer can only be \"yes\" or "
                 "\"no\".<|im_end|>\n<|im_start|>user\n")
RERANK_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
RERANK_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


def sentence(rng, lo, hi):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def parse_workload(text):
    """'embed' -> ('embed', {}); 'stream:P=2048,S=64' -> ('stream', {'P': 2048, 'S': 64})."""
    name, _, rest = text.partition(":")
    params = {}
    for kv in filter(None, rest.split(",")):
        key, eq, value = kv.partition("=")
        if not eq or not value.isdigit():
            raise SystemExit(f"workload {text}: expected key=integer, got {kv!r}")
        params[key] = int(value)
    if name not in ("embed", "rerank", "dl19", "stream"):
        raise SystemExit(f"unknown workload {name} (embed, rerank, dl19, stream:P=..,S=..)")
    if name == "stream":
        unknown = set(params) - {"P", "S"}
        if unknown or params.get("P", 0) < 1 or params.get("S", 0) < 1:
            raise SystemExit(f"workload {text}: expected stream:P=<prefix tokens>,S=<own tokens>")
    elif params:
        raise SystemExit(f"workload {name} takes no parameters")
    return name, params


def count_tokens(url, headers, text):
    body = {"inputs": text, "add_special_tokens": False}
    req = urllib.request.Request(url + "/tokenize", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=60) as r:
        return [t["id"] for t in json.loads(r.read())[0]]


class StreamTexts:
    """The stream workload's texts: one prefix of P tokens (fitted through /tokenize), own parts
    of about S tokens. Words of WORDS are one token each with their leading space in byte-level
    BPE vocabularies; a byte-level tokenizer (the demo model's) needs fewer words, which the fit
    finds."""

    def __init__(self, url, headers, prefix_tokens, own_tokens, seed):
        self.own_tokens = own_tokens
        rng = random.Random(seed)
        words = [rng.choice(WORDS) for _ in range(4 * prefix_tokens + 8)]
        head = "Classify the text after the examples."
        n = prefix_tokens  # words; refit from the token count a few times
        for _ in range(8):
            text = head + " " + " ".join(words[:n]) + ".\n"
            ids = count_tokens(url, headers, text)
            if len(ids) == prefix_tokens or n <= 1:
                break
            step = (prefix_tokens - len(ids)) * n // max(len(ids), 1)
            n = max(1, min(len(words), n + (step if step else (1 if len(ids) < prefix_tokens else -1))))
        self.prefix, self.prefix_ids = text, ids
        # Words per own token, from the same fit.
        self.words_per_token = max(1, n) / max(1, len(ids))

    def make(self, n, seed):
        rng = random.Random(seed)
        k = max(1, round(self.own_tokens * self.words_per_token))
        return [("/embed", {"inputs": self.prefix + "Text: " + sentence(rng, k, k)}, 1)
                for _ in range(n)]

    def check(self, url, headers, text):
        ids = count_tokens(url, headers, text)
        if ids[: len(self.prefix_ids)] != self.prefix_ids:
            raise SystemExit("stream: the prefix does not tokenize the same inside a request")
        return len(ids)


def make_requests(workload, n, seed, dl19_queries=0):
    """[(path, body, inputs)] for the workload; dl19 ignores n (43 requests, or dl19_queries)."""
    rng = random.Random(seed)
    if workload == "embed":
        return [("/embed", {"inputs": sentence(rng, 30, 60)}, 1) for _ in range(n)]
    if workload == "rerank":
        out = []
        for _ in range(n):
            docs = [sentence(rng, 20, 60) for _ in range(10)]
            out.append(("/rerank", {"query": sentence(rng, 4, 10), "texts": docs}, len(docs)))
        return out
    if workload == "dl19":
        data = load_dl19()
        if dl19_queries:
            data = data[:dl19_queries]
        return [("/rerank", {"query": q, "texts": docs}, len(docs)) for q, docs in data]
    raise SystemExit(f"unknown workload {workload}")


def load_dl19():
    if not os.path.exists(DL19):
        raise SystemExit(f"dl19 needs {DL19} (../shared/assets is missing; or set RADIX_ASSETS)")
    with open(DL19) as f:
        data = json.load(f)
    return [(q["query"], [h["content"] for h in q["hits"]]) for q in data]


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


_local = threading.local()


def post(url, path, body, headers, timeout=600):
    """POST on this thread's keep-alive connection (reconnecting once if the server closed it)."""
    host = urllib.parse.urlsplit(url).netloc
    data = json.dumps(body).encode()
    for attempt in (0, 1):
        conn = getattr(_local, "conn", None)
        if conn is None:
            conn = _local.conn = http.client.HTTPConnection(host, timeout=timeout)
        try:
            conn.request("POST", path, body=data,
                         headers={"Content-Type": "application/json", **headers})
            r = conn.getresponse()
            r.read()
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                _local.conn = None
            return r.status
        except (http.client.HTTPException, ConnectionError, OSError):
            conn.close()
            _local.conn = None
            if attempt:
                raise


def scrape(url, headers):
    """Samples of /metrics as {name: value}, labelled ones as {'name{labels}': value}."""
    req = urllib.request.Request(url + "/metrics", headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def worker_deltas(before, after, metric):
    """{worker: after - before} of a per-worker metric (label worker="...")."""
    out = {}
    prefix = metric + '{worker="'
    for key, value in after.items():
        if key.startswith(prefix):
            out[key[len(prefix):].split('"', 1)[0]] = int(value - before.get(key, 0))
    return out


def _run_threads(url, headers, requests_, concurrency):
    """Sends every request with `concurrency` client threads; returns latencies (s), statuses."""
    latencies, statuses = [], []
    lock = threading.Lock()
    next_index = iter(range(len(requests_)))

    def client():
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            path, body, _ = requests_[i]
            t0 = time.perf_counter()
            status = post(url, path, body, headers)
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                statuses.append(status)

    with ThreadPoolExecutor(concurrency) as pool:
        for f in [pool.submit(client) for _ in range(concurrency)]:
            f.result()
    return latencies, statuses


_FORKED = {}  # what forked client processes read: (url, headers, requests) set before the fork


def _client_process(part, processes, threads):
    url, headers, requests_ = _FORKED["args"]
    return _run_threads(url, headers, requests_[part::processes], threads)


def client_processes_for(concurrency, asked):
    """Client processes for a level: `asked`, or (0) one per 8 clients up to a quarter of the
    cores. One Python process (one GIL) tops out near 1,000-2,000 small requests/s, which two GPUs
    serving a 0.6B reranker exceed; its queueing then shrinks the server's batches."""
    if asked > 0:
        return max(1, min(asked, concurrency))
    return max(1, min(concurrency // 8, (os.cpu_count() or 4) // 4, 8))


def run_level(url, headers, requests_, concurrency, processes=1):
    """Sends every request with `concurrency` clients spread over `processes` forked processes
    (each request once); returns latencies (s), statuses and the wall time."""
    t0 = time.perf_counter()
    if processes <= 1:
        latencies, statuses = _run_threads(url, headers, requests_, concurrency)
        return latencies, statuses, time.perf_counter() - t0
    _FORKED["args"] = (url, headers, requests_)
    threads = [concurrency // processes + (1 if p < concurrency % processes else 0)
               for p in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        t0 = time.perf_counter()
        parts = pool.starmap(_client_process, [(p, processes, threads[p]) for p in range(processes)])
        wall = time.perf_counter() - t0
    latencies = [l for part in parts for l in part[0]]
    statuses = [s for part in parts for s in part[1]]
    return latencies, statuses, wall


def client_cpu_seconds():
    """User + system CPU seconds of this process and its finished children (the client side)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def cpu_seconds(pid):
    """User + system CPU seconds of a process (Linux /proc), None elsewhere: on a shared machine
    the server's CPU time per request is steadier than wall time."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def bench_server(args, url, headers, pid=None):
    workload, params = parse_workload(args.workload)
    stream = None
    if workload == "stream":
        stream = StreamTexts(url, headers, params["P"], params["S"], args.seed)
    for level in [int(c) for c in args.concurrency.split(",")]:
        if stream:
            reqs = stream.make(max(args.requests, level), args.seed + level)
            warm = stream.make(min(8, len(reqs)), args.seed + 9999)
            tokens = stream.check(url, headers, reqs[0][1]["inputs"])
        else:
            reqs = make_requests(workload, max(args.requests, level), args.seed + level,
                                 args.dl19_queries)
            # dl19's warm-up is a synthetic rerank request (the same template): a dl19 query
            # would come back in the timed run as an exact repeat, answered by the result cache.
            warm = make_requests("rerank" if workload == "dl19" else workload,
                                 min(8, len(reqs)), args.seed + 9999)
        run_level(url, headers, warm[: max(1, min(len(warm), level))], min(level, len(warm)))
        before = scrape(url, headers)
        cpu0 = cpu_seconds(pid) if pid else None
        client0 = client_cpu_seconds()
        processes = client_processes_for(level, args.client_processes)
        latencies, statuses, wall = run_level(url, headers, reqs, level, processes)
        client_cpu = client_cpu_seconds() - client0
        cpu1 = cpu_seconds(pid) if pid else None
        after = scrape(url, headers)
        ok = sorted(l for l, s in zip(latencies, statuses) if s == 200)
        delta = {k: after.get(k, 0) - before.get(k, 0)
                 for k in ("radix_batches_total", "radix_tokens_total", "radix_unique_tokens_total",
                           "radix_prefix_cache_lookup_tokens", "radix_prefix_cache_hit_tokens",
                           "radix_prefix_cache_result_hits")}
        inputs = sum(r[2] for r, s in zip(reqs, statuses) if s == 200)
        row = {
            "workload": args.workload, "concurrency": level, "requests": len(reqs),
            "ok": len(ok), "errors": len(reqs) - len(ok),
            "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
            "seconds": round(wall, 4), "requests_per_s": round(len(ok) / wall, 2),
            "inputs_per_s": round(inputs / wall, 2),
            "p50_ms": round(percentile(ok, 50) * 1e3, 2), "p90_ms": round(percentile(ok, 90) * 1e3, 2),
            "p99_ms": round(percentile(ok, 99) * 1e3, 2), "max_ms": round(ok[-1] * 1e3, 2) if ok else None,
            "batches": int(delta["radix_batches_total"]), "tokens": int(delta["radix_tokens_total"]),
            "unique_tokens": int(delta["radix_unique_tokens_total"]),
            "compression": round(delta["radix_unique_tokens_total"] / delta["radix_tokens_total"], 4)
            if delta["radix_tokens_total"] else None,
            "tokens_per_s": round(delta["radix_tokens_total"] / wall, 1),
            # The prefix cache (0 lookups: off, or the model cannot use it).
            "cache_hit_rate": round(delta["radix_prefix_cache_hit_tokens"]
                                    / delta["radix_prefix_cache_lookup_tokens"], 4)
            if delta["radix_prefix_cache_lookup_tokens"] else 0.0,
            "cache_hit_tokens": int(delta["radix_prefix_cache_hit_tokens"]),
            "cache_result_hits": int(delta["radix_prefix_cache_result_hits"]),
            "cache_mib": round(after.get("radix_prefix_cache_bytes", 0) / 2**20, 1),
        }
        # Where a request's time went, as the server saw it: mean seconds per batch (fold and
        # forward), per tokenization and per batch's longest queue wait (histogram sums / counts).
        for key, metric in (("batch_ms_mean", "radix_batch_duration_seconds"),
                            ("tokenize_ms_mean", "radix_tokenization_duration_seconds"),
                            ("queue_ms_mean", "radix_queue_duration_seconds")):
            count = after.get(metric + "_count", 0) - before.get(metric + "_count", 0)
            total = after.get(metric + "_sum", 0) - before.get(metric + "_sum", 0)
            if count > 0:
                row[key] = round(total / count * 1e3, 3)
        # The batch time in phases (docs/server.md, "Metrics"): plan, prepare (the prefix cache
        # before the forward), enqueue (the forward queueing its device work), wait (for the
        # device), finish; mean milliseconds per batch.
        phases = {}
        for phase in ("plan", "prepare", "enqueue", "wait", "finish"):
            label = '{phase="' + phase + '"}'
            count_key = "radix_batch_phase_duration_seconds_count" + label
            sum_key = "radix_batch_phase_duration_seconds_sum" + label
            count = after.get(count_key, 0) - before.get(count_key, 0)
            total = after.get(sum_key, 0) - before.get(sum_key, 0)
            if count > 0:
                phases[phase] = round(total / count * 1e3, 3)
        if phases:
            row["batch_phase_ms_mean"] = phases
        # Batches whose forward replayed a recording (CUDA graphs; docs/cuda.md).
        replayed = worker_deltas(before, after, "radix_worker_replayed_forwards_total")
        if replayed:
            row["replayed_forwards"] = sum(replayed.values())
        workers = worker_deltas(before, after, "radix_worker_batches_total")
        if len(workers) > 1:
            row["worker_batches"] = workers
            row["worker_hit_tokens"] = worker_deltas(before, after,
                                                     "radix_worker_prefix_cache_hit_tokens")
        # The load generator's own CPU: near 1.0 core a process means it, not the server, set
        # the pace.
        row["client_processes"] = processes
        row["client_cores_busy"] = round(client_cpu / wall, 2)
        if cpu0 is not None and cpu1 is not None:
            row["server_cpu_s_per_request"] = round((cpu1 - cpu0) / max(1, len(ok)), 4)
        if stream:
            row["prefix_tokens"] = len(stream.prefix_ids)
            row["request_tokens"] = tokens
        if args.label:
            row["label"] = args.label
        if args.workload_label:
            row["workload"] = args.workload_label
        print(json.dumps(row), flush=True)


def start_server(args):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [args.radix_bin, "serve", "--host", "127.0.0.1", "--port", str(port),
           *shlex.split(args.serve_args)]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + args.start_timeout
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"radix serve exited ({proc.returncode}):\n{log.read().decode()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("radix serve did not become healthy")
        time.sleep(0.1)
    log.seek(0)
    sys.stderr.write(log.read().decode())
    return proc, url


def bench_hf(args):
    """dl19 through Hugging Face transformers: same pairs, same token ids, one query per forward."""
    import torch
    import transformers
    from tokenizers import Tokenizer

    device = args.hf_device
    tok_path = os.path.join(args.hf_tokenizer, "tokenizer.json")
    tok = Tokenizer.from_file(tok_path)
    config = transformers.AutoConfig.from_pretrained(args.hf_config)
    # Random weights of the real shape (transformers' own init, std 0.02 as radix's); timings do not
    # depend on the values. `dtype` is transformers 5's name for `torch_dtype`.
    torch.manual_seed(0)
    try:
        model = transformers.AutoModelForCausalLM.from_config(
            config, attn_implementation=args.hf_attention, dtype=torch.bfloat16)
    except TypeError:
        model = transformers.AutoModelForCausalLM.from_config(
            config, attn_implementation=args.hf_attention, torch_dtype=torch.bfloat16)
    model = model.to(device=device, dtype=torch.bfloat16).eval()
    yes, no = 9693, 2152
    prefix = tok.encode(RERANK_PREFIX, add_special_tokens=False).ids
    suffix = tok.encode(RERANK_SUFFIX, add_special_tokens=False).ids
    pad = tok.token_to_id("<|endoftext|>")
    queries = load_dl19()

    def encode(query, docs):
        t0 = time.perf_counter()
        bodies = [f"<Instruct>: {RERANK_INSTRUCTION}\n<Query>: {query}\n<Document>: {d}" for d in docs]
        ids = [prefix + e.ids + suffix for e in tok.encode_batch(bodies, add_special_tokens=False)]
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, x in enumerate(ids):  # left padding: the last position is every pair's last token
            input_ids[i, width - len(x):] = torch.tensor(x)
            mask[i, width - len(x):] = 1
        return input_ids.to(device), mask.to(device), sum(len(x) for x in ids), time.perf_counter() - t0

    kwargs = {}
    try:
        import inspect
        if "logits_to_keep" in inspect.signature(model.forward).parameters:
            kwargs["logits_to_keep"] = 1  # only the last position's logits, as radix does
    except (TypeError, ValueError):
        pass

    @torch.inference_mode()
    def score(query, docs):
        input_ids, mask, ntok, tok_s = encode(query, docs)
        logits = model(input_ids=input_ids, attention_mask=mask, **kwargs).logits[:, -1, :]
        pair = torch.stack([logits[:, no], logits[:, yes]], dim=1).float()
        scores = torch.softmax(pair, dim=1)[:, 1].tolist()
        return scores, ntok

    for q, docs in queries[:3]:  # warm-up
        score(q, docs)
    torch.cuda.synchronize() if device.startswith("cuda") else None
    latencies, tokens = [], 0
    t0 = time.perf_counter()
    for q, docs in queries:
        t = time.perf_counter()
        _, ntok = score(q, docs)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        latencies.append(time.perf_counter() - t)
        tokens += ntok
    wall = time.perf_counter() - t0
    lat = sorted(latencies)
    print(json.dumps({
        "workload": "dl19", "engine": "hf-transformers", "attention": args.hf_attention,
        "transformers": transformers.__version__, "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else device,
        "requests": len(queries), "seconds": round(wall, 4),
        "requests_per_s": round(len(queries) / wall, 3),
        "inputs_per_s": round(sum(len(d) for _, d in queries) / wall, 2),
        "p50_ms": round(percentile(lat, 50) * 1e3, 2), "p99_ms": round(percentile(lat, 99) * 1e3, 2),
        "tokens": tokens, "tokens_per_s": round(tokens / wall, 1),
        **({"label": args.label} if args.label else {}),
    }), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server, e.g. http://127.0.0.1:3000")
    ap.add_argument("--radix-bin", help="start this radix binary instead of using --url")
    ap.add_argument("--serve-args", default="--model demo", help="arguments of `radix serve`")
    ap.add_argument("--start-timeout", type=float, default=600)
    ap.add_argument("--api-key", default="")
    ap.add_argument("--workload", default="embed",
                    help="embed, rerank, dl19 or stream:P=<prefix tokens>,S=<own tokens>")
    ap.add_argument("--workload-label", default="", help="the workload's name in the JSON lines")
    ap.add_argument("--concurrency", help="comma list (default 1,16,64; stream: 1)")
    ap.add_argument("--client-processes", type=int, default=0,
                    help="client processes (default 0: one per 8 concurrent clients, at most a "
                         "quarter of the cores); the clients are split between them")
    ap.add_argument("--dl19-queries", type=int, default=0, help="dl19: the first N queries only")
    ap.add_argument("--requests", type=int, default=400, help="requests per level (dl19: 43)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--label", default="", help="copied into every JSON line")
    ap.add_argument("--hf", action="store_true", help="score dl19 with HF transformers instead")
    ap.add_argument("--hf-config", default=QWEN_TOKENIZER, help="folder with the config.json shape")
    ap.add_argument("--hf-tokenizer", default=QWEN_TOKENIZER)
    ap.add_argument("--hf-device", default="cuda")
    ap.add_argument("--hf-attention", default="eager", choices=["eager", "sdpa"])
    args = ap.parse_args()
    if args.concurrency is None:
        args.concurrency = "1" if args.workload.startswith("stream") else "1,16,64"

    if args.hf:
        bench_hf(args)
        return
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    proc = None
    if args.radix_bin:
        proc, url = start_server(args)
    elif args.url:
        url = args.url.rstrip("/")
    else:
        raise SystemExit("give --url or --radix-bin")
    try:
        bench_server(args, url, headers, proc.pid if proc else None)
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
