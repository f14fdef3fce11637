#!/usr/bin/env python3
"""PyTorch on the CPU doing the same Qwen3 forward as `radix bench model`, side by side.

For each synthetic workload (syn:B=..,P=..,S=..: B sequences sharing a P-token prefix, each with
its own S-token suffix) this script times, on the same machine and thread count:
  - radix (`radix bench model --json`, modes off/scatter/tree), run as a subprocess, and
  - PyTorch eager in fp32: `off` (every op on all tokens; causal attention per sequence, as
    radix's off mode) and `scatter` (RadixMLP in PyTorch: position-wise ops on the unique trie
    rows, q/k/v gathered to tokens for attention and back),
then prints one JSON row per (implementation, workload, mode) with the fields of docs/benchmarks.md.

Weights are random normal(0, 0.02) (norms 1) of the same shape; timings do not depend on values.
Use Debian's python3-torch, with passive OpenMP waiting for both sides (Debian's torch runs its
OpenMP pool beside OpenBLAS's pthreads, and spinning OpenMP threads starve them: 2-thread torch runs
were 4-7x slower without it):

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/peer_torch_cpu.py --radix build/cpu/radix
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

import torch

SHAPE = "hidden=512,layers=6,heads=8,kv_heads=4,head_dim=128,intermediate=1536"


def parse_shape(spec):
    cfg = {"vocab": 151669, "head_dim": 128}
    for kv in spec.split(","):
        k, v = kv.split("=")
        cfg[k] = int(v)
    cfg.setdefault("kv_heads", cfg["heads"])
    return cfg


def parse_syn(spec):
    m = re.fullmatch(r"syn:B=(\d+),P=(\d+),S=(\d+)", spec)
    if not m:
        raise SystemExit(f"peer_torch_cpu.py handles syn:B=..,P=..,S=.. workloads, not {spec}")
    return tuple(int(g) for g in m.groups())


def make_syn(b, p, s, gen):
    prefix = torch.randint(100, 150000, (p,), generator=gen)
    return [torch.cat([prefix, torch.randint(100, 150000, (s,), generator=gen)]) for _ in range(b)]


def fold(seqs):
    """The trie of the batch: per flat token its unique row, per unique row its first token."""
    nodes, scatter, gather, depth = {}, [], [], []
    flat = 0
    for seq in seqs:
        parent = -1
        for pos, tok in enumerate(seq.tolist()):
            key = (parent, tok)
            row = nodes.get(key)
            if row is None:
                row = nodes[key] = len(gather)
                gather.append(flat)
                depth.append(pos + 1)
            scatter.append(row)
            parent = row
            flat += 1
    return torch.tensor(scatter), torch.tensor(gather), depth


def flops(cfg, seqs, mode, unique_rows, depths):
    h, d, i = cfg["hidden"], cfg["head_dim"], cfg["intermediate"]
    hq, hkv = cfg["heads"], cfg["kv_heads"]
    params = h * (hq + 2 * hkv) * d + hq * d * h + 3 * h * i
    tokens = sum(len(s) for s in seqs)
    rows = tokens if mode == "off" else unique_rows
    pairs = sum(depths) if mode == "tree" else sum(len(s) * (len(s) + 1) // 2 for s in seqs)
    return 2.0 * params * cfg["layers"] * rows + 4.0 * d * pairs * hq * cfg["layers"]


class TorchQwen3:
    def __init__(self, cfg, seed=0):
        g = torch.Generator().manual_seed(seed)
        h, d, i = cfg["hidden"], cfg["head_dim"], cfg["intermediate"]
        self.cfg, self.hq, self.hkv, self.d = cfg, cfg["heads"], cfg["kv_heads"], d
        w = lambda *shape: torch.randn(*shape, generator=g) * 0.02
        self.embed = w(cfg["vocab"], h)
        self.layers = []
        for _ in range(cfg["layers"]):
            self.layers.append({
                "in_norm": torch.ones(h), "post_norm": torch.ones(h),
                "qkv": w((self.hq + 2 * self.hkv) * d, h), "o": w(h, self.hq * d),
                "q_norm": torch.ones(d), "k_norm": torch.ones(d),
                "gate_up": w(2 * i, h), "down": w(h, i)})
        self.norm = torch.ones(h)
        self.inv_freq = 1.0 / (1e6 ** (torch.arange(0, d, 2).float() / d))

    @staticmethod
    def rms(x, w, eps=1e-6):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rope(self, x, cos, sin):  # x: [n, heads, d]
        half = self.d // 2
        rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rot * sin

    def attention(self, q, k, v, lens):  # q: [T, hq, d], k/v: [T, hkv, d]; causal per sequence
        out, start, rep = [], 0, self.hq // self.hkv
        for n in lens:
            qs = q[start:start + n].transpose(0, 1)
            ks = k[start:start + n].transpose(0, 1).repeat_interleave(rep, 0)
            vs = v[start:start + n].transpose(0, 1).repeat_interleave(rep, 0)
            scores = (qs @ ks.transpose(1, 2)) * self.d**-0.5
            scores.masked_fill_(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
            out.append((scores.softmax(-1) @ vs).transpose(0, 1).reshape(n, -1))
            start += n
        return torch.cat(out)

    def forward(self, ids, positions, lens, last_rows, scatter=None, gather=None):
        """ids/positions: the rows the position-wise ops run on (tokens, or trie rows when
        scatter/gather are given). Returns the final-normed hidden states of `last_rows`."""
        hq, hkv, d = self.hq, self.hkv, self.d
        x = self.embed[ids]
        freqs = positions.float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), -1)
        cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
        n = x.shape[0]
        for L in self.layers:
            h = self.rms(x, L["in_norm"])
            qkv = h @ L["qkv"].T
            q = self.rms(qkv[:, :hq * d].view(n, hq, d), L["q_norm"])
            k = self.rms(qkv[:, hq * d:(hq + hkv) * d].view(n, hkv, d), L["k_norm"])
            v = qkv[:, (hq + hkv) * d:].view(n, hkv, d)
            q, k = self.rope(q, cos, sin), self.rope(k, cos, sin)
            if scatter is not None:
                attn = self.attention(q[scatter], k[scatter], v[scatter], lens)[gather]
            else:
                attn = self.attention(q, k, v, lens)
            x = x + attn @ L["o"].T
            h = self.rms(x, L["post_norm"])
            gu = h @ L["gate_up"].T
            i = gu.shape[1] // 2
            x = x + (torch.nn.functional.silu(gu[:, :i]) * gu[:, i:]) @ L["down"].T
        return self.rms(x[last_rows], self.norm)


def time_it(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--radix", default="build/cpu/radix", help="radix binary ('' to skip)")
    ap.add_argument("--shape", default=SHAPE)
    ap.add_argument("--workload", action="append",
                    help="syn workloads (default: B=8 with P in {64, 256}, S in {16, 64})")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repetitions", type=int, default=7)
    args = ap.parse_args()
    workloads = args.workload or [f"syn:B=8,P={p},S={s}" for p in (64, 256) for s in (16, 64)]
    torch.set_num_threads(args.threads)
    cfg = parse_shape(args.shape)
    model_spec = f"random:{args.shape}"
    print(json.dumps({"machine": os.uname().nodename, "cpus": os.cpu_count(),
                      "torch": torch.__version__, "threads": args.threads, "model": model_spec,
                      "loadavg_at_start": os.getloadavg()}), flush=True)

    def run_radix(spec):
        cmd = [args.radix, "bench", "model", "--device", "cpu", "--model", model_spec,
               "--threads", str(args.threads), "--modes", "off,scatter,tree", "--json",
               "--warmup", str(args.warmup), "--repetitions", str(args.repetitions),
               "--workload", spec]
        print("# " + " ".join(cmd), flush=True)
        radix = subprocess.run(cmd, capture_output=True, text=True)
        if radix.returncode != 0:
            raise SystemExit(f"radix failed: {radix.stderr}")
        for line in radix.stdout.splitlines():
            row = json.loads(line)
            row["impl"] = "radix"
            print(json.dumps(row), flush=True)

    model = TorchQwen3(cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        for spec in workloads:
            # Interleaved per workload, so both see the same machine load.
            if args.radix:
                run_radix(spec)
            seqs = make_syn(*parse_syn(spec), gen)
            lens = [len(s) for s in seqs]
            ids = torch.cat(seqs)
            positions = torch.cat([torch.arange(n) for n in lens])
            ends = torch.tensor(lens).cumsum(0) - 1
            scatter, gather, depths = fold(seqs)
            unique_ids, unique_pos = ids[gather], positions[gather]
            runs = {
                "off": lambda: model.forward(ids, positions, lens, ends),
                "scatter": lambda: model.forward(unique_ids, unique_pos, lens, scatter[ends],
                                                 scatter, gather),
            }
            base = None
            for mode, fn in runs.items():
                ms = time_it(fn, args.warmup, args.repetitions)
                med = statistics.median(ms)
                base = base or med
                f = flops(cfg, seqs, mode, len(gather), depths)
                print(json.dumps({
                    "impl": "torch-cpu", "model": model_spec, "device": "cpu",
                    "threads": args.threads, "workload": spec, "mode": mode,
                    "tokens": len(ids), "unique_tokens": len(gather),
                    "rows": len(ids) if mode == "off" else len(gather),
                    "median_ms": med, "min_ms": min(ms), "max_ms": max(ms),
                    "repetitions": args.repetitions, "tokens_per_s": len(ids) / (med / 1e3),
                    "gflop": f / 1e9, "tflops_effective": f / (med / 1e3) / 1e12,
                    "speedup_vs_off": base / med}), flush=True)
            # Sanity: both PyTorch paths compute the same embeddings.
            a, b = runs["off"](), runs["scatter"]()
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-4), "torch off/scatter disagree"
    print(json.dumps({"loadavg_at_end": os.getloadavg()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
