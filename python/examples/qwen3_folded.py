"""Runs a Qwen3 model's position-wise layers on folded rows (radix.fold + radix.torch).

The embedding, every RMSNorm, the q/k/v/o projections, the q/k head norms, RoPE, the MLP and the
LM head run once per compact row (unique (token, position) prefix); only attention runs on the flat
tokens, between an unfold of q, k, v and a fold of its output. The logits and every parameter
gradient equal the plain forward's (tests/python/test_py_torch.py proves it).

`folded_forward` reads the module layout of Hugging Face's Qwen3ForCausalLM (model.embed_tokens,
model.layers[i].self_attn.q_proj, ..., model.norm, lm_head), so it runs on a transformers model as
is. `TinyQwen3` is a small own model with that layout and `plain_forward` its per-token reference,
written from the Qwen3 architecture (RMSNorm in fp32, per-head q/k RMSNorm before RoPE, rotate-half
RoPE, grouped-query attention, SiLU-gated MLP), for machines whose PyTorch is too old for
transformers' Qwen3.

    python python/examples/qwen3_folded.py
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

import radix
import radix.torch as rt


@dataclass
class Qwen3Config:
    vocab_size: int = 97
    hidden_size: int = 32
    intermediate_size: int = 48
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 8
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.variance_epsilon = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * x.to(dtype)


class Attention(nn.Module):
    def __init__(self, c: Qwen3Config):
        super().__init__()
        d, h, kv = c.head_dim, c.num_attention_heads, c.num_key_value_heads
        self.q_proj = nn.Linear(c.hidden_size, h * d, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, kv * d, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, kv * d, bias=False)
        self.o_proj = nn.Linear(h * d, c.hidden_size, bias=False)
        self.q_norm = RMSNorm(d, c.rms_norm_eps)
        self.k_norm = RMSNorm(d, c.rms_norm_eps)


class MLP(nn.Module):
    def __init__(self, c: Qwen3Config):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, c: Qwen3Config):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)


class Backbone(nn.Module):
    def __init__(self, c: Qwen3Config):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(c) for _ in range(c.num_hidden_layers))
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)


class TinyQwen3(nn.Module):
    """Qwen3ForCausalLM's module layout, random weights (normal, std 0.02 like HF's init)."""

    def __init__(self, c: Qwen3Config):
        super().__init__()
        self.config = c
        self.model = Backbone(c)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        for name, p in self.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                nn.init.normal_(p, 1.0, 0.1)  # not all ones, so the norm weights matter
            else:
                nn.init.normal_(p, 0.0, 0.02)


def _head_dim(model):
    c = model.config
    return getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads


def rope_tables(model, positions, head_dim: int, dtype):
    """cos, sin: [n, 1, head_dim] for positions [n]. A transformers model's own rotary module
    (it knows the model's RoPE variant), else Qwen3's default RoPE with config.rope_theta."""
    rotary = getattr(model.model, "rotary_emb", None)
    if rotary is not None:
        probe = torch.zeros(1, len(positions), 1, dtype=dtype, device=positions.device)
        cos, sin = rotary(probe, positions[None])
        return cos[0][:, None, :], sin[0][:, None, :]
    theta = model.config.rope_theta
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device).float()
                                / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)[:, None, :]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rope(x, cos, sin):
    """x: [n, heads, head_dim] rotated in the rotate-half form."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


def causal_attention(q, k, v, cu_seqlens):
    """q: [n, h, d], k, v: [n, kv, d] flat tokens; causal within each sequence of cu_seqlens."""
    heads, kv_heads, d = q.shape[1], k.shape[1], q.shape[2]
    out = []
    for s in range(len(cu_seqlens) - 1):
        b, e = int(cu_seqlens[s]), int(cu_seqlens[s + 1])
        qs = q[b:e].transpose(0, 1)  # [h, L, d]
        ks = k[b:e].transpose(0, 1).repeat_interleave(heads // kv_heads, dim=0)
        vs = v[b:e].transpose(0, 1).repeat_interleave(heads // kv_heads, dim=0)
        scores = qs @ ks.transpose(1, 2) / math.sqrt(d)
        mask = torch.ones(e - b, e - b, dtype=torch.bool, device=q.device).triu(1)
        probs = scores.masked_fill(mask, float("-inf")).softmax(-1)
        out.append((probs @ vs).transpose(0, 1))  # [L, h, d]
    return torch.cat(out)


def _layer(layer, h, cos, sin, attend, head_dim):
    """One decoder layer on rows h ([rows, hidden]); attend(q, k, v) runs attention."""
    a = layer.self_attn
    x = layer.input_layernorm(h)
    n = x.shape[0]
    q = rope(a.q_norm(a.q_proj(x).view(n, -1, head_dim)), cos, sin)
    k = rope(a.k_norm(a.k_proj(x).view(n, -1, head_dim)), cos, sin)
    v = a.v_proj(x).view(n, -1, head_dim)
    h = h + a.o_proj(attend(q, k, v).reshape(n, -1))
    return h + layer.mlp(layer.post_attention_layernorm(h))


def plain_forward(model, input_ids, position_ids, cu_seqlens):
    """Reference: every layer on every flat token. Returns logits [num_tokens, vocab]."""
    head_dim = _head_dim(model)
    h = model.model.embed_tokens(input_ids)
    cos, sin = rope_tables(model, position_ids, head_dim, h.dtype)
    for layer in model.model.layers:
        h = _layer(layer, h, cos, sin, lambda q, k, v: causal_attention(q, k, v, cu_seqlens),
                   head_dim)
    return model.lm_head(model.model.norm(h))


def folded_forward(model, input_ids, position_ids, cu_seqlens, pad_multiple_of=None):
    """Position-wise layers on the compact rows, attention on the flat tokens.
    Returns (logits [num_tokens, vocab], the fold plan)."""
    head_dim = _head_dim(model)
    plan = radix.fold(input_ids, position_ids, cu_seqlens, pad_multiple_of=pad_multiple_of)

    def attend(q, k, v):
        flat = causal_attention(rt.unfold(q, plan), rt.unfold(k, plan), rt.unfold(v, plan),
                                cu_seqlens)
        return rt.fold(flat, plan)

    h = model.model.embed_tokens(plan.compact_input_ids.long())
    cos, sin = rope_tables(model, plan.compact_position_ids.long(), head_dim, h.dtype)
    for layer in model.model.layers:
        h = _layer(layer, h, cos, sin, attend, head_dim)
    return rt.unfold(model.lm_head(model.model.norm(h)), plan), plan


def main():
    torch.manual_seed(0)
    model = TinyQwen3(Qwen3Config())
    system = torch.randint(0, 97, (24,))
    seqs = [torch.cat([system, torch.randint(0, 97, (n,))]) for n in (5, 9, 3, 7)]
    ids = torch.cat(seqs)
    cu = torch.tensor([0] + [len(s) for s in seqs]).cumsum(0)
    pos = torch.cat([torch.arange(len(s)) for s in seqs])
    logits, plan = folded_forward(model, ids, pos, cu)
    ref = plain_forward(model, ids, pos, cu)
    print(f"{plan}; max |logits - plain| = {(logits - ref).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
