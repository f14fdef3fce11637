"""bench/peer_torch.py's parts that need no GPU: its workload generator and FLOP count against
`radix bench model --json`, its model shapes against radix's presets, and (with PyTorch) its
RadixMLP forward for every family on the CPU: folded rows against one row per token, and against
a plain per-sequence forward written here. The timed peers themselves need CUDA and transformers
and run on the GPU machine (scripts/gpu_check.sh)."""
import importlib.util
import json
import math
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("peer_torch", REPO / "bench" / "peer_torch.py")
peer = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = peer
_spec.loader.exec_module(peer)  # the module imports torch and transformers lazily

WORKLOADS = ["syn:B=4,P=16,S=8", "rerank-like:G=3,D=2", "wide:B=5,L=12,P=4,seed=3"]


def radix_rows(radix_bin, model, workloads, modes):
    args = [str(radix_bin), "bench", "model", "--model", model, "--modes", modes, "--warmup", "0",
            "--repetitions", "1", "--threads", "1", "--json"]
    for w in workloads:
        args += ["--workload", w]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("head_dim,vocab", [(16, 151669), (32, 32000), (64, 1000)])
def test_workloads_and_flops_match_radix(radix_bin, head_dim, vocab):
    # A custom shape whose q width differs from hidden (heads * head_dim != hidden) and whose
    # vocabulary is below, near and above the workload's id range.
    cfg = dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
               head_dim=head_dim, intermediate_size=80, vocab_size=vocab)
    model = (f"random:hidden=48,layers=2,heads=4,kv_heads=2,head_dim={head_dim},"
             f"intermediate=80,vocab={vocab}")
    rows = radix_rows(radix_bin, model, WORKLOADS, "off,scatter")
    assert len(rows) == 2 * len(WORKLOADS)
    for row in rows:
        name, seqs = peer.parse_workload(row["workload"], vocab)
        assert name == row["workload"]
        assert all(peer.TOKEN_LO <= t < min(vocab, peer.TOKEN_HI) for s in seqs for t in s)
        plan = peer.Plan(seqs)
        assert sum(len(s) for s in seqs) == row["tokens"]
        assert plan.unique == row["unique_tokens"], row["workload"]
        assert sum(len(s) * (len(s) + 1) // 2 for s in seqs) == row["attention_pairs"]
        flops = peer.count_flops(cfg, seqs, plan.unique, row["mode"])
        assert flops / 1e9 == pytest.approx(row["gflop"], rel=1e-12), row


def test_default_vocabulary_keeps_the_qwen3_workloads():
    # Qwen3's vocabulary (151,669) is above the id range: the same ids as before the cut.
    for spec in WORKLOADS:
        assert peer.parse_workload(spec, 151669) == peer.parse_workload(spec)
    _, small = peer.parse_workload("syn:B=4,P=16,S=8", 32000)
    assert max(t for s in small for t in s) < 32000


def preset_fields(family):
    """The `c.<field> = <value>` assignments of the preset() of src/model/families/<family>.cc."""
    text = (REPO / "src" / "model" / "families" / f"{family}.cc").read_text()
    body = text[text.index("DecoderConfig preset("):]
    body = body[:body.index("return c;")]
    fields = {}
    for key, value in re.findall(r"c\.(\w+) = ([^,;]+)", body):
        value = value.strip()
        try:
            fields[key] = float(value)
        except ValueError:
            fields[key] = value
    return fields


RADIX_NAMES = {"attn_logit_softcap": "attn_logit_softcapping",
               "final_logit_softcap": "final_logit_softcapping"}


@pytest.mark.parametrize("name", sorted(peer.FAMILY_SHAPES))
def test_family_shapes_are_radix_presets(name):
    spec = peer.model_spec(name)
    fields = preset_fields(spec["family"])
    assert name in (REPO / "src" / "model" / "families" / f"{spec['family']}.cc").read_text()
    compared = 0
    for key, value in fields.items():
        key = RADIX_NAMES.get(key, key)
        if isinstance(value, float) and key in spec:
            assert float(spec[key]) == value, (name, key)
            compared += 1
        elif key == "tie_word_embeddings":
            assert spec[key] == (value == "true"), name
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "head_dim", "vocab_size"):
        assert key in fields, (name, key)
    assert compared >= 9, (name, fields)
    # Which layers slide: every one (Mistral), the even ones (Gemma2's l % 2 == 0).
    text = (REPO / "src" / "model" / "families" / f"{spec['family']}.cc").read_text()
    windows = [peer.layer_window(spec, layer) for layer in range(4)]
    if "sliding_layers.assign(c.num_hidden_layers, true)" in text:
        assert windows == [spec["sliding_window"]] * 4
    elif "sliding_layers.push_back(l % 2 == 0)" in text:
        assert windows == [spec["sliding_window"], 0, spec["sliding_window"], 0]
    else:
        assert windows == [0] * 4


def test_qwen3_shapes_and_flops_unchanged():
    # The Qwen3 rows of bench/RESULTS.md: 8B on syn P2048 S256 scatter is 154,003 GFLOP in tree
    # mode's count only through the pairs; off's count must stay what it was.
    spec = peer.model_spec("qwen3-8b")
    _, seqs = peer.parse_workload("syn:B=32,P=2048,S=256", spec["vocab_size"])
    off = peer.count_flops(spec, seqs, 10240, "off")
    h, q, kv, inter, layers = 4096, 32 * 128, 8 * 128, 12288, 36
    params = h * (q + 2 * kv) + q * h + 3 * h * inter
    pairs = 32 * 2304 * 2305 // 2
    assert off == 2.0 * params * layers * 73728 + 4.0 * 128 * pairs * 32 * layers


# ---- the RadixMLP forward on the CPU (PyTorch) ----------------------------------------------------
def tiny(family, **extra):
    """A small model of the family, with the family's options (and a window shorter than the
    batch's sequences, a soft-cap that binds, llama3 rope scaling) so that every path runs."""
    spec = dict(family=family, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=1000,
                max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=10000.0)
    if family == "mistral":
        spec.update(sliding_window=7)
    if family == "llama":
        spec.update(rope_theta=500000.0, rope_scaling=dict(
            rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
            original_max_position_embeddings=64), attention_bias=True, mlp_bias=True)
    if family == "gemma2":
        spec.update(query_pre_attn_scalar=24, attn_logit_softcapping=0.5, sliding_window=5)
    spec.update(extra)
    return spec


def batch():
    # Shared prefixes, a duplicate, a sequence that is a prefix of another, lengths past windows.
    a = [5, 9, 13, 2, 7, 11, 3, 8, 1, 4, 6, 10]
    return [a, a[:7] + [99, 98, 97], a, a[:5], [17, 18, 19], a[:9] + [50, 51, 52, 53]]


def reference_forward(torch, spec, w, seqs):
    """Each sequence alone, token by token in the plain layout: what the families' transformers
    models compute (written apart from peer_torch's fold-aware code)."""
    F = torch.nn.functional
    o = peer.family_options(spec)
    hq, hkv, d = spec["num_attention_heads"], spec["num_key_value_heads"], spec["head_dim"]
    eps = spec["rms_norm_eps"]
    scale = 1.0 / math.sqrt(spec.get("query_pre_attn_scalar") or d)
    cap = spec.get("attn_logit_softcapping") or 0

    def norm(x, wt):
        y = x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps)
        return y * (1 + wt) if o["plus_one"] else y * wt

    def lin(x, name):
        return F.linear(x, w[name + ".weight"], w.get(name + ".bias"))

    inv = peer.rope_inv_freq(torch, spec)
    outs = []
    for seq in seqs:
        n = len(seq)
        x = w["embed_tokens.weight"][torch.tensor(seq)]
        if o["scale_embeddings"]:
            x = x * math.sqrt(spec["hidden_size"])
        ang = torch.arange(n).float()[:, None] * inv[None, :]
        cos, sin = torch.cos(ang), torch.sin(ang)

        def rope(t):  # t: [n, heads, d]; halves rotated as transformers' rotate_half
            t1, t2 = t[..., :d // 2], t[..., d // 2:]
            c, s = cos[:, None, :], sin[:, None, :]
            return torch.cat((t1 * c - t2 * s, t2 * c + t1 * s), dim=-1)

        for layer in range(spec["num_hidden_layers"]):
            p = f"layers.{layer}."
            h = norm(x, w[p + "input_layernorm.weight"])
            q = rope(lin(h, p + "self_attn.q_proj").view(n, hq, d))
            k = rope(lin(h, p + "self_attn.k_proj").view(n, hkv, d))
            v = lin(h, p + "self_attn.v_proj").view(n, hkv, d)
            window = peer.layer_window(spec, layer)
            out = torch.zeros(n, hq, d)
            for head in range(hq):
                kvh = head // (hq // hkv)
                for i in range(n):
                    keys = [j for j in range(i + 1) if not window or i - j < window]
                    s = torch.stack([(q[i, head] * k[j, kvh]).sum() * scale for j in keys])
                    if cap:
                        s = cap * torch.tanh(s / cap)
                    pr = torch.softmax(s, 0)
                    out[i, head] = (pr[:, None] * v[keys, kvh]).sum(0)
            a = lin(out.reshape(n, hq * d), p + "self_attn.o_proj")
            act = (lambda t: F.gelu(t, approximate="tanh")) if o["gelu_tanh"] else F.silu

            def mlp(t):
                return lin(act(lin(t, p + "mlp.gate_proj")) * lin(t, p + "mlp.up_proj"),
                           p + "mlp.down_proj")
            if o["sandwich"]:
                x = x + norm(a, w[p + "post_attention_layernorm.weight"])
                x = x + norm(mlp(norm(x, w[p + "pre_feedforward_layernorm.weight"])),
                             w[p + "post_feedforward_layernorm.weight"])
            else:
                x = x + a
                x = x + mlp(norm(x, w[p + "post_attention_layernorm.weight"]))
        outs.append(F.normalize(norm(x[-1], w["norm.weight"]), dim=-1))
    return torch.stack(outs)


FAMILIES = ["mistral", "qwen2", "llama", "gemma", "gemma2"]


@pytest.mark.parametrize("family", FAMILIES)
def test_radixmlp_family_forward_on_cpu(family):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed for this interpreter "
                                "(Debian's python3-torch serves /usr/bin/python3)")
    torch.manual_seed(0)
    spec = tiny(family)
    w = peer.random_weights(torch, spec, seed=1)
    # Norm weights away from their neutral value, so (1 + w) against w is tested.
    for name, t in w.items():
        if "norm" in name:
            t.uniform_(-0.3, 0.3) if peer.family_options(spec)["plus_one"] else t.uniform_(0.7, 1.3)
    # Larger projections so the soft-cap and the windows change the output measurably.
    for name, t in w.items():
        if "proj" in name:
            t.mul_(12.0)
    seqs = batch()
    ran = set()
    folded = peer.family_radixmlp_forward(torch, spec, w, peer.Plan(seqs), len(seqs),
                                          impl="explicit", ran=ran)
    flat = peer.family_radixmlp_forward(torch, spec, w, peer.Plan(seqs, fold=False), len(seqs),
                                        impl="explicit")
    ref = reference_forward(torch, spec, w, seqs)
    assert ran == {"explicit"}
    assert peer.Plan(seqs).unique < peer.Plan(seqs, fold=False).unique
    # fp32 throughout; the folded and flat runs differ only in GEMM row counts and summation
    # order (1e-5 on unit vectors), the reference in its per-element loop (same bound).
    assert torch.allclose(folded, flat, atol=1e-5), (folded - flat).abs().max()
    assert torch.allclose(folded, ref, atol=1e-5), (folded - ref).abs().max()
    # Duplicates give identical rows.
    assert torch.equal(folded[0], folded[2])


def test_family_options_change_the_output():
    # The reference would agree with a wrong option if both ignored it: turning soft-cap and
    # window off must change the Gemma2 output.
    torch = pytest.importorskip("torch", reason="PyTorch is not installed for this interpreter")
    spec = tiny("gemma2")
    w = peer.random_weights(torch, spec, seed=2)
    for name, t in w.items():
        if "proj" in name:
            t.mul_(12.0)
    seqs = batch()
    base = peer.family_radixmlp_forward(torch, spec, w, peer.Plan(seqs), len(seqs),
                                        impl="explicit")
    for change in (dict(attn_logit_softcapping=0.0), dict(sliding_window=0)):
        other = peer.family_radixmlp_forward(torch, dict(spec, **change), w, peer.Plan(seqs),
                                             len(seqs), impl="explicit")
        assert (base - other).abs().max() > 1e-3, change


def test_llama3_rope_scaling_keeps_high_and_scales_low_frequencies():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed for this interpreter")
    spec = peer.model_spec("llama3-8b")
    scaled = peer.rope_inv_freq(torch, spec)
    plain = peer.rope_inv_freq(torch, dict(spec, rope_scaling=None))
    assert torch.allclose(scaled[:8], plain[:8])  # wavelength < 8192 / 4: unchanged
    assert torch.allclose(scaled[-4:], plain[-4:] / 8.0)  # wavelength > 8192: divided by 8


def test_gpu_peers_need_cuda_and_transformers():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed for this interpreter")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the timed peers (hf-*, radixmlp-torch on the GPU) run in "
                    "scripts/gpu_check.sh on the GPU machine")
    pytest.importorskip("transformers", reason="transformers is not installed")
    for name in peer.FAMILY_SHAPES:
        cfg = peer.hf_config(peer.model_spec(name), "sdpa")
        assert cfg.hidden_size == peer.FAMILY_SHAPES[name]["hidden_size"]


def test_main_rows_on_cpu(monkeypatch, capsys):
    # main()'s loop (rows, FLOPs, error rows, --budget-s) on the CPU: a tiny Gemma2 from
    # random_weights in place of the transformers model, torch.cuda's bookkeeping stubbed out.
    torch = pytest.importorskip("torch", reason="PyTorch is not installed for this interpreter")
    spec = tiny("gemma2")
    monkeypatch.setitem(peer.FAMILY_SHAPES, "tiny-gemma2", spec)

    class Model:
        def named_parameters(self):
            return peer.random_weights(torch, spec, seed=3).items()

        def __call__(self, **kwargs):
            raise RuntimeError("no transformers model in this test")

        def set_attn_implementation(self, attn):
            pass

    monkeypatch.setattr(peer, "build_family_model", lambda torch_, s, attn: Model())
    for name, fn in (("get_device_name", lambda: "cpu-test"), ("empty_cache", lambda: None),
                     ("reset_peak_memory_stats", lambda: None), ("synchronize", lambda: None),
                     ("max_memory_allocated", lambda: 0)):
        monkeypatch.setattr(torch.cuda, name, fn)
    monkeypatch.setattr(torch.cuda, "OutOfMemoryError", MemoryError, raising=False)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
    argv = ["peer_torch.py", "--model", "tiny-gemma2", "--workload", "syn:B=3,P=6,S=4",
            "--workload", "rerank-like:G=2,D=2", "--impls", "hf-sdpa,radixmlp-torch",
            "--warmup", "0", "--repetitions", "1", "--json", "--check"]
    monkeypatch.setattr(sys, "argv", argv)
    peer.main()
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["workload"], r["impl"]) for r in rows] == [
        ("syn:B=3,P=6,S=4", "hf-sdpa"), ("syn:B=3,P=6,S=4", "radixmlp-torch"),
        ("rerank-like:G=2,D=2", "hf-sdpa"), ("rerank-like:G=2,D=2", "radixmlp-torch")]
    for r in rows:
        _, seqs = peer.parse_workload(r["workload"], spec["vocab_size"])
        assert r["model"] == "random:tiny-gemma2" and r["family"] == "gemma2"
        assert r["tokens"] == sum(len(s) for s in seqs)
        if r["impl"] == "hf-sdpa":
            assert r["error"] == "RuntimeError" and "median_ms" not in r
        else:
            assert "error" not in r, r
            assert r["attention"] == "explicit"  # soft-cap on a CPU: no SDPA, no FlexAttention
            assert r["rows"] == r["unique_tokens"] == peer.Plan(seqs).unique
            flops = peer.count_flops(spec, seqs, r["unique_tokens"], "scatter")
            assert r["gflop"] == pytest.approx(flops / 1e9)
            assert r["tflops_effective"] > 0
            assert not any(k.startswith("min_cosine") for k in r)  # the HF rows failed

    monkeypatch.setattr(sys, "argv", argv + ["--budget-s", "1e-9"])
    peer.main()
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4 and all(r["error"].startswith("skipped") for r in rows)


@pytest.mark.parametrize("family", FAMILIES)
def test_radixmlp_family_forward_matches_transformers_on_cpu(family):
    # What `peer_torch --check` measures on the GPU, at tiny shapes in fp32 on the CPU: the
    # RadixMLP peer against the transformers model of the family on the same weights (the
    # config built by hf_config, the weights by their names), per layer at the last tokens.
    torch = pytest.importorskip("torch", reason="PyTorch is not installed for this interpreter "
                                "(Debian's python3-torch serves /usr/bin/python3)")
    transformers = pytest.importorskip(
        "transformers", reason="transformers is not installed (pip install 'transformers==4.44.2' "
        "runs on Debian's torch 1.13): the HF-vs-peer check needs it")
    if not hasattr(transformers, peer.HF_CLASSES[family][1]):
        pytest.skip(f"transformers {transformers.__version__} has no "
                    f"{peer.HF_CLASSES[family][1]}")
    torch.manual_seed(0)
    # hidden = heads * head_dim: transformers 4.4x's Llama derives head_dim from them.
    spec = tiny(family, hidden_size=64)
    model = peer.build_family_model(torch, spec, "eager", device="cpu", dtype=torch.float32)
    with torch.no_grad():
        for name, t in model.named_parameters():
            if "norm" in name:  # away from neutral, so w against (1 + w) is tested
                t.uniform_(-0.3, 0.3) if peer.family_options(spec)["plus_one"] else \
                    t.uniform_(0.7, 1.3)
            elif "proj" in name:  # so that the soft-cap and the windows bind
                t.mul_(12.0)
    # The config transformers built holds what the peer computes with (and a change is seen).
    assert peer.hf_config_mismatches(torch, spec, model) == []
    wrong = peer.hf_config_mismatches(torch, dict(spec, rms_norm_eps=1e-3, rope_theta=77.0), model)
    assert any("eps" in m for m in wrong) and any("inv_freq" in m for m in wrong), wrong
    w = dict(model.named_parameters())
    seqs = batch()
    trace, ran = [], set()
    with torch.no_grad():
        mine = peer.family_radixmlp_forward(torch, spec, w, peer.Plan(seqs), len(seqs),
                                            impl="explicit", ran=ran, trace=trace)
        states = peer.hf_layer_states(torch, model, seqs)
    cosines = peer.layer_cosines(states, trace)
    assert len(cosines) == spec["num_hidden_layers"] + 1
    # fp32 on both sides; they differ in summation order only (1e-5 on unit vectors).
    assert min(cosines) > 0.99999, cosines
    ref = torch.nn.functional.normalize(states[-1], dim=-1)
    assert torch.allclose(mine, ref, atol=1e-5), (mine - ref).abs().max()


@pytest.mark.parametrize("name", list(peer.FAMILY_SHAPES))
def test_preset_configs_reach_transformers(name):
    # The presets' own fields (eps, theta, llama3 scaling, windows, soft-cap, scalar) through
    # hf_config into the transformers model, at a few layers and a small width.
    torch = pytest.importorskip("torch", reason="PyTorch is not installed for this interpreter")
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    spec = peer.model_spec(name)
    if not hasattr(transformers, peer.HF_CLASSES[spec["family"]][1]):
        pytest.skip(f"transformers {transformers.__version__} has no "
                    f"{peer.HF_CLASSES[spec['family']][1]}")
    spec.update(num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=1,
                intermediate_size=32, vocab_size=100)
    spec["hidden_size"] = 2 * spec["head_dim"]
    model = peer.build_family_model(torch, spec, "eager", device="cpu", dtype=torch.float32)
    assert peer.hf_config_mismatches(torch, spec, model) == []


# ---- RoPE of the transformers model the peers are checked against ---------------------------------
def fake_transformers(torch, style):
    """A stand-in for the transformers package with one family (Mistral): its config stores what
    it is given, and its model's rotary embedding reads theta and llama3 scaling from the config
    the way transformers does in `style` ("v5": rope_parameters; "v4": rope_theta and
    rope_scaling), computes inv_freq in fp32 in float64 Python arithmetic, registers it as a
    non-persistent buffer and keeps `original_inv_freq` as a plain attribute aliasing it."""
    import types

    class MistralConfig:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)
            if style == "v5":  # the legacy kwargs are folded into rope_parameters, then reset
                self.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}
                self.__dict__.pop("rope_theta", None)

    def inv_freq_of(cfg):
        if style == "v5":
            rope = dict(cfg.rope_parameters)
        else:
            rope = dict(getattr(cfg, "rope_scaling", None) or {}, rope_theta=cfg.rope_theta)
        d = cfg.head_dim
        inv = [1.0 / rope["rope_theta"] ** (i / d) for i in range(0, d, 2)]
        if rope.get("rope_type") == "llama3":
            old, f = rope["original_max_position_embeddings"], rope["factor"]
            lo, hi = old / rope["low_freq_factor"], old / rope["high_freq_factor"]
            out = []
            for x in inv:
                wl = 2 * math.pi / x
                if wl < hi:
                    out.append(x)
                elif wl > lo:
                    out.append(x / f)
                else:
                    s = (old / wl - rope["low_freq_factor"]) / (
                        rope["high_freq_factor"] - rope["low_freq_factor"])
                    out.append((1 - s) * x / f + s * x)
            inv = out
        return torch.tensor(inv, dtype=torch.float32)

    class Rotary(torch.nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.register_buffer("inv_freq", inv_freq_of(cfg), persistent=False)
            self.original_inv_freq = self.inv_freq

    class MistralModel(torch.nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.config = cfg
            self.embed_tokens = torch.nn.Embedding(cfg.vocab_size, cfg.hidden_size)
            self.rotary_emb = Rotary(cfg)

    return types.SimpleNamespace(MistralConfig=MistralConfig, MistralModel=MistralModel)


@pytest.mark.parametrize("style", ["v4", "v5"])
@pytest.mark.parametrize("rope", ["theta", "llama3"])
def test_bf16_model_keeps_the_peers_rope(monkeypatch, style, rope):
    # The GPU check builds the transformers model in bf16: Module.to(bf16) also cast RoPE's
    # inv_freq buffer, so transformers rotated by 8-bit frequencies (phases off by radians at
    # position 2000: cosines vs the peer fell from layer 1 at P=2048, fine at P=48) while the
    # peer used fp32 ones. The model must keep inv_freq in fp32 and equal to the peer's, with
    # theta and llama3 scaling reaching it through either config style.
    torch = pytest.importorskip("torch", reason="PyTorch is not installed for this interpreter")
    monkeypatch.setitem(sys.modules, "transformers", fake_transformers(torch, style))
    spec = tiny("mistral", rope_theta=1e6, head_dim=64, hidden_size=128)
    if rope == "llama3":
        spec.update(rope_theta=500000.0, rope_scaling=dict(
            rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
            original_max_position_embeddings=64))
    model = peer.build_family_model(torch, spec, "sdpa", device="cpu", dtype=torch.bfloat16)
    assert model.embed_tokens.weight.dtype == torch.bfloat16
    inv = model.rotary_emb.inv_freq
    assert inv.dtype == torch.float32
    ours = peer.rope_inv_freq(torch, spec)
    assert torch.allclose(inv, ours, rtol=1e-6, atol=0), (inv - ours).abs().max()
    # What the peer rotates by at a long position equals what the model's table gives: fp32
    # phases near 2047 rad hold 2^-13 absolute, so cos/sin agree to a few 1e-4, where a bf16
    # inv_freq would be off by up to 1 (the phase by radians).
    pos = torch.tensor([2047])
    cos, sin = peer.rope_tables(torch, spec, pos, torch.float32)
    ang = pos.float()[:, None] * inv[None, :]
    assert torch.allclose(cos[:, 0, : inv.numel()], ang.cos(), atol=5e-4)
    assert torch.allclose(sin[:, 0, : inv.numel()], ang.sin(), atol=5e-4)
    bf16 = pos.float()[:, None] * inv.to(torch.bfloat16).float()[None, :]
    assert (bf16.cos() - ang.cos()).abs().max() > 0.1


def test_config_check_reads_the_inv_freq_the_forward_uses(monkeypatch):
    # transformers' layout after a plain Module.to(bf16): inv_freq (what its forward reads) cast,
    # original_inv_freq (a plain attribute) still fp32. The check must see the cast one.
    torch = pytest.importorskip("torch", reason="PyTorch is not installed for this interpreter")
    monkeypatch.setitem(sys.modules, "transformers", fake_transformers(torch, "v5"))
    spec = tiny("mistral", rope_theta=1e6, head_dim=64, hidden_size=128)
    import types
    model = peer.build_family_model(torch, spec, "sdpa", device="cpu", dtype=torch.float32)
    norm = types.SimpleNamespace(variance_epsilon=spec["rms_norm_eps"])
    attn = types.SimpleNamespace(scaling=spec["head_dim"] ** -0.5, sliding_window=7)
    layer = types.SimpleNamespace(input_layernorm=norm, post_attention_layernorm=norm,
                                  self_attn=attn)
    model.config.hidden_act = "silu"
    fake = types.SimpleNamespace(config=model.config, layers=[layer] * 3, norm=norm,
                                 rotary_emb=model.rotary_emb)
    assert peer.hf_config_mismatches(torch, spec, fake) == []
    model.rotary_emb._buffers["inv_freq"] = model.rotary_emb.inv_freq.to(torch.bfloat16)
    wrong = peer.hf_config_mismatches(torch, spec, fake)
    assert any("inv_freq held in torch.bfloat16" in m for m in wrong), wrong
    assert any("inv_freq: max relative difference" in m for m in wrong), wrong
