"""radix.fold and radix.compat against a brute-force prefix map and against radix_mlp."""
import os
import threading

import pytest

if os.environ.get("RADIX_PY_TESTS") != "1":
    # Outside scripts/test.sh's package block (which sets RADIX_PY_TESTS=1 and fails on a missing
    # module) these tests need the package installed in the running interpreter.
    pytest.importorskip("radix._core", reason="the radix Python package is not built for this "
                        "interpreter (scripts/test.sh builds it and runs these tests)")

import numpy as np  # noqa: E402

import radix  # noqa: E402
from radix.compat import compute_fold_and_scatter  # noqa: E402


def random_batch(rng, num_seqs=None, vocab=None, shift_positions=False):
    """Sequences that share prefixes: each starts with a random length of one of a few stems and
    goes on with random tokens from a small vocabulary (so accidental sharing happens too)."""
    num_seqs = num_seqs or int(rng.integers(1, 12))
    vocab = vocab or int(rng.integers(2, 6))
    stems = [rng.integers(0, vocab, size=int(rng.integers(1, 20))) for _ in range(3)]
    seqs, poss = [], []
    for _ in range(num_seqs):
        stem = stems[int(rng.integers(0, len(stems)))]
        head = stem[: int(rng.integers(0, len(stem) + 1))]
        tail = rng.integers(0, vocab, size=int(rng.integers(0 if len(head) else 1, 8)))
        seq = np.concatenate([head, tail]).astype(np.int64)
        start = int(rng.integers(0, 2)) if shift_positions else 0
        seqs.append(seq)
        poss.append(np.arange(start, start + len(seq)))
    cu = np.concatenate([[0], np.cumsum([len(s) for s in seqs])])
    return np.concatenate(seqs), np.concatenate(poss), cu


def prefix_keys(ids, pos, cu):
    keys = []
    for s in range(len(cu) - 1):
        b, e = cu[s], cu[s + 1]
        pairs = tuple(zip(ids[b:e].tolist(), pos[b:e].tolist()))
        keys.extend(pairs[: i - b + 1] for i in range(b, e))
    return keys


def check_plan(r, ids, pos, cu, pad=1):
    keys = prefix_keys(ids, pos, cu)
    n = len(ids)
    unique = len(set(keys))
    assert r.num_tokens == n and r.num_unique == unique
    valid = unique if r.folded else n
    assert r.num_valid_rows == valid
    assert r.num_rows == -(-valid // pad) * pad
    scatter = np.asarray(r.scatter_indices)
    gather = np.asarray(r.fold_gather)
    cids, cpos = np.asarray(r.compact_input_ids), np.asarray(r.compact_position_ids)
    parent, end = np.asarray(r.parent), np.asarray(r.subtree_end)
    np.testing.assert_array_equal(cids[scatter], ids)
    np.testing.assert_array_equal(cpos[scatter], pos)
    # Two flat tokens share a row iff their (token, position) prefixes are equal (when folded).
    row_of_key = {}
    for i, k in enumerate(keys):
        if r.folded:
            assert row_of_key.setdefault(k, scatter[i]) == scatter[i]
    if r.folded:
        assert len(set(scatter.tolist())) == unique
    else:
        np.testing.assert_array_equal(scatter, np.arange(n))
    for row in range(valid):
        flat = np.flatnonzero(scatter == row)
        assert gather[row] == flat.min()
    key_of_row = {int(scatter[i]): keys[i] for i in range(n)}
    for s in range(len(cu) - 1):
        b, e = cu[s], cu[s + 1]
        assert parent[scatter[b]] == -1
        for i in range(b + 1, e):
            assert parent[scatter[i]] == scatter[i - 1] < scatter[i]
        assert r.last_token_rows[s] == scatter[e - 1]
    # Pre-order: the subtree of a row (rows whose prefix extends the row's) is [row, subtree_end).
    for row in range(valid if r.folded else 0):
        k = key_of_row[row]
        below = sorted(q for q, kq in key_of_row.items() if kq[: len(k)] == k)
        assert below == list(range(row, end[row])), (row, below, end[row])
    if not r.folded:  # identity layout: a row's subtree is the rest of its sequence
        for s in range(len(cu) - 1):
            np.testing.assert_array_equal(end[cu[s]:cu[s + 1]], cu[s + 1])
    for row in range(valid, r.num_rows):
        assert (cids[row], cpos[row], parent[row], end[row], gather[row]) == (0, 0, -1, row + 1, -1)


def test_fold_matches_brute_force_on_random_batches():
    rng = np.random.default_rng(12)
    for trial in range(300):
        ids, pos, cu = random_batch(rng, shift_positions=trial % 3 == 0)
        pad = int(rng.choice([1, 1, 4, 7]))
        r = radix.fold(ids, pos, cu, pad_multiple_of=pad)
        assert r.folded
        check_plan(r, ids, pos, cu, pad)


def test_default_positions_and_2d_input():
    ids = np.array([[5, 6, 7], [5, 6, 8]])
    r = radix.fold(ids)
    check_plan(r, ids.reshape(-1), np.array([0, 1, 2, 0, 1, 2]), np.array([0, 3, 6]))
    flat = radix.fold(ids.reshape(-1), cu_seq_lengths=[0, 3, 6])
    np.testing.assert_array_equal(flat.compact_position_ids, [0, 1, 2, 2])
    np.testing.assert_array_equal(flat.scatter_indices, r.scatter_indices)


def test_same_ids_at_other_positions_do_not_share():
    r = radix.fold([1, 2, 1, 2], position_ids=[0, 1, 1, 2], cu_seq_lengths=[0, 2, 4])
    assert r.num_unique == 4 and r.compression_ratio == 1.0


def test_threshold_chooses_identity_layout():
    ids, pos, cu = np.array([1, 2, 3, 1, 2, 4]), np.array([0, 1, 2, 0, 1, 2]), np.array([0, 3, 6])
    ratio = 4 / 6
    assert radix.fold(ids, pos, cu, threshold=ratio + 1e-9).folded
    r = radix.fold(ids, pos, cu, threshold=ratio)
    assert not r.folded and r.num_unique == 4
    check_plan(r, ids, pos, cu)
    assert not radix.fold(ids, pos, cu, threshold=0).folded


def test_any_integer_dtype_and_lists_give_the_same_plan():
    rng = np.random.default_rng(3)
    ids, pos, cu = random_batch(rng, num_seqs=6)
    want = radix.fold(ids.astype(np.int32), pos.astype(np.int32), cu.astype(np.int32))
    for dtype in (np.int64, np.uint32, np.uint16, np.int16):
        got = radix.fold(ids.astype(dtype), pos.astype(dtype), cu.astype(dtype))
        for a, b in zip(got.as_tuple(), want.as_tuple()):
            np.testing.assert_array_equal(a, b)
    got = radix.fold(ids.tolist(), pos.tolist(), cu.tolist())
    np.testing.assert_array_equal(got.scatter_indices, want.scatter_indices)


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_ids=[1.5, 2.0], cu_seq_lengths=[0, 2]), "input_ids must hold integers"),
    (dict(input_ids=["a"], cu_seq_lengths=[0, 1]), "input_ids must hold integers"),
    (dict(input_ids=[1, 2]), "cu_seq_lengths is required"),
    (dict(input_ids=[1, 2], cu_seq_lengths=[0, 3]), "cu_seqlens ends at 3 but the batch has 2"),
    (dict(input_ids=[1, 2], cu_seq_lengths=[1, 2]), "must start at 0"),
    (dict(input_ids=[1, 2], cu_seq_lengths=[]), "cu_seqlens is empty"),
    (dict(input_ids=[1, 2, 3], cu_seq_lengths=[0, 2, 1, 3]), "decreases at index 2"),
    (dict(input_ids=[1, 2], cu_seq_lengths=[0, 0, 2]), "sequence 0 is empty"),
    (dict(input_ids=[1, -2], cu_seq_lengths=[0, 2]), "negative value -2 at flat index 1"),
    (dict(input_ids=np.array([1, -2], np.int32), cu_seq_lengths=[0, 2]), "negative token id -2"),
    (dict(input_ids=np.array([1, 2**33]), cu_seq_lengths=[0, 2]), "above the int32 range"),
    (dict(input_ids=np.array([1, 2**31], np.uint32), cu_seq_lengths=[0, 2]), "above the int32"),
    (dict(input_ids=[1, 2], position_ids=[0], cu_seq_lengths=[0, 2]), "position_ids has 1"),
    (dict(input_ids=[1, 2], position_ids=[0, -1], cu_seq_lengths=[0, 2]), "position_ids holds"),
    (dict(input_ids=[[1, 2]], cu_seq_lengths=[0, 2]), "must be None when input_ids is 2-D"),
    (dict(input_ids=[[1, 2]], position_ids=[0, 1]), "position_ids must be 2-D"),
    (dict(input_ids=np.zeros((2, 0), np.int64)), "sequence 0 is empty"),
    (dict(input_ids=np.zeros((1, 1, 1), np.int64)), "must be 1-D or 2-D"),
    (dict(input_ids=[1], cu_seq_lengths=[0, 1], pad_multiple_of=0), "pad_multiple_of must be"),
    (dict(input_ids=[1], cu_seq_lengths=[0, 1], pad_multiple_of=2.5), "pad_multiple_of must be"),
    (dict(input_ids=[1], cu_seq_lengths=[0, 1], threshold=float("nan")), "threshold is NaN"),
    (dict(input_ids=None, cu_seq_lengths=[0, 1]), "input_ids is required"),
])
def test_bad_input_raises_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        radix.fold(**kwargs)


def test_empty_batch():
    r = radix.fold(np.zeros(0, np.int32), cu_seq_lengths=[0])
    assert r.num_tokens == 0 and r.num_rows == 0 and r.compression_ratio == 1.0
    out = compute_fold_and_scatter(np.zeros(0, np.uint32), np.zeros(0, np.uint32),
                                   np.zeros(0, np.uint32))
    assert all(a.dtype == np.uint32 and a.size == 0 for a in out)


def test_compat_tuple_meaning_and_padding():
    u = lambda *v: np.array(v, dtype=np.uint32)  # noqa: E731
    ids, pos, cu = u(1, 2, 3, 1, 2, 4), u(0, 1, 2, 0, 1, 2), u(0, 3, 6)
    cids, cpos, scatter, gather = compute_fold_and_scatter(ids, pos, cu, pad_multiple_of=8)
    assert all(a.dtype == np.uint32 for a in (cids, cpos, scatter, gather))
    assert len(cids) == 8 and len(scatter) == 6
    np.testing.assert_array_equal(cids[scatter], ids)
    np.testing.assert_array_equal(cids[:4], ids[gather[:4]])
    np.testing.assert_array_equal(cids[4:], 0)
    np.testing.assert_array_equal(gather[4:], 0)


def test_folding_from_threads_gives_the_same_plans():
    rng = np.random.default_rng(5)
    batches = [random_batch(rng, num_seqs=30) for _ in range(8)]
    want = [radix.fold(*b).scatter_indices for b in batches]
    got = [None] * len(batches)

    def work(i):
        for _ in range(20):
            got[i] = radix.fold(*batches[i]).scatter_indices

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def row_bijection(scatter_a, scatter_b):
    """The row relabelling that maps plan a's rows to plan b's, asserting one exists."""
    mapping = {}
    for ra, rb in zip(scatter_a.tolist(), scatter_b.tolist()):
        assert mapping.setdefault(ra, rb) == rb
    assert len(set(mapping.values())) == len(mapping)
    return mapping


def test_compat_agrees_with_radix_mlp():
    radix_mlp = pytest.importorskip("radix_mlp", reason="radix-mlp is not installed "
                                    "(pip install radix-mlp)")
    rng = np.random.default_rng(7)
    for trial in range(200):
        ids, pos, cu = (a.astype(np.uint32) for a in random_batch(rng, shift_positions=trial % 2))
        pad = None if trial % 3 else int(rng.integers(1, 9))
        theirs = radix_mlp.compute_fold_and_scatter(ids, pos, cu, pad)
        ours = compute_fold_and_scatter(ids, pos, cu, pad)
        for a, b in zip(ours, theirs):
            assert a.dtype == b.dtype and a.shape == b.shape
        # Same rows, possibly in another order (radix: trie pre-order; radix_mlp: first seen).
        rows = row_bijection(ours[2], theirs[2])
        for row_ours, row_theirs in rows.items():
            assert ours[0][row_ours] == theirs[0][row_theirs]
            assert ours[1][row_ours] == theirs[1][row_theirs]
            assert ours[3][row_ours] == theirs[3][row_theirs]
        valid = len(rows)
        for a, b in zip(ours, theirs):
            if a is not ours[2]:
                np.testing.assert_array_equal(a[valid:], b[valid:])  # padding
