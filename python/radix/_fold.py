"""radix.fold: a ragged batch folded into a prefix trie, as numpy arrays or torch tensors."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from . import _core
from ._arrays import is_torch_tensor, positive_int, to_int32


@dataclass(frozen=True)
class FoldResult:
    """The fold plan of one batch. Arrays are int32, numpy or torch on the input's device.

    Compact rows are in DFS pre-order of the trie: parent < child, and the subtree of row r is the
    row range [r, subtree_end[r]). Padding rows (from pad_multiple_of) come last: id 0, position 0,
    parent -1, subtree_end row + 1, fold_gather -1; no flat token scatters to them.
    """

    compact_input_ids: Any  # [num_rows] token id of each compact row
    compact_position_ids: Any  # [num_rows] position of each compact row
    scatter_indices: Any  # [num_tokens] flat token -> its compact row (unfold: compact[scatter])
    fold_gather: Any  # [num_rows] compact row -> first flat token holding it (fold: flat[gather])
    parent: Any  # [num_rows] parent row, -1 for a root (first token) or a padding row
    subtree_end: Any  # [num_rows] one past the last row of the row's subtree
    last_token_rows: Any  # [num_sequences] compact row of each sequence's last token
    num_tokens: int  # flat tokens in the batch
    num_unique: int  # unique (token, position) prefixes (trie nodes)
    num_rows: int  # compact rows laid out, padding included
    num_valid_rows: int  # compact rows without padding
    folded: bool  # False when the threshold chose the identity layout (one row per flat token)

    @property
    def compression_ratio(self) -> float:
        """Unique prefixes / flat tokens (1.0 means nothing is shared; lower is better)."""
        return 1.0 if self.num_tokens == 0 else self.num_unique / self.num_tokens

    @property
    def num_sequences(self) -> int:
        return len(self.last_token_rows)

    def as_tuple(self):
        """(compact_input_ids, compact_position_ids, scatter_indices, fold_gather), the order of
        radix_mlp's compute_fold_and_scatter."""
        return (self.compact_input_ids, self.compact_position_ids, self.scatter_indices,
                self.fold_gather)

    def __repr__(self) -> str:
        return (f"FoldResult(num_tokens={self.num_tokens}, num_unique={self.num_unique}, "
                f"num_rows={self.num_rows}, sequences={self.num_sequences}, "
                f"compression_ratio={self.compression_ratio:.4f}, folded={self.folded})")


_ARRAYS = ("ids", "positions", "scatter", "gather", "parent", "subtree_end", "last_rows")


def default_positions(cu: np.ndarray, num_tokens: int) -> np.ndarray:
    """0, 1, ... within each sequence. Malformed offsets get zeros: the core then names the fault."""
    if cu.size == 0 or cu[0] != 0 or cu[-1] != num_tokens:
        return np.zeros(num_tokens, dtype=np.int32)
    lengths = np.diff(cu)
    if lengths.size and lengths.min() < 0:
        return np.zeros(num_tokens, dtype=np.int32)
    starts = np.repeat(cu[:-1], lengths)
    return np.arange(num_tokens, dtype=np.int32) - starts


def fold(input_ids, position_ids=None, cu_seq_lengths=None, pad_multiple_of: Optional[int] = None,
         threshold: Optional[float] = None) -> FoldResult:
    """Folds a batch of sequences into compact rows, one per unique (token, position) prefix.

    input_ids: 1-D flat tokens of all sequences with cu_seq_lengths, or 2-D [batch, length] (each
        row a sequence; cu_seq_lengths must then be None). numpy, torch (any device) or a list,
        any integer dtype with values in [0, 2**31).
    position_ids: same shape as input_ids; None means 0, 1, ... within each sequence.
    cu_seq_lengths: [num_sequences + 1] offsets, starting at 0, ending at the number of tokens;
        no empty sequence.
    pad_multiple_of: pad the compact rows up to a multiple of this.
    threshold: fold only if num_unique / num_tokens < threshold (None or >= 1: always fold; 0:
        never); otherwise the result is the identity layout.

    Returns a FoldResult; its arrays are torch tensors on input_ids' device when input_ids is a
    torch tensor (planned on the CPU), numpy arrays otherwise. Raises ValueError on bad input.
    The GIL is released while the batch folds.
    """
    device = input_ids.device if is_torch_tensor(input_ids) else None
    ids = to_int32("input_ids", input_ids, ndims=(1, 2))
    if ids.ndim == 2:
        if cu_seq_lengths is not None:
            raise ValueError("cu_seq_lengths must be None when input_ids is 2-D "
                             "([batch, length]: every row is one sequence)")
        batch, length = ids.shape
        # A zero length yields repeated offsets, which the core reports as an empty sequence.
        cu = (np.arange(batch + 1, dtype=np.int64) * length).astype(np.int32)
        if position_ids is not None:
            positions = to_int32("position_ids", position_ids, ndims=(2,))
            if positions.shape != ids.shape:
                raise ValueError(f"position_ids has shape {positions.shape} but input_ids has "
                                 f"{ids.shape}")
            positions = positions.reshape(-1)
        ids = ids.reshape(-1)
    else:
        if cu_seq_lengths is None:
            raise ValueError("cu_seq_lengths is required with 1-D input_ids "
                             "(e.g. [0, len0, len0 + len1, ...]); 2-D input_ids imply it")
        cu = to_int32("cu_seq_lengths", cu_seq_lengths)
        if position_ids is not None:
            positions = to_int32("position_ids", position_ids)
    if position_ids is None:
        positions = default_positions(cu, ids.size)
    elif positions.size != ids.size:
        raise ValueError(f"input_ids has {ids.size} tokens but position_ids has {positions.size}")

    pad = positive_int("pad_multiple_of", pad_multiple_of, 1)
    thr = 1.0 if threshold is None else float(threshold)
    if math.isnan(thr):
        raise ValueError("threshold is NaN")

    plan = _core.fold(ids, positions, cu, pad, thr)
    arrays = [plan[k] for k in _ARRAYS]
    if device is not None:
        arrays = _to_torch(arrays, device)
    return FoldResult(*arrays, num_tokens=plan["num_tokens"], num_unique=plan["num_unique"],
                      num_rows=plan["num_rows"],
                      num_valid_rows=plan["num_unique"] if plan["folded"] else plan["num_tokens"],
                      folded=plan["folded"])


def _to_torch(arrays, device):
    import torch

    if device.type == "cpu":
        return [torch.from_numpy(a) for a in arrays]
    # One host-to-device copy for all of them, then views.
    flat = torch.from_numpy(np.concatenate(arrays)).to(device)
    return list(torch.split(flat, [a.size for a in arrays]))
