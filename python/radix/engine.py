"""radix.Engine: radix's inference engine (src/service) from Python.

    engine = radix.Engine("demo")                       # or a Hugging Face folder, "random:..."
    vectors = engine.embed(["hello world", "hello there"])
    engine = radix.Engine("/models/Qwen3-Reranker-0.6B", device="cuda:0")
    scores = engine.rerank("what is a trie", ["a prefix tree", "a fruit"])

The same library core as `radix serve` and the CLI, so the numbers match theirs for the same
input. Thread-safe: calls release the GIL and the engine batches concurrent callers' sequences
together (folding their shared prefixes), as the server does for concurrent clients.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import numpy as np

from . import _core

_BUILT_IN = ("demo",)


def _is_model_path(spec: str) -> bool:
    return spec not in _BUILT_IN and not spec.startswith("random:")


def _texts(name: str, texts) -> list:
    if isinstance(texts, str):
        raise ValueError(f"{name} must be a list of strings (wrap a single text in a list)")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise ValueError(f"{name}[{i}] must be a string, got {type(t).__name__}")
    return out


class Engine:
    """Loads a model (one per device) and serves embed / rerank / classify on it.

    model: a Hugging Face model folder, "demo" (a tiny built-in Qwen3) or "random:<shape>".
    device: "cpu", "cuda", "cuda:N", or a list of devices (one model and worker per device).
    attention_mode: "tree" (fold shared prefixes, attention on the trie), "scatter" (fold the
        position-wise ops only) or "off".
    head: "" (the folder's), "embedding", "reranker" or "classifier".
    output: "numpy" (default) or "torch" for the arrays returned.
    The other options are the server's (docs/server.md): radix_threshold, pad_multiple_of,
    max_batch_tokens, max_batch_requests, auto_truncate, max_input_length, default_prompt_name.
    rerank_template: the reranker's prompt template, a JSON file or inline JSON (docs/models.md);
        "" (default): the folder's radix_rerank_template.json, else Qwen3-Reranker's for Qwen3.
    dtype: "" (the device's: float32 on the CPU, bfloat16 on CUDA), or "fp8" on CUDA (e4m3
        projections with per-channel scales, docs/numerics.md); as the server's --dtype.
    enforce_eager: CUDA only; True queues every forward op by op instead of replaying small
        batches' recorded CUDA graphs (docs/cuda.md "Recorded forwards"), as vLLM's flag.

    Raises FileNotFoundError for a model folder that does not exist, ValueError for bad options
    and RuntimeError for a model or tokenizer that cannot be loaded.
    """

    def __init__(self, model: str, device: Union[str, Sequence[str]] = "cpu",
                 attention_mode: str = "tree", *, tokenizer: str = "", threads: int = 0,
                 head: str = "", radix_threshold: float = 0.95, pad_multiple_of: int = 1,
                 max_batch_tokens: int = 16384, max_batch_requests: int = 0,
                 auto_truncate: bool = False, max_input_length: int = 0,
                 default_prompt_name: Optional[str] = None, seed: int = 0,
                 preallocate: bool = True, output: str = "numpy", rerank_template: str = "",
                 dtype: str = "", enforce_eager: bool = False):
        model = os.fspath(model)
        if _is_model_path(model) and not os.path.exists(model):
            raise FileNotFoundError(f"model folder not found: {model!r} (a Hugging Face model "
                                    "folder, 'demo', or 'random:<shape>')")
        if output not in ("numpy", "torch"):
            raise ValueError(f"output must be 'numpy' or 'torch', got {output!r}")
        if not hasattr(_core, "Engine"):
            raise RuntimeError("this radix build has no engine: it was built with "
                               "RADIX_PYTHON_ENGINE=OFF (radix.fold and radix.torch still work)")
        devices = [device] if isinstance(device, str) else list(device)
        self._output = output
        self._engine = _core.Engine(
            model=model, tokenizer=os.fspath(tokenizer), devices=devices, threads=threads,
            head=head, attention_mode=attention_mode, radix_threshold=radix_threshold,
            pad_to_multiple=pad_multiple_of, max_batch_tokens=max_batch_tokens,
            max_batch_requests=max_batch_requests, auto_truncate=auto_truncate,
            max_input_length=max_input_length, default_prompt_name=default_prompt_name,
            seed=seed, preallocate=preallocate, rerank_template=os.fspath(rerank_template),
            dtype=dtype, enforce_eager=enforce_eager)
        self.info = self._engine.summary()

    # -- results -------------------------------------------------------------------------------
    def _out(self, a):
        if self._output == "torch":
            import torch
            return torch.from_numpy(a)
        return a

    @property
    def labels(self):
        return list(self.info["labels"])

    # -- embeddings ----------------------------------------------------------------------------
    def embed(self, texts, prompt_name: Optional[str] = None, normalize: bool = True,
              dimensions: Optional[int] = None, *, instruction: Optional[str] = None,
              truncate: Optional[bool] = None, truncation_direction: str = "right"):
        """[len(texts), dim] float32 embeddings (last-token pooled, L2-normalised unless
        normalize=False; dimensions keeps the first N, then normalises). A single string gives
        one [dim] vector. prompt_name: one of the model's prompts (info["prompt_names"]);
        instruction: Qwen3-Embedding's query format "Instruct: {instruction}\\nQuery:{text}"."""
        single = isinstance(texts, str)
        vectors, _ = self._engine.embed(_texts("texts", [texts] if single else texts), [],
                                        prompt_name, instruction, normalize, dimensions,
                                        truncate, truncation_direction)
        return self._out(vectors[0] if single else self._rows(vectors, dimensions))

    def _rows(self, vectors, dimensions):
        # No inputs: a [0, dim] array, so callers can still stack and index.
        if vectors.shape[0] == 0:
            return np.zeros((0, dimensions or self.info["hidden_size"]), np.float32)
        return vectors

    def embed_ids(self, ids, normalize: bool = True, dimensions: Optional[int] = None, *,
                  truncate: Optional[bool] = None, truncation_direction: str = "right"):
        """Embeddings of token id sequences as they are (no prompt, no special tokens added):
        a list of int lists (or a 2-D integer array); [len(ids), dim] float32."""
        seqs = []
        for i, seq in enumerate(ids):
            a = np.asarray(seq)
            if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
                raise ValueError(f"ids[{i}] must be a 1-D sequence of integers")
            if a.size and (a.min() < 0 or a.max() > np.iinfo(np.int32).max):
                raise ValueError(f"ids[{i}] holds a token id outside [0, 2**31)")
            seqs.append(a.astype(np.int64).tolist())
        vectors, _ = self._engine.embed([], seqs, None, None, normalize, dimensions, truncate,
                                        truncation_direction)
        return self._out(self._rows(vectors, dimensions))

    def encode(self, sentences, batch_size: int = 32, show_progress_bar: Optional[bool] = None,
               normalize_embeddings: bool = True, convert_to_numpy: bool = True,
               convert_to_tensor: bool = False, prompt_name: Optional[str] = None,
               prompt: Optional[str] = None, **unused):
        """sentence-transformers' SentenceTransformer.encode shape, so code can swap the model
        object. Differences: normalize_embeddings defaults to True (radix pools the last token of
        Qwen3-style embedding models, whose sentence-transformers pipelines end in Normalize);
        `prompt` is an instruction in Qwen3-Embedding's query format. Other keyword arguments of
        sentence-transformers (device, precision, ...) are accepted and ignored."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        single = isinstance(sentences, str)
        texts = _texts("sentences", [sentences] if single else sentences)
        starts = range(0, len(texts), batch_size)
        if show_progress_bar:
            try:
                from tqdm.auto import tqdm
                starts = tqdm(starts, desc="Batches")
            except ImportError:
                pass
        parts = [self._engine.embed(texts[s:s + batch_size], [], prompt_name, prompt,
                                    normalize_embeddings, None, None, "right")[0] for s in starts]
        dim = self.info["hidden_size"]
        out = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
        if single:
            out = out[0]
        if convert_to_tensor:
            import torch
            return torch.from_numpy(out)
        return out if convert_to_numpy else list(out)

    # -- corpora ------------------------------------------------------------------------------
    def embed_corpus(self, items, batch_tokens: Optional[int] = None, output=None, *,
                     instruction: Optional[str] = None, prompt_name: Optional[str] = None,
                     normalize: bool = True, dimensions: Optional[int] = None,
                     truncate: Optional[bool] = None, truncation_direction: str = "right",
                     chunk_items: int = 16384, order_by_prefix: bool = True,
                     restart: bool = False, progress=False):
        """Embeds an iterable far larger than one call (read lazily, a chunk at a time), with
        the pipeline of `radix embed --input` (docs/python.md): each chunk is tokenized on the
        worker pool, ordered by token path so that items sharing a prefix (an instruction, a
        template) fold together, cut into batches of `batch_tokens` tokens (default: the
        engine's max_batch_tokens) and run while the next chunk is read.

        items: str, or dict {"text": ..., "instruction"?: ...} (an item's instruction wins over
        `instruction`). Returns [n, dim] float32 in input order; with output="x.npy" or
        "x.jsonl" the rows go to that file instead and a dict of totals comes back. An
        interrupted run with an output resumes after the last committed chunk (state in
        "<output>.progress") when called again with the same items and options.
        progress: True prints a progress line to stderr; a callable gets a dict per update."""
        return self._corpus("embed", items, batch_tokens, output, instruction=instruction,
                            prompt_name=prompt_name, normalize=normalize, dimensions=dimensions,
                            truncate=truncate, truncation_direction=truncation_direction,
                            chunk_items=chunk_items, order_by_prefix=order_by_prefix,
                            restart=restart, progress=progress)

    def rerank_corpus(self, pairs, batch_tokens: Optional[int] = None, output=None, *,
                      instruction: Optional[str] = None, raw_scores: bool = False,
                      truncate: Optional[bool] = None, truncation_direction: str = "right",
                      chunk_items: int = 16384, order_by_prefix: bool = True,
                      restart: bool = False, progress=False):
        """Scores an iterable of (query, document) pairs (or dicts {"query", "document",
        "instruction"?}) with embed_corpus's pipeline: pairs of one query fold together.
        Returns [n] scores (logits with raw_scores=True), or with `output` a dict of totals
        (the .npy holds scores, the .jsonl scores and logits)."""
        out = self._corpus("rerank", pairs, batch_tokens, output, instruction=instruction,
                           prompt_name=None, normalize=True, dimensions=None, truncate=truncate,
                           truncation_direction=truncation_direction, chunk_items=chunk_items,
                           order_by_prefix=order_by_prefix, restart=restart, progress=progress)
        if isinstance(out, dict):
            return out
        scores, logits = out
        return self._out(logits if raw_scores else scores)

    def _corpus(self, task, items, batch_tokens, output, **options):
        if isinstance(items, (str, bytes)):
            raise ValueError("items must be an iterable of items, not a single string")
        if batch_tokens is None:
            batch_tokens = self.info["max_batch_tokens"]
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be >= 1, got {batch_tokens}")
        if options["chunk_items"] < 1:
            raise ValueError(f"chunk_items must be >= 1, got {options['chunk_items']}")
        if options["truncation_direction"] not in ("right", "left"):
            raise ValueError("truncation_direction must be 'right' or 'left', got "
                             f"{options['truncation_direction']!r}")
        progress = options["progress"]
        if not (isinstance(progress, bool) or progress is None or callable(progress)):
            raise ValueError("progress must be a bool or a callable")
        if output is not None:
            output = os.fspath(output)
            if not output.endswith((".npy", ".jsonl")):
                raise ValueError(f"output must be a .npy or .jsonl path, got {output!r}")
        # What a resumed run must match (the items themselves cannot be fingerprinted).
        fingerprint = (f"python {task} model {self.info['model']} instruction "
                       f"{options['instruction']!r} prompt {options['prompt_name']!r} normalize "
                       f"{options['normalize']} dimensions {options['dimensions']} truncate "
                       f"{options['truncate']} {options['truncation_direction']}")
        options.update(task=task, batch_tokens=int(batch_tokens), output=output,
                       fingerprint=fingerprint)
        out = self._engine.corpus(items, options)
        if isinstance(out, dict) or task == "rerank":
            return out
        return self._out(out)

    # -- reranking and classification -----------------------------------------------------------
    def rerank(self, query: str, documents, instruction: Optional[str] = None, *,
               raw_scores: bool = False, truncate: Optional[bool] = None,
               truncation_direction: str = "right"):
        """Relevance of each document to the query, in document order: [len(documents)]
        float32 sigmoid scores in [0, 1], or with raw_scores=True the logits
        (logit("yes") - logit("no"), TEI's raw score). instruction: the reranker's Instruct line
        (None: the engine's default)."""
        if not isinstance(query, str):
            raise ValueError(f"query must be a string, got {type(query).__name__}")
        scores, logits, _ = self._engine.rerank(query, _texts("documents", documents),
                                                instruction, truncate, truncation_direction)
        return self._out(logits if raw_scores else scores)

    def classify(self, texts, pairs=None, *, raw_scores: bool = False,
                 truncate: Optional[bool] = None, truncation_direction: str = "right"):
        """[len(texts), len(labels)] float32 probabilities (softmax; sigmoid for one label), or
        logits with raw_scores=True; column names in `labels`. pairs: optional second texts."""
        texts = _texts("texts", texts)
        pairs = [] if pairs is None else list(pairs)
        probs, logits, _, _ = self._engine.classify(texts, pairs, truncate, truncation_direction)
        return self._out(logits if raw_scores else probs)

    def tokenize(self, texts, add_special_tokens: bool = True, prompt_name: Optional[str] = None):
        """Token ids of each text as the engine would run it (list of int lists)."""
        return self._engine.tokenize(_texts("texts", texts), add_special_tokens, prompt_name)

    def stats(self) -> dict:
        """Totals over the engine's batches so far: batches, folded_batches, requests, sequences,
        tokens, unique_tokens, rows (what the position-wise ops ran on), run_seconds. Concurrent
        callers' work shares batches, so requests / batches > 1 shows cross-thread batching."""
        return self._engine.stats()

    def shutdown(self):
        """Stops accepting work; queued work finishes first. Later calls raise RuntimeError."""
        self._engine.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __repr__(self):
        i = self.info
        return (f"radix.Engine({i['model']!r}, head={i['head']!r}, devices={i['devices']}, "
                f"attention_mode={i['attention_mode']!r})")
