"""Turns user arrays (numpy, torch on any device, lists) into the int32 numpy arrays the core takes."""

from __future__ import annotations

import sys

import numpy as np

_INT32_MAX = np.iinfo(np.int32).max


def torch_tensor_type():
    """torch.Tensor if torch has been imported (radix never imports it just to look), else None."""
    torch = sys.modules.get("torch")
    return getattr(torch, "Tensor", None)


def is_torch_tensor(x) -> bool:
    tensor = torch_tensor_type()
    return tensor is not None and isinstance(x, tensor)


def to_int32(name: str, x, ndims=(1,)) -> np.ndarray:
    """A contiguous int32 numpy copy or view of `x`; ValueError for anything that is not integers
    in radix's range (the core takes 32-bit ids, positions and offsets)."""
    if x is None:
        raise ValueError(f"{name} is required")
    if is_torch_tensor(x):
        if x.is_complex() or x.is_floating_point() or x.dtype == sys.modules["torch"].bool:
            raise ValueError(f"{name} must hold integers, got a torch tensor of {x.dtype}")
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be an integer array: {e}") from None
    if a.dtype.kind not in "iu" and not (a.size == 0 and a.dtype.kind == "f"):
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    if a.ndim not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{name} must be {want}, got shape {a.shape}")
    if a.dtype.kind == "f":  # np.asarray([]) is float64; an empty list is still an empty batch
        return np.zeros(a.shape, dtype=np.int32)
    if a.dtype != np.int32 and a.size:
        hi = a.max()
        if hi > _INT32_MAX:
            at = int(np.argmax(a.reshape(-1)))
            raise ValueError(f"{name} holds {hi} at flat index {at}: above the int32 range "
                             f"radix uses for ids, positions and offsets")
        if a.dtype.kind == "i":
            lo = a.min()
            if lo < 0:
                at = int(np.argmin(a.reshape(-1)))
                raise ValueError(f"{name} holds negative value {lo} at flat index {at}")
    if a.dtype == np.uint32 and a.flags.c_contiguous:
        return a.view(np.int32)  # in range, so the same bits: no copy (radix_mlp's dtype)
    return np.ascontiguousarray(a, dtype=np.int32)


def positive_int(name: str, value, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    try:
        v = int(value.__index__())
    except (AttributeError, TypeError):
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    if v < 1 or v > _INT32_MAX:
        raise ValueError(f"{name} must be a positive integer below 2**31, got {v}")
    return v
