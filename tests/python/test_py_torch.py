"""radix.torch: fold/unfold autograd, and a Qwen3 model's position-wise layers on folded rows
giving the plain model's logits and parameter gradients."""
import importlib.util
import os
import pathlib
import sys

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed for this interpreter "
                            "(scripts/test.sh uses Debian's python3-torch with /usr/bin/python3)")
if os.environ.get("RADIX_PY_TESTS") != "1":
    pytest.importorskip("radix._core", reason="the radix Python package is not built for this "
                        "interpreter (scripts/test.sh builds it and runs these tests)")

import numpy as np  # noqa: E402

import radix  # noqa: E402
import radix.torch as rt  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("qwen3_folded",
                                              REPO / "python" / "examples" / "qwen3_folded.py")
example = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = example  # dataclasses look their module up
spec.loader.exec_module(example)


def prefix_sharing_batch(gen, vocab, num_seqs):
    """A shared system prompt, a few shared queries, random documents; sometimes a duplicate."""
    system = torch.randint(0, vocab, (int(torch.randint(1, 12, ())),), generator=gen)
    queries = [torch.randint(0, vocab, (int(torch.randint(1, 6, ())),), generator=gen)
               for _ in range(3)]
    seqs = []
    for i in range(num_seqs):
        if i and torch.rand((), generator=gen) < 0.15:
            seqs.append(seqs[-1].clone())  # an exact duplicate sequence
            continue
        q = queries[int(torch.randint(0, 3, (), generator=gen))]
        doc = torch.randint(0, vocab, (int(torch.randint(1, 9, (), generator=gen)),), generator=gen)
        seqs.append(torch.cat([system, q, doc]))
    ids = torch.cat(seqs)
    cu = torch.tensor([0] + [len(s) for s in seqs]).cumsum(0)
    pos = torch.cat([torch.arange(len(s)) for s in seqs])
    return ids, pos, cu


def test_fold_result_is_torch_on_the_input_device():
    ids = torch.tensor([1, 2, 3, 1, 2, 4], dtype=torch.int64)
    r = radix.fold(ids, cu_seq_lengths=torch.tensor([0, 3, 6]))
    for a in (r.compact_input_ids, r.scatter_indices, r.fold_gather, r.parent, r.subtree_end,
              r.last_token_rows):
        assert isinstance(a, torch.Tensor) and a.dtype == torch.int32 and a.device == ids.device
    assert r.compact_input_ids.tolist() == [1, 2, 3, 4]
    assert r.last_token_rows.tolist() == [2, 3]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device in this machine")
def test_fold_result_comes_back_on_cuda():
    ids = torch.tensor([1, 2, 3, 1, 2, 4], device="cuda")
    r = radix.fold(ids, cu_seq_lengths=torch.tensor([0, 3, 6], device="cuda"))
    assert r.scatter_indices.device == ids.device and r.scatter_indices.tolist() == [0, 1, 2, 0, 1, 3]


def test_fold_and_unfold_gradients_pass_gradcheck():
    ids, pos, cu = torch.tensor([1, 2, 3, 1, 2, 4, 1, 5]), None, torch.tensor([0, 3, 6, 8])
    for pad in (None, 4):
        plan = radix.fold(ids, pos, cu, pad_multiple_of=pad)
        hidden = torch.randn(plan.num_tokens, 3, dtype=torch.float64, requires_grad=True)
        rows = torch.randn(plan.num_rows, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda h: rt.fold(h, plan), (hidden,))
        assert torch.autograd.gradcheck(lambda r: rt.unfold(r, plan), (rows,))
        folded = rt.fold(hidden, plan)
        assert folded.shape[0] == plan.num_rows and torch.all(folded[plan.num_valid_rows:] == 0)


def test_unfold_backward_sums_the_tokens_of_a_row():
    plan = radix.fold(torch.tensor([7, 8, 7, 9]), cu_seq_lengths=torch.tensor([0, 2, 4]))
    rows = torch.zeros(plan.num_rows, requires_grad=True)
    rt.unfold(rows, plan).backward(torch.tensor([1.0, 10.0, 100.0, 1000.0]))
    assert rows.grad.tolist() == [101.0, 10.0, 1000.0]  # rows: (7@0), (8@1), (9@1)


def test_bad_plan_or_shape_raises():
    plan = radix.fold(torch.tensor([1, 2]), cu_seq_lengths=torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="hidden has 3 rows but the plan folds 2 tokens"):
        rt.fold(torch.zeros(3, 4), plan)
    with pytest.raises(ValueError, match="rows has 1 rows but the plan has 2"):
        rt.unfold(torch.zeros(1, 4), plan)
    numpy_plan = radix.fold(np.array([1, 2]), cu_seq_lengths=[0, 2])
    with pytest.raises(TypeError, match="plan holds numpy arrays"):
        rt.fold(torch.zeros(2, 4), numpy_plan)


def loss_and_grads(model, logits, weights):
    model.zero_grad()
    loss = (logits * weights).sum()
    loss.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


# fp32 throughout. The two paths do the same per-row arithmetic, but the folded backward sums the
# gradients of the tokens that share a row before the projection weights' gradient GEMMs instead
# of after, so float sums reassociate: equal to ~1e-6 relative, asserted at 1e-4 rtol + a small atol
# scaled to the gradient's size.
def assert_close(got, want, what):
    atol = 1e-5 * max(want.abs().max().item(), 1e-3)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=atol, msg=lambda m: f"{what}: {m}")


@pytest.mark.parametrize("seed", range(6))
def test_folded_qwen3_logits_and_gradients_equal_the_plain_model(seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(100 + seed)
    config = example.Qwen3Config()
    model = example.TinyQwen3(config)
    ids, pos, cu = prefix_sharing_batch(gen, config.vocab_size, num_seqs=3 + seed)
    weights = torch.randn(len(ids), config.vocab_size, generator=gen)

    want = example.plain_forward(model, ids, pos, cu)
    want_grads = loss_and_grads(model, want, weights)
    got, plan = example.folded_forward(model, ids, pos, cu, pad_multiple_of=8 if seed % 2 else None)
    got_grads = loss_and_grads(model, got, weights)

    assert plan.num_valid_rows < plan.num_tokens  # the batch really folded
    assert_close(got, want.detach(), "logits")
    assert set(got_grads) == set(want_grads) and len(got_grads) == 3 + 11 * config.num_hidden_layers
    for name in want_grads:
        assert want_grads[name].abs().max() > 0, name  # every parameter takes part
        assert_close(got_grads[name], want_grads[name], name)


def test_folded_forward_runs_hugging_face_qwen3():
    try:
        from transformers import Qwen3Config, Qwen3ForCausalLM
    except Exception as e:  # ImportError, or transformers refusing this torch version
        pytest.skip(f"Hugging Face transformers with Qwen3 is not usable here: {e}")
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(
        vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, attn_implementation="eager"))
    ids, pos, cu = prefix_sharing_batch(torch.Generator().manual_seed(1), 97, num_seqs=5)
    got, _ = example.folded_forward(model, ids, pos, cu)
    for s in range(len(cu) - 1):
        b, e = int(cu[s]), int(cu[s + 1])
        want = model(ids[None, b:e]).logits[0]
        assert_close(got[b:e], want.detach(), f"sequence {s} logits")


def test_compat_torch_matches_radix_mlp_torch():
    from radix.compat import compute_fold_and_scatter, compute_fold_and_scatter_torch
    ids = torch.tensor([1, 2, 3, 1, 2, 4, 1, 2, 3], dtype=torch.int64)
    pos = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    cu = torch.tensor([0, 3, 6, 9])
    ours = compute_fold_and_scatter_torch(ids, pos, cu, pad_multiple_of=8)
    assert all(a.dtype == torch.int32 and a.device == ids.device for a in ours)
    assert [a.tolist() for a in ours] == [a.tolist() for a in compute_fold_and_scatter(ids, pos, cu, 8)]
    # radix_mlp lays rows out in first-seen order, which for this batch is pre-order too.
    assert [a.tolist() for a in ours] == [[1, 2, 3, 4, 0, 0, 0, 0], [0, 1, 2, 2, 0, 0, 0, 0],
                                         [0, 1, 2, 0, 1, 3, 0, 1, 2], [0, 1, 2, 5, 0, 0, 0, 0]]
    with pytest.raises(ValueError, match="same device"):
        compute_fold_and_scatter_torch(ids, pos, cu.to("meta"))
    try:
        from radix_mlp.torch import compute_fold_and_scatter_torch as theirs
    except ImportError as e:
        pytest.skip(f"radix_mlp.torch is not importable: {e}")
    if tuple(int(v) for v in torch.__version__.split(".")[:2]) < (2, 3):
        pytest.skip(f"radix_mlp.torch needs torch.from_numpy of uint32 (PyTorch >= 2.3), this is "
                    f"{torch.__version__}")
    assert [a.tolist() for a in theirs(ids, pos, cu, 8)] == [a.tolist() for a in ours]
