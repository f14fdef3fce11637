"""radix.torch: fold and unfold hidden states as autograd functions (needs PyTorch).

    plan = radix.fold(input_ids, cu_seq_lengths=cu)       # tensors on any device
    rows = radix.torch.fold(hidden, plan)                  # [tokens, ...] -> [rows, ...]
    hidden = radix.torch.unfold(rows, plan)                # [rows, ...] -> [tokens, ...]

Both gather in the forward and scatter-add in the backward, so a model may run its position-wise
layers (embedding, norms, projections, MLP) on the compact rows and attention on the flat tokens,
and its gradients equal those of the plain model: unfold's backward sums the gradients of every
token that shares a row into that row, which is the derivative of reading one row many times.
"""

from __future__ import annotations

import torch as _torch

from ._fold import FoldResult

__all__ = ["fold", "unfold", "Fold", "Unfold"]


def _index(plan_array, device):
    # index_select / index_add_ take int32 or int64 indices on the data's device.
    return plan_array if plan_array.device == device else plan_array.to(device)


class Fold(_torch.autograd.Function):
    """rows[r] = hidden[fold_gather[r]] for the valid rows; padding rows are zero."""

    @staticmethod
    def forward(ctx, hidden, fold_gather, num_valid_rows: int, num_rows: int):
        gather = _index(fold_gather[:num_valid_rows], hidden.device)
        ctx.save_for_backward(gather)
        ctx.num_tokens = hidden.shape[0]
        rows = hidden.index_select(0, gather)
        if num_rows > num_valid_rows:
            pad = hidden.new_zeros((num_rows - num_valid_rows,) + tuple(hidden.shape[1:]))
            rows = _torch.cat([rows, pad])
        return rows

    @staticmethod
    def backward(ctx, grad_rows):
        (gather,) = ctx.saved_tensors
        grad = grad_rows.new_zeros((ctx.num_tokens,) + tuple(grad_rows.shape[1:]))
        grad.index_add_(0, gather, grad_rows[: gather.shape[0]])
        return grad, None, None, None


class Unfold(_torch.autograd.Function):
    """hidden[i] = rows[scatter_indices[i]]; the backward sums each row's tokens' gradients."""

    @staticmethod
    def forward(ctx, rows, scatter_indices):
        scatter = _index(scatter_indices, rows.device)
        ctx.save_for_backward(scatter)
        ctx.num_rows = rows.shape[0]
        return rows.index_select(0, scatter)

    @staticmethod
    def backward(ctx, grad_hidden):
        (scatter,) = ctx.saved_tensors
        grad = grad_hidden.new_zeros((ctx.num_rows,) + tuple(grad_hidden.shape[1:]))
        grad.index_add_(0, scatter, grad_hidden)
        return grad, None


def _check(plan, what: str):
    if not isinstance(plan, FoldResult):
        raise TypeError(f"radix.torch.{what} needs the FoldResult of radix.fold, got {type(plan)}")
    if not isinstance(plan.scatter_indices, _torch.Tensor):
        raise TypeError(f"radix.torch.{what}: the plan holds numpy arrays; fold torch tensors "
                        "(radix.fold(torch_ids, ...)) to get a plan of tensors")


def fold(hidden: _torch.Tensor, plan: FoldResult) -> _torch.Tensor:
    """[num_tokens, ...] flat hidden states -> [plan.num_rows, ...] compact rows."""
    _check(plan, "fold")
    if hidden.shape[0] != plan.num_tokens:
        raise ValueError(f"radix.torch.fold: hidden has {hidden.shape[0]} rows but the plan "
                         f"folds {plan.num_tokens} tokens")
    return Fold.apply(hidden, plan.fold_gather, plan.num_valid_rows, plan.num_rows)


def unfold(rows: _torch.Tensor, plan: FoldResult) -> _torch.Tensor:
    """[plan.num_rows, ...] compact rows -> [num_tokens, ...] flat hidden states."""
    _check(plan, "unfold")
    if rows.shape[0] != plan.num_rows:
        raise ValueError(f"radix.torch.unfold: rows has {rows.shape[0]} rows but the plan has "
                         f"{plan.num_rows}")
    return Unfold.apply(rows, plan.scatter_indices)
