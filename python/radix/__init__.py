"""radix: prefix folding for prefill-only transformer batches (RadixMLP, arXiv 2601.15013).

`radix.fold` folds a ragged batch into a prefix trie: every (token, position) prefix shared by
several sequences becomes one compact row, so position-wise layers run once per unique prefix.
`radix.compat` is a drop-in for the `radix_mlp` package's `compute_fold_and_scatter`;
`radix.torch` (needs PyTorch) has `fold` / `unfold` as autograd functions. `radix.Engine` runs
radix's inference engine (embed, rerank, classify) in-process.
"""

from ._fold import FoldResult, fold
from .engine import Engine

__all__ = ["Engine", "FoldResult", "fold"]
__version__ = "0.1.0"
