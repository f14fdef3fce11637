#!/usr/bin/env python3
"""PyTorch peers of `radix bench model --device cuda`, on the same workloads, printing the same
JSON fields (one object per line with --json):

  hf-eager, hf-sdpa  Hugging Face transformers' model of the family (Qwen3Model, MistralModel,
                     Qwen2Model, LlamaModel, Gemma2Model) on a right-padded batch with an
                     attention mask (attn_implementation eager / sdpa): the baseline a user of
                     transformers gets.
  radixmlp-torch     the RadixMLP paper's scheme in PyTorch: embedding, norms, projections,
                     q/k-norm, RoPE and MLP once per unique trie node (index_select into a padded
                     layout only for attention, gathered back). Attention is SDPA causal where
                     the family allows it; Gemma2's score soft-cap (and a sliding window shorter
                     than the batch) goes through FlexAttention (score_mod, block mask), or an
                     explicit softmax where FlexAttention is missing or fails; the row says which.

Models: the shapes of radix's random presets (src/model/families/*.cc): qwen3-0.6b, qwen3-4b,
qwen3-8b, mistral-7b, qwen2-7b, llama3-8b, gemma2-9b. Random bf16 weights (normal, std 0.02,
biases too; norms 1, i.e. w = 0 for Gemma's (1 + w) norms). Workloads are rebuilt here with the
same generator as bench/workloads.cc (splitmix64, token ids cut to the vocabulary as radix cuts
them), so tokens and unique counts match radix's rows. Timing: wall clock from host token lists to
the normalised last-token embeddings on the host (uploads included, as radix's includes its own),
median over --repetitions after --warmup, with torch.cuda.synchronize. The RadixMLP trie is built
outside the timed region (radix times its own fold plan). Effective TFLOP/s use radix's count
(model/flops.cc: biases, norms, soft-cap and windows not counted): hf-* count the 'off' work
(padding not counted), radixmlp-torch the 'scatter' work.
"""
import argparse
import inspect
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


# The other families: radix's presets (src/model/families/<family>.cc), field names of the
# transformers configs. tests/python/test_bench_peer_torch.py checks them against radix's source.
FAMILY_SHAPES = {
    "mistral-7b": dict(family="mistral", hidden_size=4096, intermediate_size=14336,
                       num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                       head_dim=128, vocab_size=32000, max_position_embeddings=32768,
                       rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=4096,
                       tie_word_embeddings=False),
    "qwen2-7b": dict(family="qwen2", hidden_size=3584, intermediate_size=18944,
                     num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                     head_dim=128, vocab_size=152064, max_position_embeddings=32768,
                     rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=False),
    "llama3-8b": dict(family="llama", hidden_size=4096, intermediate_size=14336,
                      num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                      head_dim=128, vocab_size=128256, max_position_embeddings=131072,
                      rms_norm_eps=1e-5, rope_theta=500000.0,
                      rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                        high_freq_factor=4.0,
                                        original_max_position_embeddings=8192),
                      tie_word_embeddings=False),
    "gemma2-9b": dict(family="gemma2", hidden_size=3584, intermediate_size=14336,
                      num_hidden_layers=42, num_attention_heads=16, num_key_value_heads=8,
                      head_dim=256, vocab_size=256000, max_position_embeddings=8192,
                      rms_norm_eps=1e-6, rope_theta=10000.0, query_pre_attn_scalar=256,
                      attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                      sliding_window=4096, tie_word_embeddings=True),
}

# What each family's layer does beyond the Llama one (radix: DecoderConfig's family options).
FAMILY_OPTIONS = {
    "qwen3": dict(qk_norm=True),
    "mistral": dict(sliding="all"),
    "qwen2": dict(qkv_bias=True),
    "llama": dict(),
    "gemma": dict(plus_one=True, scale_embeddings=True, gelu_tanh=True),
    "gemma2": dict(plus_one=True, scale_embeddings=True, gelu_tanh=True, sandwich=True,
                   sliding="even"),
}
HF_CLASSES = {  # family -> (config class, model class) in transformers
    "qwen3": ("Qwen3Config", "Qwen3Model"),
    "mistral": ("MistralConfig", "MistralModel"),
    "qwen2": ("Qwen2Config", "Qwen2Model"),
    "llama": ("LlamaConfig", "LlamaModel"),
    "gemma": ("GemmaConfig", "GemmaModel"),
    "gemma2": ("Gemma2Config", "Gemma2Model"),
}
TOKEN_LO, TOKEN_HI = 100, 150000  # bench/workloads.cc


def model_spec(name):
    """The full shape of a model name: family, dims, vocabulary (one dict for every family)."""
    if name in SHAPES:
        return dict(family="qwen3", head_dim=HEAD_DIM, vocab_size=VOCAB, rms_norm_eps=1e-6,
                    rope_theta=1e6, max_position_embeddings=40960, **SHAPES[name])
    if name in FAMILY_SHAPES:
        return dict(FAMILY_SHAPES[name])
    raise SystemExit(f"peer_torch: unknown model {name!r} (known: "
                     f"{', '.join(list(SHAPES) + list(FAMILY_SHAPES))})")


def family_options(spec):
    o = dict(qk_norm=False, qkv_bias=False, o_bias=False, mlp_bias=False, plus_one=False,
             scale_embeddings=False, gelu_tanh=False, sandwich=False, sliding=None)
    o.update(FAMILY_OPTIONS[spec["family"]])
    if spec.get("attention_bias"):  # Llama, Gemma: q/k/v and o
        o["qkv_bias"] = o["o_bias"] = True
    if spec.get("mlp_bias"):
        o["mlp_bias"] = True
    return o


def layer_window(spec, layer):
    """The layer's sliding window in positions (0: none), as radix's sliding_layers."""
    window = spec.get("sliding_window") or 0
    which = family_options(spec)["sliding"]
    if window <= 0 or which is None:
        return 0
    return window if which == "all" or layer % 2 == 0 else 0


# ---- workloads: bench/workloads.cc, bit for bit -------------------------------------------------
class Rng:
    def __init__(self, seed, vocab_size=0):
        self.state = seed & MASK64
        # bench/workloads.cc: ids in [100, 150000), cut to the vocabulary when it is smaller.
        self.hi = min(TOKEN_HI, vocab_size) if vocab_size > TOKEN_LO else TOKEN_HI

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self, lo, hi):
        return lo + self.next() % (hi - lo)

    def tokens(self, n):
        return [self.uniform(TOKEN_LO, self.hi) for _ in range(n)]


def make_syn(b, p, s, seed=1, vocab_size=0):
    rng = Rng(seed, vocab_size)
    shared = rng.tokens(p)
    return [shared + rng.tokens(s) for _ in range(b)]


def make_rerank_like(g, d, seed=1, vocab_size=0):
    rng = Rng(seed, vocab_size)
    system = rng.tokens(48)
    end = rng.tokens(10)
    seqs = []
    for _ in range(g):
        query = rng.tokens(rng.uniform(6, 17))
        for _ in range(d):
            doc = rng.tokens(rng.uniform(40, 121))
            seqs.append(system + query + doc + end)
    return seqs


def parse_workload(spec, vocab_size=0):
    kind, _, rest = spec.partition(":")
    args = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        args[key] = int(value)
    seed = args.pop("seed", 1)
    if kind == "syn":
        b, p, s = args.get("B", 32), args.get("P", 2048), args.get("S", 256)
        return f"syn:B={b},P={p},S={s}", make_syn(b, p, s, seed, vocab_size)
    if kind == "rerank-like":
        g, d = args.get("G", 40), args.get("D", 10)
        return f"rerank-like:G={g},D={d}", make_rerank_like(g, d, seed, vocab_size)
    if kind == "wide":
        b, l, p = args.get("B", 2048), args.get("L", 512), args.get("P", 128)
        return f"wide:B={b},L={l},P={p}", make_syn(b, p, l - p, seed, vocab_size)
    raise SystemExit(f"peer_torch: unknown workload {spec!r}")


# ---- the trie (scatter-mode plan) ----------------------------------------------------------------
class Plan:
    """Unique (prefix) nodes of the batch, and the maps between them and a padded [B, L] layout."""

    def __init__(self, seqs, fold=True):
        nodes = {}
        self.ids, self.positions, self.gather_padded, scatter = [], [], [], []
        self.max_len = max(len(s) for s in seqs)
        for b, seq in enumerate(seqs):
            parent = -1
            for t, tok in enumerate(seq):
                key = (parent, tok) if fold else (b, t)  # fold=False: one node per token
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
    """radix's count (model/flops.cc) for off and scatter: 2 * layer_matmul_params * layers * rows
    plus 4 * head_dim per causal (query, key) pair per query head per layer."""
    d = cfg.get("head_dim", HEAD_DIM)
    h, q, kv, inter = cfg["hidden_size"], cfg["num_attention_heads"] * d, \
        cfg["num_key_value_heads"] * d, cfg["intermediate_size"]
    params = h * (q + 2 * kv) + q * h + 3 * h * inter
    layers = cfg["num_hidden_layers"]
    rows = sum(len(s) for s in seqs) if rows_mode == "off" else unique
    pairs = sum(len(s) * (len(s) + 1) // 2 for s in seqs)
    return 2.0 * params * layers * rows + 4.0 * d * pairs * cfg["num_attention_heads"] * layers


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
    model = to_dtype_keeping_rope(torch, model, "cuda", torch.bfloat16).eval()
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


# ---- the other families ---------------------------------------------------------------------------
def hf_config(spec, attn):
    """The transformers config of a family model (transformers 4 and 5 spellings)."""
    import transformers
    o = family_options(spec)
    cfg_cls = getattr(transformers, HF_CLASSES[spec["family"]][0])
    skip = {"family", "rope_scaling", "sliding_window"}
    kwargs = {k: v for k, v in spec.items() if k not in skip}
    if spec["family"] in ("mistral", "gemma2"):
        kwargs["sliding_window"] = spec.get("sliding_window")
    if spec["family"] in ("qwen2", "qwen3"):
        kwargs["use_sliding_window"] = False
    if spec["family"] in ("llama", "gemma", "gemma2"):
        kwargs["attention_bias"] = o["qkv_bias"]
    if spec["family"] == "llama":
        kwargs["mlp_bias"] = o["mlp_bias"]
    if o["gelu_tanh"]:
        kwargs["hidden_activation"] = "gelu_pytorch_tanh"
        if spec["family"] == "gemma":
            kwargs["hidden_act"] = "gelu_pytorch_tanh"
    known = inspect.signature(cfg_cls.__init__).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in known.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in known}
    cfg = cfg_cls(**kwargs)
    rope = {"rope_type": "default", "rope_theta": spec["rope_theta"]}
    if spec.get("rope_scaling"):
        rope.update(spec["rope_scaling"])
    current = getattr(cfg, "rope_parameters", None)
    if isinstance(current, dict) and current and all(isinstance(v, dict) for v in current.values()):
        cfg.rope_parameters = {kind: dict(rope) for kind in current}  # per layer type
    elif hasattr(cfg, "rope_parameters"):  # transformers 5
        cfg.rope_parameters = rope
    elif spec.get("rope_scaling"):  # transformers 4: read by the rotary embedding at init
        cfg.rope_scaling = dict(spec["rope_scaling"])
    cfg._attn_implementation = attn
    return cfg


def randomize(torch, model, plus_one):
    """normal(0, 0.02) matrices and biases; norms 1 (w = 0 where the norm scales by 1 + w)."""
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() == 1 and not pname.endswith("bias"):
                p.fill_(0.0 if plus_one else 1.0)
            else:
                p.normal_(0.0, 0.02)


def build_family_model(torch, spec, attn, device="cuda", dtype=None):
    """The family's transformers model with random weights (randomize) in `dtype` (bf16 unless
    given) on `device`; tests build it in fp32 on the CPU."""
    import transformers
    dtype = dtype or torch.bfloat16
    cfg = hf_config(spec, attn)
    model_cls = getattr(transformers, HF_CLASSES[spec["family"]][1])
    torch.set_default_dtype(dtype)
    try:
        if hasattr(torch.device(device), "__enter__"):  # torch 2: build in place
            with torch.device(device):
                model = model_cls(cfg)
        else:  # torch 1.13 (Debian's, the CPU tests): build on the CPU, moved below
            model = model_cls(cfg)
    finally:
        torch.set_default_dtype(torch.float32)
    model = to_dtype_keeping_rope(torch, model, device, dtype).eval()
    randomize(torch, model, family_options(spec)["plus_one"])
    return model


def to_dtype_keeping_rope(torch, model, device, dtype):
    """model.to(device, dtype) with RoPE's inv_freq kept in fp32, as from_pretrained leaves it.
    Module.to casts every floating buffer, the rotary embedding's non-persistent inv_freq too; in
    bf16 it keeps 8 bits, and transformers multiplies positions by it (in fp32, from the rounded
    value), so at position 2000 a frequency is off by up to ~4 radians: the model attends with
    scrambled positions beyond a few hundred tokens. (transformers keeps `original_inv_freq` as a
    plain attribute aliasing the fp32 tensor, so it was not cast and hid the difference.)"""
    saved = []
    for mod in model.modules():
        for name, buf in list(mod._buffers.items()):
            if name.endswith("inv_freq") and buf is not None and buf.is_floating_point():
                saved.append((mod, name, buf.detach().float().clone()))
    model = model.to(device=device, dtype=dtype)
    for mod, name, fp32 in saved:
        mod._buffers[name] = fp32.to(device)
        if getattr(mod, "original_" + name, None) is not None:
            setattr(mod, "original_" + name, mod._buffers[name])
    return model


def hf_config_mismatches(torch, spec, model):
    """What the built transformers model holds that differs from the spec the peer computes with
    (norm eps, attention scale, head_dim, RoPE frequencies, windows, soft-cap, activation): a
    config field that transformers renamed or dropped shows up here, not as a low cosine."""
    out = []

    def differ(what, theirs, ours, rel=1e-6):
        if theirs is None:
            return
        if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
            if abs(float(theirs) - float(ours)) <= rel * max(abs(float(ours)), 1e-30):
                return
        elif theirs == ours:
            return
        out.append(f"{what}: transformers {theirs!r}, peer {ours!r}")

    o = family_options(spec)
    d = spec["head_dim"]
    differ("head_dim", getattr(model.config, "head_dim", None), d)
    layer = model.layers[0]
    for norm in ("input_layernorm", "post_attention_layernorm"):
        mod = getattr(layer, norm)
        differ(f"{norm} eps", getattr(mod, "variance_epsilon", getattr(mod, "eps", None)),
               spec["rms_norm_eps"])
    mod = model.norm
    differ("norm eps", getattr(mod, "variance_epsilon", getattr(mod, "eps", None)),
           spec["rms_norm_eps"])
    differ("attention scaling", getattr(layer.self_attn, "scaling", None),
           (spec.get("query_pre_attn_scalar") or d) ** -0.5)
    differ("attn_logit_softcapping", getattr(model.config, "attn_logit_softcapping", None),
           spec.get("attn_logit_softcapping") or None)
    act = getattr(model.config, "hidden_activation", None) or getattr(model.config, "hidden_act")
    differ("activation", "gelu_tanh" if "gelu" in str(act) else str(act),
           "gelu_tanh" if o["gelu_tanh"] else "silu")
    rotary = getattr(model, "rotary_emb", None) or getattr(layer.self_attn, "rotary_emb", None)
    # The buffer the forward multiplies positions by (not original_inv_freq, which transformers
    # keeps aside and Module.to does not cast).
    inv = getattr(rotary, "inv_freq", None)
    if inv is None:
        inv = getattr(rotary, "original_inv_freq", None)
    if inv is not None:
        if inv.dtype != torch.float32:
            out.append(f"RoPE inv_freq held in {inv.dtype} (the peer uses fp32): positions x "
                       "inv_freq drift by radians over a long sequence")
        ours = rope_inv_freq(torch, spec)
        err = float(((inv.float().cpu() - ours).abs() / ours).max())
        if err > 1e-5:  # both fp32 by the same formula: a few ulps at most
            out.append(f"RoPE inv_freq: max relative difference {err:.3g}")
        scaling = getattr(rotary, "attention_scaling", 1.0)
        differ("RoPE attention_scaling", scaling, 1.0)
    for i, mod in enumerate(model.layers):
        cfg = model.config
        if hasattr(mod.self_attn, "sliding_window"):
            theirs = mod.self_attn.sliding_window
        elif getattr(cfg, "layer_types", None):
            theirs = cfg.sliding_window if cfg.layer_types[i] == "sliding_attention" else None
        elif getattr(cfg, "use_sliding_window", True) is False:
            theirs = None
        else:  # Mistral in transformers 4: the mask reads config.sliding_window for every layer
            theirs = getattr(cfg, "sliding_window", None)
        differ(f"layer {i} sliding window", theirs or 0, layer_window(spec, i))
    return out


def hf_layer_states(torch, model, seqs):
    """transformers' hidden states at each sequence's last token: [embeddings, layer 0 out, ...,
    final norm out] as output_hidden_states gives them (its last entry is after the final norm;
    the output of the last layer before it is not in the tuple)."""
    b, length = len(seqs), max(len(s) for s in seqs)
    dev = next(model.parameters()).device
    ids = torch.zeros((b, length), dtype=torch.long)
    mask = torch.zeros((b, length), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    out = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), output_hidden_states=True)
    rows = torch.arange(b, device=dev)
    lengths = torch.tensor([len(s) - 1 for s in seqs], device=dev)
    return [h[rows, lengths].float().cpu() for h in out.hidden_states]


def layer_cosines(hf_states, trace):
    """Per-layer min cosine (over sequences) of the peer's trace against hf_layer_states: the
    first entry the embeddings, then each layer but the last, then the final norm."""
    import torch
    F = torch.nn.functional
    if len(hf_states) == len(trace):  # every layer's output and the final norm's
        pairs = list(zip(hf_states, trace))
    else:  # the last layer's output replaced by the final norm's (transformers 4 and 5)
        pairs = list(zip(hf_states[:-1], trace[:len(hf_states) - 1])) + [(hf_states[-1], trace[-1])]
    return [float((F.normalize(a, dim=-1) * F.normalize(b.float().cpu(), dim=-1)).sum(-1).min())
            for a, b in pairs]


def random_weights(torch, spec, device="cpu", dtype=None, seed=0):
    """The parameters of the family's transformers model by their names (what
    dict(model.named_parameters()) holds), without transformers: for tests on the CPU."""
    dtype = dtype or torch.float32
    o = family_options(spec)
    g = torch.Generator().manual_seed(seed)
    h, d, inter = spec["hidden_size"], spec["head_dim"], spec["intermediate_size"]
    q, kv = spec["num_attention_heads"] * d, spec["num_key_value_heads"] * d
    mat = lambda *shape: (torch.randn(*shape, generator=g) * 0.02).to(device, dtype)
    norm = lambda n: torch.full((n,), 0.0 if o["plus_one"] else 1.0, dtype=dtype, device=device)
    w = {"embed_tokens.weight": mat(spec["vocab_size"], h), "norm.weight": norm(h)}
    for layer in range(spec["num_hidden_layers"]):
        p = f"layers.{layer}."
        w[p + "input_layernorm.weight"] = norm(h)
        w[p + "post_attention_layernorm.weight"] = norm(h)
        if o["sandwich"]:
            w[p + "pre_feedforward_layernorm.weight"] = norm(h)
            w[p + "post_feedforward_layernorm.weight"] = norm(h)
        for name, rows in (("q_proj", q), ("k_proj", kv), ("v_proj", kv)):
            w[p + f"self_attn.{name}.weight"] = mat(rows, h)
            if o["qkv_bias"]:
                w[p + f"self_attn.{name}.bias"] = mat(rows)
        if o["qk_norm"]:
            w[p + "self_attn.q_norm.weight"] = norm(d)
            w[p + "self_attn.k_norm.weight"] = norm(d)
        w[p + "self_attn.o_proj.weight"] = mat(h, q)
        if o["o_bias"]:
            w[p + "self_attn.o_proj.bias"] = mat(h)
        for name, shape in (("gate_proj", (inter, h)), ("up_proj", (inter, h)),
                            ("down_proj", (h, inter))):
            w[p + f"mlp.{name}.weight"] = mat(*shape)
            if o["mlp_bias"]:
                w[p + f"mlp.{name}.bias"] = mat(shape[0])
    return w


def rms_norm(torch, x, w, eps, plus_one):
    """transformers' RMSNorm: fp32 statistics; Llama-style casts then scales by w, Gemma-style
    scales by (1 + w) in fp32 then casts."""
    xf = x.float()
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    if plus_one:
        return (y * (1.0 + w.float())).to(x.dtype)
    return w * y.to(x.dtype)


def rope_inv_freq(torch, spec):
    """inv_freq of RoPE (default, or llama3 scaling as transformers' _compute_llama3_parameters)."""
    d = spec["head_dim"]
    inv = 1.0 / (spec["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    sc = spec.get("rope_scaling")
    if not sc:
        return inv
    if sc["rope_type"] != "llama3":
        raise SystemExit(f"peer_torch: rope_type {sc['rope_type']!r} not implemented here")
    old, factor = sc["original_max_position_embeddings"], sc["factor"]
    low, high = sc["low_freq_factor"], sc["high_freq_factor"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, scaled)


def rope_tables(torch, spec, pos, dtype):
    """cos and sin [n, 1, head_dim], computed in fp32 and cast as transformers does."""
    inv = rope_inv_freq(torch, spec).to(pos.device)
    freqs = pos.float()[:, None] * inv[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype)[:, None, :], emb.sin().to(dtype)[:, None, :]


_FLEX = {"fn": None, "failed": None, "masks": {}, "score_mods": {}}


def _visible(torch, length, window, device):
    """[L, L] keys visible to each query: causal, within the window (positions) when set."""
    i = torch.arange(length, device=device)
    diff = i[:, None] - i[None, :]
    ok = diff >= 0
    return ok & (diff < window) if window else ok


def _attend_explicit(torch, qp, kp, vp, scale, softcap, window):
    """Soft-capped / windowed attention as transformers' eager path: bf16 scores, fp32 softmax;
    in batch chunks so the [chunk, heads, L, L] scores stay near 2^30 elements."""
    b, hq, length, _ = qp.shape
    rep = hq // kp.shape[1]
    visible = _visible(torch, length, window, qp.device)
    out = torch.empty_like(qp)
    chunk = max(1, (1 << 30) // (hq * length * length))
    for b0 in range(0, b, chunk):
        q = qp[b0:b0 + chunk]
        k = kp[b0:b0 + chunk].repeat_interleave(rep, 1)
        v = vp[b0:b0 + chunk].repeat_interleave(rep, 1)
        s = torch.matmul(q, k.transpose(-1, -2)) * scale
        if softcap:
            s = torch.tanh(s / softcap) * softcap
        s = s.masked_fill(~visible, float("-inf"))
        p = torch.softmax(s.float(), dim=-1).to(q.dtype)
        out[b0:b0 + chunk] = torch.matmul(p, v)
    return out


def _attend_flex(torch, qp, kp, vp, scale, softcap, window):
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    if _FLEX["fn"] is None:
        _FLEX["fn"] = torch.compile(flex_attention, dynamic=False)
    length = qp.shape[2]
    key = (length, window)
    if key not in _FLEX["masks"]:
        def mask_mod(b, h, q_idx, kv_idx):
            ok = q_idx >= kv_idx
            return ok & (q_idx - kv_idx < window) if window else ok
        _FLEX["masks"][key] = create_block_mask(mask_mod, None, None, length, length,
                                                device=qp.device)
    # One score_mod object per cap: a new closure per call could make the compiled function
    # recompile per layer (and fall back to eager once its cache limit is hit).
    if softcap not in _FLEX["score_mods"]:
        def cap_scores(score, b, h, q_idx, kv_idx):
            return torch.tanh(score / softcap) * softcap
        _FLEX["score_mods"][softcap] = cap_scores if softcap else None
    score_mod = _FLEX["score_mods"][softcap]
    return _FLEX["fn"](qp, kp, vp, score_mod=score_mod, block_mask=_FLEX["masks"][key],
                       scale=scale, enable_gqa=True)


def attend_padded(torch, qp, kp, vp, scale, softcap, window, impl):
    """Causal attention on the padded layout [B, heads, L, d]; returns (output, what ran)."""
    F = torch.nn.functional
    length = qp.shape[2]
    window = window if window and window < length else 0  # a window as long as L changes nothing
    plain = not softcap and not window
    if impl == "auto" and plain and hasattr(F, "scaled_dot_product_attention"):
        try:
            return F.scaled_dot_product_attention(qp, kp, vp, is_causal=True, scale=scale,
                                                  enable_gqa=True), "sdpa"
        except TypeError:  # torch before enable_gqa
            rep = qp.shape[1] // kp.shape[1]
            return F.scaled_dot_product_attention(qp, kp.repeat_interleave(rep, 1),
                                                  vp.repeat_interleave(rep, 1), is_causal=True,
                                                  scale=scale), "sdpa"
    if impl == "auto" and qp.is_cuda and not _FLEX["failed"]:
        try:
            return _attend_flex(torch, qp, kp, vp, scale, softcap, window), "flex"
        except Exception as e:  # missing or failing FlexAttention: say so once, go explicit
            _FLEX["failed"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            print(f"peer_torch: FlexAttention failed ({_FLEX['failed']}); explicit softmax instead",
                  file=sys.stderr)
    return _attend_explicit(torch, qp, kp, vp, scale, softcap, window), "explicit"


def family_radixmlp_forward(torch, spec, w, plan, batch, impl="auto", ran=None, trace=None):
    """RadixMLP for every family from the parameters by transformers' names: position-wise work
    once per trie node, attention on the padded layout. `ran` collects the attention paths used;
    `trace` (a list) gets the last tokens' states: embeddings, each layer's output, final norm."""
    F = torch.nn.functional
    o = family_options(spec)
    hq, hkv, d = spec["num_attention_heads"], spec["num_key_value_heads"], spec["head_dim"]
    eps, po = spec["rms_norm_eps"], o["plus_one"]
    scale = (spec.get("query_pre_attn_scalar") or d) ** -0.5
    softcap = spec.get("attn_logit_softcapping") or 0.0
    emb = w["embed_tokens.weight"]
    dev = emb.device
    ids = torch.tensor(plan.ids, dtype=torch.long).to(dev)
    pos = torch.tensor(plan.positions, dtype=torch.long).to(dev)
    padded = torch.tensor(plan.padded_index, dtype=torch.long).to(dev)
    gather = torch.tensor(plan.gather_padded, dtype=torch.long).to(dev)
    last = torch.tensor(plan.last_nodes, dtype=torch.long).to(dev)
    n, length = ids.shape[0], plan.max_len
    x = emb.index_select(0, ids)
    if o["scale_embeddings"]:  # Gemma: sqrt(hidden) rounded to the model's dtype first
        x = x * torch.tensor(spec["hidden_size"] ** 0.5, dtype=x.dtype, device=dev)
    cos, sin = rope_tables(torch, spec, pos, x.dtype)
    act = (lambda t: F.gelu(t, approximate="tanh")) if o["gelu_tanh"] else F.silu
    if trace is not None:
        trace.append(x.index_select(0, last))

    def mlp(p, t):
        g = F.linear(t, w[p + "mlp.gate_proj.weight"], w.get(p + "mlp.gate_proj.bias"))
        u = F.linear(t, w[p + "mlp.up_proj.weight"], w.get(p + "mlp.up_proj.bias"))
        return F.linear(act(g) * u, w[p + "mlp.down_proj.weight"], w.get(p + "mlp.down_proj.bias"))

    def to_padded(t, heads):
        return t.index_select(0, padded).view(batch, length, heads, d).transpose(1, 2)

    for layer in range(spec["num_hidden_layers"]):
        p = f"layers.{layer}."
        h = rms_norm(torch, x, w[p + "input_layernorm.weight"], eps, po)
        q = F.linear(h, w[p + "self_attn.q_proj.weight"], w.get(p + "self_attn.q_proj.bias"))
        k = F.linear(h, w[p + "self_attn.k_proj.weight"], w.get(p + "self_attn.k_proj.bias"))
        v = F.linear(h, w[p + "self_attn.v_proj.weight"], w.get(p + "self_attn.v_proj.bias"))
        q, k, v = q.view(n, hq, d), k.view(n, hkv, d), v.view(n, hkv, d)
        if o["qk_norm"]:
            q = rms_norm(torch, q, w[p + "self_attn.q_norm.weight"], eps, po)
            k = rms_norm(torch, k, w[p + "self_attn.k_norm.weight"], eps, po)
        q = q * cos + _rotate(q, d // 2) * sin
        k = k * cos + _rotate(k, d // 2) * sin
        a, how = attend_padded(torch, to_padded(q, hq), to_padded(k, hkv), to_padded(v, hkv),
                               scale, softcap, layer_window(spec, layer), impl)
        if ran is not None:
            ran.add(how)
        a = a.transpose(1, 2).reshape(batch * length, hq * d).index_select(0, gather)
        a = F.linear(a, w[p + "self_attn.o_proj.weight"], w.get(p + "self_attn.o_proj.bias"))
        if o["sandwich"]:  # Gemma2: norms after attention and around the MLP
            x = x + rms_norm(torch, a, w[p + "post_attention_layernorm.weight"], eps, po)
            m = mlp(p, rms_norm(torch, x, w[p + "pre_feedforward_layernorm.weight"], eps, po))
            x = x + rms_norm(torch, m, w[p + "post_feedforward_layernorm.weight"], eps, po)
        else:
            x = x + a
            x = x + mlp(p, rms_norm(torch, x, w[p + "post_attention_layernorm.weight"], eps, po))
        if trace is not None:
            trace.append(x.index_select(0, last))
    out = rms_norm(torch, x.index_select(0, last), w["norm.weight"], eps, po)
    if trace is not None:
        trace.append(out)
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
    ap.add_argument("--model", action="append",
                    help="repeatable: " + " | ".join(list(SHAPES) + list(FAMILY_SHAPES)))
    ap.add_argument("--workload", action="append", help="workload specs (bench/workloads.h)")
    ap.add_argument("--impls", default="hf-eager,hf-sdpa,radixmlp-torch")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--check", action="store_true",
                    help="also report the cosine between the impls' embeddings (a sanity check)")
    ap.add_argument("--check-layers", action="store_true",
                    help="with --check, for the non-Qwen3 families: radixmlp-torch's rows also get "
                         "the min cosine against hf-sdpa after the embeddings, each layer and the "
                         "final norm (layer_cosines_vs_hf_sdpa; untimed), to find where they part")
    ap.add_argument("--budget-s", type=float, default=0,
                    help="stop starting new rows after this many seconds (0: no limit); the rows "
                         "left out are printed with an error, so a caller's timeout cuts nothing "
                         "midway")
    args = ap.parse_args()
    models = args.model or ["qwen3-0.6b"]
    specs = args.workload or ["syn:B=32,P=2048,S=256"]
    impls = args.impls.split(",")
    for impl in impls:
        if impl not in ("hf-eager", "hf-sdpa", "radixmlp-torch"):
            raise SystemExit(f"peer_torch: unknown impl {impl!r}")
    shapes = {name: model_spec(name) for name in models}  # unknown names fail before CUDA starts

    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.cuda.get_device_name()
    print(f"peer_torch: torch {torch.__version__} on {device}", file=sys.stderr)
    started = time.perf_counter()
    over = lambda: args.budget_s > 0 and time.perf_counter() - started > args.budget_s

    def emit(row):
        print(json.dumps(row) if args.json else
              f"{row['model']:18s} {row['workload']:26s} {row['impl']:15s} "
              f"{row.get('median_ms', math.nan):10.2f} ms "
              f"{row.get('tflops_effective', math.nan):8.1f} TFLOP/s "
              f"{row.get('gpu_peak_mib', math.nan):9.0f} MiB {row.get('error', '')}",
              flush=True)

    for name in models:
        shape = shapes[name]
        family = shape["family"]
        workloads = [parse_workload(spec, shape["vocab_size"]) for spec in specs]
        base = dict(model=f"random:{name}", family=family, device=device)
        if over():
            for wname, seqs in workloads:
                for impl in impls:
                    emit(dict(base, impl=impl, mode=impl, workload=wname,
                              error="skipped: --budget-s spent"))
            continue
        t0 = time.perf_counter()
        try:
            if family == "qwen3":
                model = build_model(torch, name, "sdpa")
            else:
                model = build_family_model(torch, shape, "sdpa")
        except Exception as e:  # e.g. a transformers without the family: rows say so, go on
            detail = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            print(f"peer_torch: {name}: building the transformers model failed: {detail}",
                  file=sys.stderr)
            for wname, seqs in workloads:
                for impl in impls:
                    emit(dict(base, impl=impl, mode=impl, workload=wname,
                              error="model build failed", detail=detail))
            torch.cuda.empty_cache()
            continue
        weights = None if family == "qwen3" else dict(model.named_parameters())
        mismatches = []
        if args.check and family != "qwen3":
            try:
                mismatches = hf_config_mismatches(torch, shape, model)
            except Exception as e:  # a transformers layout this does not know: say so, go on
                mismatches = [f"not inspected ({type(e).__name__}: {str(e)[:120]})"]
        for line in mismatches:
            print(f"peer_torch: {name}: config mismatch: {line}", file=sys.stderr)
        print(f"peer_torch: {name} built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        for wname, seqs in workloads:
            plan = Plan(seqs)
            tokens = sum(len(s) for s in seqs)
            results = {}
            for impl in impls:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                row = dict(base, impl=impl, mode=impl, workload=wname, tokens=tokens,
                           unique_tokens=plan.unique)
                if over():
                    row.update(error="skipped: --budget-s spent")
                    emit(row)
                    continue
                ran = set()
                try:
                    with torch.inference_mode():
                        if impl in ("hf-eager", "hf-sdpa"):
                            set_attention(model, impl[3:])
                            fn = lambda: hf_forward(torch, model, seqs)
                            flops = count_flops(shape, seqs, plan.unique, "off")
                            row["rows"] = len(seqs) * plan.max_len
                        elif family == "qwen3":
                            fn = lambda: radixmlp_forward(torch, model, plan, len(seqs))
                            flops = count_flops(shape, seqs, plan.unique, "scatter")
                            row["rows"] = plan.unique
                        else:
                            fn = lambda: family_radixmlp_forward(torch, shape, weights, plan,
                                                                 len(seqs), ran=ran)
                            flops = count_flops(shape, seqs, plan.unique, "scatter")
                            row["rows"] = plan.unique
                        results[impl] = fn()
                        ms = timed(torch, fn, args.warmup, args.repetitions)
                    med = statistics.median(ms)
                    row.update(median_ms=med, min_ms=min(ms), max_ms=max(ms),
                               repetitions=args.repetitions, tokens_per_s=tokens / (med / 1e3),
                               gflop=flops / 1e9, tflops_effective=flops / (med / 1e3) / 1e12,
                               gpu_peak_mib=torch.cuda.max_memory_allocated() / 2**20)
                except torch.cuda.OutOfMemoryError as e:
                    row.update(error="out of GPU memory", detail=str(e).split("\n")[0][:200])
                except Exception as e:  # one failing impl must not lose the others' rows
                    row.update(error=type(e).__name__, detail=str(e).split("\n")[0][:200])
                    print(f"peer_torch: {name} {wname} {impl} failed: {row['detail']}",
                          file=sys.stderr)
                if ran:
                    row["attention"] = ",".join(sorted(ran))
                if args.check_layers and impl == "radixmlp-torch" and family != "qwen3" \
                        and impl in results:
                    try:
                        trace = []
                        with torch.inference_mode():
                            family_radixmlp_forward(torch, shape, weights, plan, len(seqs),
                                                    trace=trace)
                            set_attention(model, "sdpa")
                            states = hf_layer_states(torch, model, seqs)
                        row["layer_cosines_vs_hf_sdpa"] = [round(c, 5) for c in
                                                           layer_cosines(states, trace)]
                        del trace, states
                    except Exception as e:
                        row["layer_check_error"] = f"{type(e).__name__}: {str(e)[:200]}"
                    print(f"peer_torch: {name} {wname} per-layer cosines: "
                          f"{row.get('layer_cosines_vs_hf_sdpa', row.get('layer_check_error'))}",
                          file=sys.stderr)
                if args.check and mismatches:
                    row["hf_config_mismatches"] = mismatches
                if args.check and impl in results:
                    for ref in ("hf-sdpa", "hf-eager"):
                        if ref != impl and ref in results:
                            a, b = results[impl], results[ref]
                            row[f"min_cosine_vs_{ref.replace('-', '_')}"] = \
                                float((a * b).sum(-1).min())
                emit(row)
        del model, weights
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
