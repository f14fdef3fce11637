#!/usr/bin/env python3
"""How much memory one `radix serve` model copy needs: weights plus the forward's activation arena.

    python3 deploy/memory_estimate.py                         # the table in docs/deploy.md
    python3 deploy/memory_estimate.py --model 8b --max-batch-tokens 32768
    python3 deploy/memory_estimate.py --config /models/Qwen3-Embedding-4B/config.json

The arena (Qwen3Arena in src/model/model_impl.h, sized in qwen3_forward.cc) holds, per compact
row of the largest batch seen: the residual stream (fp32 on both backends), the normed input, the
fused q/k/v projection, the attention output, the layer delta, the fused gate/up projection and
the SwiGLU output (bf16 on CUDA, fp32 on the CPU), and four int32 index arrays. A batch has at
most as many rows as tokens, and at most max(--max-batch-tokens, --max-input-length) tokens (a
lone longer input runs alone). The `scatter` attention mode adds q/k/v and attention copies per
flat token. Weights are every tensor the forward reads: embeddings, layers, final norm and the
head's rows (two for the reranker; the embedding head reads none of the LM head).

Not counted: the CUDA context (about 0.5 GiB per GPU), attention scratch (small tile tables), and
on the host the tokenizer and the page cache that the safetensors files pass through while
loading. Checked against the backend's measured peaks in bench/RESULTS.md (tests/python/
test_deploy_memory.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

GIB = 1 << 30
CUBLASLT_WORKSPACE = 32 << 20  # src/backend/cuda/gemm.h


@dataclasses.dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int = 151669

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim


# docs/benchmarks.md, "Model shapes".
QWEN3 = {
    "0.6b": Shape(1024, 28, 16, 8, 128, 3072),
    "4b": Shape(2560, 36, 32, 8, 128, 9728),
    "8b": Shape(4096, 36, 32, 8, 128, 12288),
}

# Bytes per element: weights and activations as each backend stores them.
DTYPES = {
    "bf16": {"weight": 2, "activation": 2, "residual": 4},  # --device cuda
    "fp32": {"weight": 4, "activation": 4, "residual": 4},  # --device cpu
}


def shape_from_config(path: str) -> Shape:
    with open(path, encoding="utf-8") as f:
        c = json.load(f)
    c = c.get("text_config", c)
    heads = c["num_attention_heads"]
    return Shape(hidden=c["hidden_size"], layers=c["num_hidden_layers"], heads=heads,
                 kv_heads=c.get("num_key_value_heads", heads),
                 head_dim=c.get("head_dim", c["hidden_size"] // heads),
                 intermediate=c["intermediate_size"], vocab=c["vocab_size"])


def weight_params(s: Shape, head_rows: int = 2) -> int:
    """Parameters the forward reads; head_rows: LM-head/score rows (reranker 2, embedding 0)."""
    h = s.hidden
    per_layer = (h * (s.q_dim + 2 * s.kv_dim)  # fused q/k/v
                 + s.q_dim * h  # o
                 + 3 * h * s.intermediate  # gate, up, down
                 + 2 * h + 2 * s.head_dim)  # two RMSNorms, q-norm and k-norm
    return s.vocab * h + s.layers * per_layer + h + head_rows * h


def arena_bytes_per_row(s: Shape, dtype: str) -> int:
    b = DTYPES[dtype]
    h, act = s.hidden, b["activation"]
    per_row = (b["residual"] * h  # residual
               + act * h  # normed
               + act * (s.q_dim + 2 * s.kv_dim)  # qkv
               + act * s.q_dim  # attn
               + act * h  # delta
               + act * 2 * s.intermediate  # gate_up
               + act * s.intermediate)  # act
    return per_row + 4 * 4  # ids, positions, subtree_end, gather (int32)


def scatter_bytes_per_token(s: Shape, dtype: str) -> int:
    act = DTYPES[dtype]["activation"]
    return act * (s.q_dim + 2 * s.kv_dim) + act * s.q_dim + 4  # qkv_flat, attn_flat, scatter


def estimate(s: Shape, dtype: str, batch_tokens: int, scatter: bool = False,
             head_rows: int = 2) -> dict:
    weights = weight_params(s, head_rows) * DTYPES[dtype]["weight"]
    arena = batch_tokens * arena_bytes_per_row(s, dtype)
    if scatter:
        arena += batch_tokens * scatter_bytes_per_token(s, dtype)
    workspace = CUBLASLT_WORKSPACE if dtype == "bf16" else 0
    return {"weights": weights, "arena": arena, "workspace": workspace,
            "total": weights + arena + workspace}


def table(batch_tokens: list[int]) -> str:
    """The Markdown table of docs/deploy.md."""
    lines = ["| model | dtype (device) | weights GiB | activations GiB per 1,024 batch tokens | "
             + " | ".join(f"total GiB at {t:,}" for t in batch_tokens) + " |",
             "|---|---|---|---|" + "---|" * len(batch_tokens)]
    for name, s in QWEN3.items():
        for dtype, device in (("bf16", "cuda"), ("fp32", "cpu")):
            e = [estimate(s, dtype, t) for t in batch_tokens]
            per_k = 1024 * arena_bytes_per_row(s, dtype) / GIB
            lines.append(f"| {name} | {dtype} ({device}) | {e[0]['weights'] / GIB:.1f} | "
                         f"{per_k:.3f} | " + " | ".join(f"{x['total'] / GIB:.1f}" for x in e)
                         + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=sorted(QWEN3), help="a Qwen3 shape")
    p.add_argument("--config", help="a model folder's config.json instead of --model")
    p.add_argument("--dtype", choices=sorted(DTYPES), help="bf16 (cuda) or fp32 (cpu); both if unset")
    p.add_argument("--max-batch-tokens", type=int, default=16384,
                   help="radix serve's --max-batch-tokens (or --max-input-length if larger)")
    p.add_argument("--scatter", action="store_true", help="--attention-mode scatter")
    p.add_argument("--head-rows", type=int, default=2,
                   help="LM-head or score rows the head reads: reranker 2, embedding 0, classifier labels")
    args = p.parse_args(argv)
    if args.model is None and args.config is None:
        print(table([4096, 16384, 65536]))
        return 0
    shape = shape_from_config(args.config) if args.config else QWEN3[args.model]
    for dtype in [args.dtype] if args.dtype else ["bf16", "fp32"]:
        e = estimate(shape, dtype, args.max_batch_tokens, args.scatter, args.head_rows)
        print(f"{dtype}: weights {e['weights'] / GIB:.2f} GiB + activations "
              f"{e['arena'] / GIB:.2f} GiB at {args.max_batch_tokens} batch tokens"
              + (f" + cuBLASLt workspace {e['workspace'] / GIB:.2f} GiB" if e["workspace"] else "")
              + f" = {e['total'] / GIB:.2f} GiB"
              + (" (+ ~0.5 GiB CUDA context)" if dtype == "bf16" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
