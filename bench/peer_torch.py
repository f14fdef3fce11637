#!/usr/bin/env python3
"""PyTorch peers of `radix bench model --device cuda`, on the same workloads, printing the same
JSON fields (one object per line with --json):

  hf-eager, hf-sdpa  Hugging Face transformers' Qwen3Model on a right-padded batch with an
                     attention mask (attn_implementation eager / sdpa): the baseline a user of
                     transformers gets.
  radixmlp-torch     the RadixMLP paper's scheme in PyTorch: embedding, norms, projections,
                     q/k-norm, RoPE and MLP once per unique trie node (index_select into a padded
                     layout only for attention, SDPA causal, gathered back).

Random bf16 weights (normal, std 0.02, norms 1) of the real Qwen3 shapes. Workloads are rebuilt
here with the same generator as bench/workloads.cc (splitmix64), so tokens and unique counts
match radix's rows. Timing: wall clock from host token lists to the normalised last-token
embeddings on the host (uploads included, as radix's includes its own), median over
--repetitions after --warmup, with torch.cuda.synchronize. The RadixMLP trie is built outside the
timed region (radix times its own fold plan). Effective TFLOP/s use radix's count (model/flops.cc):
hf-* count the 'off' work (padding not counted), radixmlp-torch the 'scatter' work.
"""
import argparse
import json
import math
import statistics
import sys
import time

MASK64 = (1 << 64) - 1

SHAPES = {
    "qwen3-0.6b": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                       num_attention_heads=16, num_key_value_heads=8, tie_word_embeddings=True),
    "qwen3-4b": dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                     num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=True),
    "qwen3-8b": dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                     num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=False),
}
HEAD_DIM = 128
VOCAB = 151669


# ---- workloads: bench/workloads.cc, bit for bit -------------------------------------------------
class Rng:
    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self, lo, hi):
        return lo + self.next() % (hi - lo)

    def tokens(self, n):
        return [self.uniform(100, 150000) for _ in range(n)]


def make_syn(b, p, s, seed=1):
    rng = Rng(seed)
    shared = rng.tokens(p)
    return [shared + rng.tokens(s) for _ in range(b)]


def make_rerank_like(g, d, seed=1):
    rng = Rng(seed)
    system = rng.tokens(48)
    end = rng.tokens(10)
    seqs = []
    for _ in range(g):
        query = rng.tokens(rng.uniform(6, 17))
        for _ in range(d):
            doc = rng.tokens(rng.uniform(40, 121))
            seqs.append(system + query + doc + end)
    return seqs


def parse_workload(spec):
    kind, _, rest = spec.partition(":")
    args = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        args[key] = int(value)
    seed = args.pop("seed", 1)
    if kind == "syn":
        b, p, s = args.get("B", 32), args.get("P", 2048), args.get("S", 256)
        return f"syn:B={b},P={p},S={s}", make_syn(b, p, s, seed)
    if kind == "rerank-like":
        g, d = args.get("G", 40), args.get("D", 10)
        return f"rerank-like:G={g},D={d}", make_rerank_like(g, d, seed)
    if kind == "wide":
        b, l, p = args.get("B", 2048), args.get("L", 512), args.get("P", 128)
        return f"wide:B={b},L={l},P={p}", make_syn(b, p, l - p, seed)
    raise SystemExit(f"peer_torch: unknown workload {spec!r}")


# ---- the trie (scatter-mode plan) ----------------------------------------------------------------
class Plan:
    """Unique (prefix) nodes of the batch, and the maps between them and a padded [B, L] layout."""

    def __init__(self, seqs):
        nodes = {}
        self.ids, self.positions, self.gather_padded, scatter = [], [], [], []
        self.max_len = max(len(s) for s in seqs)
        for b, seq in enumerate(seqs):
            parent = -1
            for t, tok in enumerate(seq):
                key = (parent, tok)
                node = nodes.get(key)
                if node is None:
                    node = len(self.ids)
                    nodes[key] = node
                    self.ids.append(tok)
                    self.positions.append(t)
                    self.gather_padded.append(b * self.max_len + t)
                scatter.append((b, t, node))
                parent = node
        # Padded slot -> node (padding slots read node 0; causal attention never lets a real
        # query see them, and their outputs are never gathered).
        self.padded_index = [0] * (len(seqs) * self.max_len)
        for b, t, node in scatter:
            self.padded_index[b * self.max_len + t] = node
        self.last_nodes = [self.padded_index[b * self.max_len + len(seq) - 1]
                           for b, seq in enumerate(seqs)]
        self.unique = len(self.ids)


def count_flops(cfg, seqs, unique, rows_mode):
    h, q, kv, inter = cfg["hidden_size"], cfg["num_attention_heads"] * HEAD_DIM, \
        cfg["num_key_value_heads"] * HEAD_DIM, cfg["intermediate_size"]
    params = h * (q + 2 * kv) + q * h + 3 * h * inter
    layers = cfg["num_hidden_layers"]
    rows = sum(len(s) for s in seqs) if rows_mode == "off" else unique
    pairs = sum(len(s) * (len(s) + 1) // 2 for s in seqs)
    return 2.0 * params * layers * rows + 4.0 * HEAD_DIM * pairs * cfg["num_attention_heads"] * layers


# ---- models ---------------------------------------------------------------------------------------
def build_model(torch, name, attn):
    from transformers import Qwen3Config
    from transformers.models.qwen3.modeling_qwen3 import Qwen3Model
    shape = SHAPES[name]
    cfg = Qwen3Config(vocab_size=VOCAB, head_dim=HEAD_DIM, max_position_embeddings=40960,
                      rope_theta=1e6, rms_norm_eps=1e-6, attention_bias=False,
                      use_sliding_window=False, **shape)
    if getattr(cfg, "rope_parameters", None) is not None:
        cfg.rope_parameters = {"rope_type": "default", "rope_theta": 1e6}
    cfg._attn_implementation = attn
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = Qwen3Model(cfg)
    torch.set_default_dtype(torch.float32)
    model = model.to(device="cuda", dtype=torch.bfloat16).eval()
    with torch.no_grad():  # explicit, whatever the library's init does
        for pname, p in model.named_parameters():
            if p.dim() == 1:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02)
    return model


def set_attention(model, attn):
    if hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation(attn)
            return
        except Exception:  # older/newer API: fall back to the config field read at forward
            pass
    model.config._attn_implementation = attn


def hf_forward(torch, model, seqs):
    b, length = len(seqs), max(len(s) for s in seqs)
    ids = torch.zeros((b, length), dtype=torch.long)
    mask = torch.zeros((b, length), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    lengths = torch.tensor([len(s) - 1 for s in seqs])
    ids, mask, lengths = ids.cuda(), mask.cuda(), lengths.cuda()
    out = model(input_ids=ids, attention_mask=mask).last_hidden_state
    last = out[torch.arange(b, device="cuda"), lengths]
    return torch.nn.functional.normalize(last.float(), dim=-1).cpu()


def _rotate(x, half):
    """rotate_half of Hugging Face's RoPE: (x1, x2) -> (-x2, x1)."""
    import torch
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def radixmlp_forward(torch, model, plan, batch):
    F = torch.nn.functional
    cfg = model.config
    hq, hkv, d = cfg.num_attention_heads, cfg.num_key_value_heads, HEAD_DIM
    ids = torch.tensor(plan.ids, dtype=torch.long).cuda()
    pos = torch.tensor(plan.positions, dtype=torch.long).cuda()
    padded = torch.tensor(plan.padded_index, dtype=torch.long).cuda()
    gather = torch.tensor(plan.gather_padded, dtype=torch.long).cuda()
    last = torch.tensor(plan.last_nodes, dtype=torch.long).cuda()
    n, length = ids.shape[0], plan.max_len
    x = model.embed_tokens(ids)
    cos, sin = model.rotary_emb(x[None], pos[None])
    cos, sin = cos[0][:, None, :], sin[0][:, None, :]  # [n, 1, d]
    for layer in model.layers:
        attn = layer.self_attn
        h = layer.input_layernorm(x)
        q = attn.q_norm(attn.q_proj(h).view(n, hq, d))
        k = attn.k_norm(attn.k_proj(h).view(n, hkv, d))
        v = attn.v_proj(h).view(n, hkv, d)
        q = q * cos + _rotate(q, d // 2) * sin
        k = k * cos + _rotate(k, d // 2) * sin
        # Unique rows -> padded sequences for attention (index_select), and back.
        qp = q.index_select(0, padded).view(batch, length, hq, d).transpose(1, 2)
        kp = k.index_select(0, padded).view(batch, length, hkv, d).transpose(1, 2)
        vp = v.index_select(0, padded).view(batch, length, hkv, d).transpose(1, 2)
        try:
            o = F.scaled_dot_product_attention(qp, kp, vp, is_causal=True, enable_gqa=True)
        except TypeError:
            rep = hq // hkv
            o = F.scaled_dot_product_attention(qp, kp.repeat_interleave(rep, 1),
                                               vp.repeat_interleave(rep, 1), is_causal=True)
        o = o.transpose(1, 2).reshape(batch * length, hq * d).index_select(0, gather)
        x = x + attn.o_proj(o)
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    out = model.norm(x.index_select(0, last))
    return F.normalize(out.float(), dim=-1).cpu()


def timed(torch, fn, warmup, reps):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", help="qwen3-0.6b | qwen3-4b | qwen3-8b")
    ap.add_argument("--workload", action="append", help="workload specs (bench/workloads.h)")
    ap.add_argument("--impls", default="hf-eager,hf-sdpa,radixmlp-torch")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--check", action="store_true",
                    help="also report the cosine between the impls' embeddings (a sanity check)")
    args = ap.parse_args()
    models = args.model or ["qwen3-0.6b"]
    specs = args.workload or ["syn:B=32,P=2048,S=256"]
    impls = args.impls.split(",")

    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.cuda.get_device_name()
    print(f"peer_torch: torch {torch.__version__} on {device}", file=sys.stderr)
    for name in models:
        t0 = time.perf_counter()
        model = build_model(torch, name, "sdpa")
        print(f"peer_torch: {name} built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        shape = SHAPES[name]
        for spec in specs:
            wname, seqs = parse_workload(spec)
            plan = Plan(seqs)
            tokens = sum(len(s) for s in seqs)
            results = {}
            for impl in impls:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                row = dict(model=f"random:{name}", device=device, impl=impl, mode=impl,
                           workload=wname, tokens=tokens, unique_tokens=plan.unique)
                try:
                    with torch.inference_mode():
                        if impl in ("hf-eager", "hf-sdpa"):
                            set_attention(model, impl[3:])
                            fn = lambda: hf_forward(torch, model, seqs)
                            flops = count_flops(shape, seqs, plan.unique, "off")
                            row["rows"] = len(seqs) * plan.max_len
                        elif impl == "radixmlp-torch":
                            fn = lambda: radixmlp_forward(torch, model, plan, len(seqs))
                            flops = count_flops(shape, seqs, plan.unique, "scatter")
                            row["rows"] = plan.unique
                        else:
                            raise SystemExit(f"peer_torch: unknown impl {impl!r}")
                        results[impl] = fn()
                        ms = timed(torch, fn, args.warmup, args.repetitions)
                    med = statistics.median(ms)
                    row.update(median_ms=med, min_ms=min(ms), max_ms=max(ms),
                               repetitions=args.repetitions, tokens_per_s=tokens / (med / 1e3),
                               gflop=flops / 1e9, tflops_effective=flops / (med / 1e3) / 1e12,
                               gpu_peak_mib=torch.cuda.max_memory_allocated() / 2**20)
                except torch.cuda.OutOfMemoryError as e:
                    row.update(error="out of GPU memory", detail=str(e).split("\n")[0][:200])
                    torch.cuda.empty_cache()
                if args.check and impl in results and "hf-sdpa" in results and impl != "hf-sdpa":
                    a, b = results[impl], results["hf-sdpa"]
                    row["min_cosine_vs_hf_sdpa"] = float((a * b).sum(-1).min())
                print(json.dumps(row) if args.json else
                      f"{wname:26s} {impl:15s} {row.get('median_ms', math.nan):10.2f} ms "
                      f"{row.get('tflops_effective', math.nan):8.1f} TFLOP/s "
                      f"{row.get('gpu_peak_mib', math.nan):9.0f} MiB {row.get('error', '')}",
                      flush=True)
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
