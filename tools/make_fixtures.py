#!/usr/bin/env python3
"""Makes the Hugging Face reference fixtures of the CPU engine (tests/fixtures/).

Run on the GPU machine, which has PyTorch and transformers (the model runs on its CPU in fp32):

    python3 tools/make_fixtures.py --out DIR

writes DIR/qwen3_tiny.json and DIR/hf_tiny_bf16/;

    python3 tools/make_fixtures.py --out DIR --families [NAME ...]

writes DIR/families/<name>/ for the other decoder families (Mistral, Qwen2 and a bidirectional
Qwen2, Llama with llama3 rope scaling and biases, Gemma, Gemma2 with soft-caps and a window): a
tiny seeded checkpoint saved by transformers in fp32 with reference.json (see FAMILY_SPECS).
Locally, without transformers,

    python3 tools/make_fixtures.py --out DIR --local

computes the same outputs with the independent PyTorch reference below instead of transformers
(to test this script and the C++ engine before spending GPU-machine time).

qwen3_tiny.json: a tiny Qwen3 (head_dim 128, vocab 10240) whose weights follow the integer
formula of tests/model/formula_weights.h (the C++ tests regenerate them bit for bit), some token
sequences with shared prefixes, and per sequence: the final-normed last hidden states of every
token (Qwen3Model), the L2-normalised last-token embedding, the reranker's yes/no logits from
Qwen3ForCausalLM (tied embeddings) and score softmax([no, yes])[1], and the logits of a
Qwen3ForSequenceClassification conversion (score.weight from the same formula).

hf_tiny_bf16/: a smaller Qwen3ForCausalLM with seeded random weights saved by save_pretrained in
bf16, sharded (model.safetensors.index.json), with reference.json holding its fp32 hidden states:
it checks the loader against files and a config.json written by transformers itself.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

MASK64 = (1 << 64) - 1

TINY_CONFIG = {
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 128,
    "vocab_size": 10240,
    "max_position_embeddings": 4096,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "attention_bias": False,
    "use_sliding_window": False,
}
NUM_LABELS = 3
HF_FOLDER_SEQUENCES = [[1, 2, 3, 4, 5], [1, 2, 3, 9, 8, 7, 6], [300], [11, 12, 13, 14, 15, 16, 17, 18]]
YES_ID, NO_ID = 9693, 2152


# ---- the weight formula (exact integer arithmetic; mirrors tests/model/formula_weights.h) ----
def mix64(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(MASK64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for c in text.encode():
        h ^= c
        h = (h * 0x100000001B3) & MASK64
    return h


def formula_tensor(name, shape):
    n = int(np.prod(shape))
    with np.errstate(over="ignore"):
        seed = mix64(np.array([fnv1a64(name)], dtype=np.uint64))[0]
        h = mix64(np.arange(n, dtype=np.uint64) ^ seed)
    if name.endswith("norm.weight"):
        k = (h >> np.uint64(56)).astype(np.int64) - 128
        v = 1.0 + k.astype(np.float64) / 1024.0
    else:
        k = (h >> np.uint64(40)).astype(np.int64) - (1 << 23)
        v = k.astype(np.float64) * (2.0**-23 if name == "embed_tokens.weight" else 2.0**-27)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def expected_shapes(cfg, num_labels=0):
    h, d, i = cfg["hidden_size"], cfg["head_dim"], cfg["intermediate_size"]
    hq, hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    out = {"embed_tokens.weight": (cfg["vocab_size"], h), "norm.weight": (h,)}
    for l in range(cfg["num_hidden_layers"]):
        p = f"layers.{l}."
        out.update({
            p + "input_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (hq * d, h),
            p + "self_attn.k_proj.weight": (hkv * d, h),
            p + "self_attn.v_proj.weight": (hkv * d, h),
            p + "self_attn.o_proj.weight": (h, hq * d),
            p + "self_attn.q_norm.weight": (d,),
            p + "self_attn.k_norm.weight": (d,),
            p + "post_attention_layernorm.weight": (h,),
            p + "mlp.gate_proj.weight": (i, h),
            p + "mlp.up_proj.weight": (i, h),
            p + "mlp.down_proj.weight": (h, i),
        })
    if num_labels:
        out["score.weight"] = (num_labels, h)
    return out


# ---- an independent PyTorch Qwen3 (fp32), used locally and cross-checked against HF -------
def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def reference_hidden(cfg, w, ids):
    """Final-normed hidden states [len(ids), hidden] of one sequence at positions 0..L-1."""
    eps, d = cfg["rms_norm_eps"], cfg["head_dim"]
    hq, hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    L = len(ids)
    x = w["embed_tokens.weight"][torch.tensor(ids)]
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    freqs = torch.arange(L).float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    causal = torch.full((L, L), float("-inf")).triu(1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(L, hq, d)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(L, hkv, d)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(L, hkv, d)
        q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
        k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(hq // hkv, dim=1)
        v = v.repeat_interleave(hq // hkv, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q, k) * d**-0.5 + causal
        o = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(L, hq * d)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    return rms_norm(x, w["norm.weight"], eps)


# ---- the sequences --------------------------------------------------------------------------
def make_sequences():
    rng = np.random.default_rng(7)
    tok = lambda n: [int(t) for t in rng.integers(3, 10240, size=n)]
    prefix = tok(24)
    s1, s2, s3 = tok(8), tok(13), tok(5)
    seqs = [
        prefix + s1,                 # 0
        prefix + s2,                 # 1
        prefix[:11] + s3,            # 2: branches inside the prefix
        tok(1),                      # 3: a single token
        tok(41),                     # 4: no sharing
        prefix + s1 + tok(6),        # 5: extends sequence 0
        prefix + s1,                 # 6: duplicate of sequence 0
        prefix[:1],                  # 7: a prefix of sequence 0 of length 1
        [YES_ID, NO_ID] + tok(9),    # 8: the reranker ids as tokens
        prefix + s2[:4] + [YES_ID],  # 9: branches inside s2
    ]
    batches = [[0, 1, 2, 5, 6, 7, 9], [3, 4, 8], list(range(len(seqs)))]
    return seqs, batches


def tiny_outputs_reference(cfg, w, seqs):
    out = {"hidden_states": [], "embeddings": [], "yes_logit": [], "no_logit": [], "score": [],
           "classifier_logits": []}
    for ids in seqs:
        hs = reference_hidden(cfg, w, ids)
        last = hs[-1]
        out["hidden_states"].append(hs)
        out["embeddings"].append(torch.nn.functional.normalize(last, dim=-1))
        yes = float(last @ w["embed_tokens.weight"][YES_ID])
        no = float(last @ w["embed_tokens.weight"][NO_ID])
        out["yes_logit"].append(yes)
        out["no_logit"].append(no)
        out["score"].append(float(torch.tensor([no, yes]).softmax(-1)[1]))
        out["classifier_logits"].append(last @ w["score.weight"].T)
    return out


def tiny_outputs_hf(cfg, w, seqs):
    import transformers
    from transformers import (Qwen3Config, Qwen3ForCausalLM, Qwen3ForSequenceClassification,
                              Qwen3Model)
    print("transformers", transformers.__version__, "torch", torch.__version__, flush=True)

    def hf_config(**extra):
        kw = {k: v for k, v in cfg.items() if k not in ("architectures", "model_type")}
        kw.update(extra)
        conf = Qwen3Config(**kw)
        # transformers 5 keeps RoPE settings in rope_parameters; make sure theta took effect.
        rp = getattr(conf, "rope_parameters", None)
        if isinstance(rp, dict):
            rp["rope_theta"] = cfg["rope_theta"]
        conf._attn_implementation = "eager"
        return conf

    def fill(model, w):
        for name, param in model.named_parameters():
            key = name[len("model."):] if name.startswith("model.") else name
            if key not in w:
                raise SystemExit(f"HF parameter {name} has no formula tensor")
            if tuple(param.shape) != tuple(w[key].shape):
                raise SystemExit(f"HF parameter {name} shape {tuple(param.shape)} != {tuple(w[key].shape)}")
            with torch.no_grad():
                param.copy_(w[key])
        model.eval()
        return model

    def check_rope(model):
        inv = None
        for name, buf in model.named_buffers():
            if name.endswith("inv_freq"):
                inv = buf
        d = cfg["head_dim"]
        want = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
        if inv is None or not torch.allclose(inv.float(), want, rtol=1e-6, atol=0):
            raise SystemExit(f"HF rotary inv_freq does not match rope_theta {cfg['rope_theta']}")

    torch.manual_seed(0)
    base = fill(Qwen3Model(hf_config()).float(), w)
    check_rope(base)
    lm = fill(Qwen3ForCausalLM(hf_config()).float(), w)
    if not torch.equal(lm.lm_head.weight, lm.model.embed_tokens.weight):
        raise SystemExit("Qwen3ForCausalLM did not tie lm_head to embed_tokens")
    cls = fill(Qwen3ForSequenceClassification(hf_config(num_labels=NUM_LABELS)).float(), w)

    out = {"hidden_states": [], "embeddings": [], "yes_logit": [], "no_logit": [], "score": [],
           "classifier_logits": []}
    with torch.no_grad():
        for ids in seqs:
            x = torch.tensor([ids])
            hs = base(input_ids=x).last_hidden_state[0]
            out["hidden_states"].append(hs)
            out["embeddings"].append(torch.nn.functional.normalize(hs[-1], dim=-1))
            logits = lm(input_ids=x).logits[0, -1]
            yes, no = float(logits[YES_ID]), float(logits[NO_ID])
            out["yes_logit"].append(yes)
            out["no_logit"].append(no)
            out["score"].append(float(torch.stack([logits[NO_ID], logits[YES_ID]]).softmax(-1)[1]))
            out["classifier_logits"].append(cls(input_ids=x).logits[0])
    return out


def as_list(t):
    return [float(f"{v:.8g}") for v in t.reshape(-1).tolist()]


def write_tiny(out_dir, local):
    cfg = TINY_CONFIG
    w = {k: formula_tensor(k, s) for k, s in expected_shapes(cfg, NUM_LABELS).items()}
    seqs, batches = make_sequences()
    ref = tiny_outputs_reference(cfg, w, seqs)
    source = "local-reference"
    if not local:
        hf = tiny_outputs_hf(cfg, w, seqs)
        worst = max(float((a - b).abs().max() / b.abs().max())
                    for a, b in zip(ref["hidden_states"], hf["hidden_states"]))
        print(f"independent reference vs transformers: max rel err of hidden states {worst:.3g}")
        ref, source = hf, "transformers"
    fixture = {
        "source": source,
        "weights": "formula-v1 (tests/model/formula_weights.h)",
        "config": cfg,
        "num_labels": NUM_LABELS,
        "sequences": seqs,
        "batches": batches,
        "hidden_states": [as_list(h) for h in ref["hidden_states"]],
        "embeddings": [as_list(e) for e in ref["embeddings"]],
        "yes_logit": ref["yes_logit"],
        "no_logit": ref["no_logit"],
        "score": ref["score"],
        "classifier_logits": [as_list(c) for c in ref["classifier_logits"]],
    }
    path = os.path.join(out_dir, "qwen3_tiny.json")
    with open(path, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def write_hf_folder(out_dir):
    """A bf16, sharded checkpoint saved by transformers itself, with fp32 reference outputs."""
    from transformers import Qwen3Config, Qwen3ForCausalLM
    folder = os.path.join(out_dir, "hf_tiny_bf16")
    os.makedirs(folder, exist_ok=True)
    conf = Qwen3Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                       max_position_embeddings=512, rms_norm_eps=1e-6, tie_word_embeddings=True)
    conf._attn_implementation = "eager"
    torch.manual_seed(1234)
    model = Qwen3ForCausalLM(conf).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:  # make the norm weights matter
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    model = model.to(torch.bfloat16)
    model.save_pretrained(folder, max_shard_size="100KB")
    model = model.float()  # bf16 values are exact in fp32: the reference sees the saved weights
    seqs = HF_FOLDER_SEQUENCES
    ref = {"sequences": seqs, "hidden_states": [], "embeddings": []}
    with torch.no_grad():
        for ids in seqs:
            hs = model.model(input_ids=torch.tensor([ids])).last_hidden_state[0]
            ref["hidden_states"].append(as_list(hs))
            ref["embeddings"].append(as_list(torch.nn.functional.normalize(hs[-1], dim=-1)))
    ref["source"] = "transformers"
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
    write_folder_extras(folder)
    for name in sorted(os.listdir(folder)):
        print("  ", name, os.path.getsize(os.path.join(folder, name)))


def write_folder_extras(folder):
    """The sentence-transformers files of hf_tiny_bf16 (written by this script, not by HF)."""
    os.makedirs(os.path.join(folder, "1_Pooling"), exist_ok=True)
    with open(os.path.join(folder, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 64, "pooling_mode_lasttoken": True,
                   "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": False}, f)
    with open(os.path.join(folder, "config_sentence_transformers.json"), "w") as f:
        json.dump({"prompts": {"query": "Instruct: test\nQuery:", "document": ""},
                   "default_prompt_name": None}, f)


def read_safetensors(path):
    """{name: fp32 tensor} from one safetensors file (F32/BF16/F16), without the safetensors lib."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = data[8 + n + b:8 + n + end]
        if e["dtype"] == "BF16":
            v = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif e["dtype"] == "F16":
            v = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
        else:
            v = np.frombuffer(raw, dtype=np.float32)
        out[name] = torch.from_numpy(v.copy().reshape(e["shape"]))
    return out


def complete_hf_folder(folder):
    """Writes reference.json (and the extras) for a hf_tiny_bf16 folder whose reference.json did
    not come back from the GPU machine: same sequences, computed by the independent reference
    from the saved bf16 weights. On qwen3_tiny that reference matched transformers 5.17 with a
    max relative error of 0 on every hidden state (run log in tests/fixtures/README.md)."""
    with open(os.path.join(folder, "config.json")) as f:
        conf = json.load(f)
    cfg = dict(conf)
    cfg["rope_theta"] = conf.get("rope_parameters", {}).get("rope_theta", conf.get("rope_theta"))
    w = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            for k, v in read_safetensors(os.path.join(folder, name)).items():
                w[k[len("model."):] if k.startswith("model.") else k] = v
    seqs = HF_FOLDER_SEQUENCES
    ref = {"sequences": seqs, "hidden_states": [], "embeddings": [],
           "source": "independent PyTorch reference (tools/make_fixtures.py --complete)"}
    for ids in seqs:
        hs = reference_hidden(cfg, w, ids)
        ref["hidden_states"].append(as_list(hs))
        ref["embeddings"].append(as_list(torch.nn.functional.normalize(hs[-1], dim=-1)))
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
    write_folder_extras(folder)
    print("completed", folder)


# ---- the other decoder families (tests/fixtures/families/<name>/) -----------------------------
# Each: a tiny checkpoint made by transformers itself (seeded random weights, larger than HF's
# init so attention is far from uniform, norm weights and biases randomised), saved in fp32 with
# its transformers-5 config.json, and reference.json with HF's outputs per sequence: the
# final-normed hidden states of every token, last-token and mean-pooled embeddings, the LM
# logits of a few named tokens at the last position (after Gemma2's final soft-cap), and the
# rotary inv_freq buffer (to check radix's host-side rope scaling).
FAMILY_VOCAB = 256
FAMILY_HEAD_TOKENS = [7, 200]  # the "yes", "no" pair of the reranker tests
FAMILY_COMMON = dict(vocab_size=FAMILY_VOCAB, hidden_size=64, intermediate_size=96,
                     num_hidden_layers=2, max_position_embeddings=256, rms_norm_eps=1e-6,
                     initializer_range=0.1)
FAMILY_SPECS = {
    # name: (config class, causal-LM class, config kwargs, bidirectional)
    "mistral": ("MistralConfig", "MistralForCausalLM",
                dict(num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=5,
                     tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}), False),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM",
              dict(num_attention_heads=4, num_key_value_heads=2, use_sliding_window=True,
                   sliding_window=5, max_window_layers=1, tie_word_embeddings=True,
                   rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), False),
    "qwen2_bidirectional": ("Qwen2Config", "Qwen2ForCausalLM",
                            dict(num_attention_heads=4, num_key_value_heads=2,
                                 use_sliding_window=False, tie_word_embeddings=False,
                                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, is_causal=False), True),
    "llama": ("LlamaConfig", "LlamaForCausalLM",
              dict(num_attention_heads=4, num_key_value_heads=1, head_dim=32,
                   attention_bias=True, mlp_bias=True, tie_word_embeddings=False,
                   rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                    "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 64}), False),
    "gemma": ("GemmaConfig", "GemmaForCausalLM",
              dict(num_attention_heads=4, num_key_value_heads=1, head_dim=32,
                   hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh",
                   rope_parameters={"rope_type": "default", "rope_theta": 10000.0}), False),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM",
               dict(num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                    hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh",
                    query_pre_attn_scalar=24, sliding_window=5, attn_logit_softcapping=1.5,
                    final_logit_softcapping=3.0, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}), False),
}


def family_sequences():
    """Shared prefixes, a duplicate, sequences that are prefixes of others, lengths well past the
    windows of 5 positions."""
    rng = np.random.default_rng(11)
    tok = lambda n: [int(t) for t in rng.integers(1, FAMILY_VOCAB, size=n)]
    prefix = tok(9)
    a, b, c = tok(6), tok(4), tok(5)
    seqs = [
        prefix + a,             # 0
        prefix + b,             # 1
        prefix[:3] + c,         # 2: branches early
        tok(1),                 # 3: a single token
        tok(14),                # 4: no sharing
        prefix + a + tok(3),    # 5: extends 0
        prefix + a,             # 6: duplicate of 0
        prefix[:1],             # 7: a prefix of 0 of length 1
        prefix[:7],             # 8: a prefix of 0 ending inside the shared part
    ]
    batches = [[0, 1, 2, 5, 6, 7, 8], [3, 4], list(range(len(seqs)))]
    return seqs, batches


def family_model(name):
    import transformers
    conf_name, lm_name, extra, bidirectional = FAMILY_SPECS[name]
    kw = dict(FAMILY_COMMON)
    kw.update(extra)
    conf = getattr(transformers, conf_name)(**kw)
    rp = getattr(conf, "rope_parameters", None)
    if isinstance(rp, dict):  # make sure the rope settings took effect (transformers 5)
        rp.update(kw["rope_parameters"])
    conf._attn_implementation = "eager"
    torch.manual_seed(1000 + sorted(FAMILY_SPECS).index(name))
    model = getattr(transformers, lm_name)(conf).float().eval()
    gemma = name.startswith("gemma")
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                # Gemma stores w with the norm applying (1 + w): randomise around 0, else around 1.
                p.copy_((0.0 if gemma else 1.0) + 0.2 * torch.randn_like(p))
            elif pname.endswith(".bias"):
                p.copy_(0.2 * torch.randn_like(p))
    return model, conf, bidirectional


def inv_freq_of(model):
    for bname, buf in model.named_buffers():
        if bname.endswith("inv_freq"):
            return buf.float()
    return None


def write_family(out_dir, name):
    import transformers
    model, conf, bidirectional = family_model(name)
    folder = os.path.join(out_dir, "families", name)
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder)
    seqs, batches = family_sequences()
    ref = {"source": f"transformers {transformers.__version__}", "family": name,
           "bidirectional": bidirectional, "head_tokens": FAMILY_HEAD_TOKENS,
           "sequences": seqs, "batches": batches, "hidden_states": [], "last_embeddings": [],
           "mean_embeddings": [], "head_logits": []}
    inv = inv_freq_of(model)
    ref["inv_freq"] = as_list(inv) if inv is not None else None
    base = model.model
    if bidirectional:
        # Bidirectional: no mask at all (one unpadded sequence per call), on the eager path, where
        # attention adds the mask only when there is one.
        import importlib
        mod = importlib.import_module(type(base).__module__)
        mod.create_causal_mask = lambda *a, **k: None
        if hasattr(mod, "create_sliding_window_causal_mask"):
            mod.create_sliding_window_causal_mask = lambda *a, **k: None
        for m in model.modules():
            if hasattr(m, "is_causal"):
                m.is_causal = False
    with torch.no_grad():
        window_effect = 0.0
        for ids in seqs:
            x = torch.tensor([ids])
            hs = base(input_ids=x).last_hidden_state[0]
            ref["hidden_states"].append(as_list(hs))
            ref["last_embeddings"].append(as_list(torch.nn.functional.normalize(hs[-1], dim=-1)))
            ref["mean_embeddings"].append(
                as_list(torch.nn.functional.normalize(hs.mean(0), dim=-1)))
            logits = model(input_ids=x).logits[0, -1]
            ref["head_logits"].append([float(logits[t]) for t in FAMILY_HEAD_TOKENS])
        if bidirectional:
            # The same sequence must differ from a causal run at its first token.
            ids = seqs[0]
            first = base(input_ids=torch.tensor([ids])).last_hidden_state[0, 0]
            alone = base(input_ids=torch.tensor([ids[:1]])).last_hidden_state[0, 0]
            window_effect = float((first - alone).abs().max())
        elif getattr(conf, "sliding_window", None):
          try:
            # How much the window changes the longest sequence (0 would make the test vacuous).
            longest = max(seqs, key=len)
            conf_full = type(conf)(**{**conf.to_dict(), "sliding_window": None,
                                      "use_sliding_window": False})
            conf_full._attn_implementation = "eager"
            conf_full.layer_types = ["full_attention"] * conf.num_hidden_layers
            full = type(model)(conf_full).float().eval()
            full.load_state_dict(model.state_dict())
            a = base(input_ids=torch.tensor([longest])).last_hidden_state[0]
            b = full.model(input_ids=torch.tensor([longest])).last_hidden_state[0]
            window_effect = float((a - b).abs().max())
          except Exception as e:  # informative only
            print(f"{name}: window effect check failed: {e}", flush=True)
            window_effect = -1.0
    ref["effect_check"] = window_effect
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
    total = sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder))
    print(f"{name}: {total} bytes, layer_types {getattr(conf, 'layer_types', None)}, "
          f"effect of window/bidirectional {window_effect:.3g}, inv_freq[-1] "
          f"{ref['inv_freq'][-1] if ref['inv_freq'] else None}", flush=True)


def write_families(out_dir, names):
    failed = []
    for name in names:
        try:
            write_family(out_dir, name)
        except Exception as e:  # keep the others
            import traceback
            traceback.print_exc()
            print(f"{name} FAILED: {e}", flush=True)
            failed.append(name)
    return failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out")
    parser.add_argument("--complete", metavar="FOLDER",
                        help="write reference.json and the extras of a saved hf_tiny_bf16 folder")
    parser.add_argument("--families", nargs="*", metavar="NAME",
                        help="only the family fixtures (all of FAMILY_SPECS when no name given)")
    parser.add_argument("--local", action="store_true",
                        help="no transformers: use the independent PyTorch reference")
    args = parser.parse_args()
    if args.complete:
        complete_hf_folder(args.complete)
        return 0
    if not args.out:
        parser.error("--out is required")
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    if args.families is not None:
        failed = write_families(args.out, args.families or sorted(FAMILY_SPECS))
        return 1 if failed else 0
    write_tiny(args.out, args.local)
    if not args.local:
        try:
            write_hf_folder(args.out)
        except Exception as e:  # keep qwen3_tiny.json even if this part fails
            import traceback
            traceback.print_exc()
            print(f"hf_tiny_bf16 FAILED: {e}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
