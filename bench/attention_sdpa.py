"""PyTorch's flash attention on the batches of bench/attention_bench.cu, as a hardware reference.

    python3 bench/attention_sdpa.py SHAPES.jsonl [--json OUT.jsonl]

SHAPES.jsonl comes from `attention_bench --shapes`. For each workload and head count it times
(CUDA events, median of 30 after 5 warm-ups):
  - varlen: torch.ops.aten._flash_attention_forward on the ragged batch (cu_seqlens), causal;
  - padded: scaled_dot_product_attention(is_causal=True) on a [B, H, max_len, 128] batch padded to
    the longest sequence, flash backend only.
TFLOP/s counts 4 * 128 FLOP per causal (query, key) pair per query head: the real pairs for
varlen, the padded pairs (what the kernel computes) for padded.
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

D = 128
MODELS = [("qwen3-0.6b", 16, 8), ("qwen3-8b", 32, 8)]


def median_ms(fn, warmup=5, reps=30):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shapes")
    ap.add_argument("--json")
    args = ap.parse_args()
    out = open(args.json, "w") if args.json else None
    dev = torch.cuda.get_device_name()
    print(f"device: {dev}, torch {torch.__version__}")
    print(f"{'workload':24} {'model':11} {'kernel':8} {'ms':>9} {'TFLOP/s':>9}")
    gen = torch.Generator(device="cuda").manual_seed(0)
    for line in open(args.shapes):
        w = json.loads(line)
        lengths = w["lengths"]
        total, max_len, batch = sum(lengths), max(lengths), len(lengths)
        cu = torch.tensor([0] + lengths, device="cuda", dtype=torch.int32).cumsum(0, dtype=torch.int32)
        for model, hq, hkv in MODELS:
            rows = []
            q = torch.rand(total, hq, D, device="cuda", dtype=torch.bfloat16, generator=gen) * 4 - 2
            k = torch.rand(total, hkv, D, device="cuda", dtype=torch.bfloat16, generator=gen) * 4 - 2
            v = torch.rand(total, hkv, D, device="cuda", dtype=torch.bfloat16, generator=gen) * 4 - 2
            try:
                fn = lambda: torch.ops.aten._flash_attention_forward(
                    q, k, v, cu, cu, max_len, max_len, 0.0, True, False)
                ms = median_ms(fn)
                rows.append(("varlen", ms, w["pairs_flat"]))
            except Exception as e:  # report, keep going: the padded run still gives a figure
                print(f"varlen flash failed: {e}", file=sys.stderr)
            del q, k, v
            qp = torch.rand(batch, hq, max_len, D, device="cuda", dtype=torch.bfloat16, generator=gen)
            kp = torch.rand(batch, hq, max_len, D, device="cuda", dtype=torch.bfloat16, generator=gen)
            vp = torch.rand(batch, hq, max_len, D, device="cuda", dtype=torch.bfloat16, generator=gen)
            try:
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    ms = median_ms(lambda: F.scaled_dot_product_attention(qp, kp, vp, is_causal=True))
                rows.append(("padded", ms, batch * max_len * (max_len + 1) / 2))
            except Exception as e:
                print(f"padded flash SDPA failed: {e}", file=sys.stderr)
            del qp, kp, vp
            for kernel, ms, pairs in rows:
                tflops = 4.0 * D * pairs * hq / (ms * 1e9)
                print(f"{w['workload']:24} {model:11} {kernel:8} {ms:9.3f} {tflops:9.1f}", flush=True)
                if out:
                    out.write(json.dumps({"bench": "attention_torch", "device": dev,
                                          "torch": torch.__version__, "workload": w["workload"],
                                          "model": model, "hq": hq, "hkv": hkv, "kernel": kernel,
                                          "pairs": pairs, "median_ms": round(ms, 4),
                                          "tflops": round(tflops, 2)}) + "\n")
    if out:
        out.close()


if __name__ == "__main__":
    main()
