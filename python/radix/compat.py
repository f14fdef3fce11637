"""Drop-in replacements for the radix_mlp package's functions (switch by changing one import).

Same signature, argument order and return tuple:
(compact_input_ids, compact_position_ids, scatter_indices, fold_gather), uint32 numpy arrays (int32
tensors on the input's device from compute_fold_and_scatter_torch), and the same meaning of every
array: input_ids == compact_input_ids[scatter_indices] and compact_input_ids ==
input_ids[fold_gather] (likewise positions), padding rows id 0, position 0, fold_gather 0.
The compact rows come in trie pre-order rather than first-occurrence order, which any consumer of
the indices is indifferent to. Unlike radix_mlp, any integer dtype is accepted, and malformed
cu_seq_lengths raise ValueError instead of being read leniently.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ._arrays import is_torch_tensor
from ._fold import fold

__all__ = ["compute_fold_and_scatter", "compute_fold_and_scatter_torch"]


def _empty_batch(input_ids, cu_seq_lengths) -> bool:
    # radix_mlp returns four empty arrays for an empty batch, even with cu_seq_lengths [].
    return len(input_ids) == 0 and len(cu_seq_lengths) <= 1


def compute_fold_and_scatter(input_ids, position_ids, cu_seq_lengths,
                             pad_multiple_of: Optional[int] = None):
    """radix_mlp.compute_fold_and_scatter over radix's fold (numpy in, uint32 numpy out; torch
    tensors are passed on to compute_fold_and_scatter_torch)."""
    if is_torch_tensor(input_ids):
        return compute_fold_and_scatter_torch(input_ids, position_ids, cu_seq_lengths,
                                              pad_multiple_of)
    if _empty_batch(input_ids, cu_seq_lengths):
        return tuple(np.zeros(0, dtype=np.uint32) for _ in range(4))
    r = fold(input_ids, position_ids, cu_seq_lengths, pad_multiple_of=pad_multiple_of)
    gather = r.fold_gather
    if r.num_rows > r.num_valid_rows:
        gather[r.num_valid_rows:] = 0
    return (r.compact_input_ids.view(np.uint32), r.compact_position_ids.view(np.uint32),
            r.scatter_indices.view(np.uint32), gather.view(np.uint32))


def compute_fold_and_scatter_torch(input_ids, position_ids, cu_seq_lengths,
                                   pad_multiple_of: Optional[int] = None):
    """radix_mlp.torch.compute_fold_and_scatter_torch: int32 tensors on input_ids' device."""
    import torch

    for name, t in (("input_ids", input_ids), ("position_ids", position_ids),
                    ("cu_seq_lengths", cu_seq_lengths)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t)}")
        if t.device != input_ids.device:
            raise ValueError(f"{name} must be on the same device as input_ids. "
                             f"Got {t.device} vs {input_ids.device}")
    device = input_ids.device
    if _empty_batch(input_ids, cu_seq_lengths):
        return tuple(torch.zeros(0, dtype=torch.int32, device=device) for _ in range(4))
    r = fold(input_ids, position_ids, cu_seq_lengths, pad_multiple_of=pad_multiple_of)
    gather = r.fold_gather.clone() if r.num_rows > r.num_valid_rows else r.fold_gather
    gather[r.num_valid_rows:] = 0
    return r.compact_input_ids, r.compact_position_ids, r.scatter_indices, gather
