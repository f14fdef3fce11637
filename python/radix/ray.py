"""radix on Ray Data: embed or rerank a dataset across actors, one radix.Engine per actor.

    import ray, radix.ray
    ds = ray.data.read_json("corpus.jsonl")            # a "text" column (and "instruction"?)
    ds = ds.map_batches(radix.ray.Embedder, fn_constructor_kwargs={"model": "/models/Qwen3-Embedding-0.6B"},
                        compute=ray.data.ActorPoolStrategy(size=4), num_gpus=1,
                        batch_size=4096)
    ds.write_parquet("embeddings/")

Each actor loads the model once (on the GPU Ray gives it when num_gpus > 0) and runs every block
it is handed through Engine.embed_corpus: the block's rows are ordered by token path so rows that
share a prefix (an instruction, a query) fold together, and the results come back in row order.
Ray is imported here only (and only by embed_dataset): `import radix` never needs it.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .engine import Engine


def _device(device: Optional[str]) -> str:
    if device is not None:
        return device
    try:  # inside a Ray actor: the GPUs Ray assigned (CUDA_VISIBLE_DEVICES is set to them)
        import ray
        if ray.is_initialized() and ray.get_gpu_ids():
            return "cuda"
    except ImportError:
        pass
    return "cpu"


def _column(batch, name: str):
    try:
        column = batch[name]
    except (KeyError, IndexError):
        raise ValueError(f"the batch has no column {name!r} (columns: {list(batch.keys())})") \
            from None
    return [None if v is None else str(v) for v in column]


class _Actor:
    def __init__(self, model: str, device: Optional[str], batch_tokens: Optional[int],
                 engine_options: dict):
        self.engine = Engine(model, device=_device(device), **engine_options)
        self.batch_tokens = batch_tokens

    @staticmethod
    def _with(batch, column: str, values):
        if isinstance(batch, dict):  # batch_format="numpy" (Ray's default)
            out = dict(batch)
            out[column] = values
            return out
        batch = batch.copy()  # pandas.DataFrame
        batch[column] = list(values) if values.ndim > 1 else values
        return batch


class Embedder(_Actor):
    """A callable class for Dataset.map_batches: adds `output_column` ([dim] float32 per row) to
    each batch. text_column holds the texts; instruction_column (optional) a per-row
    Qwen3-Embedding instruction (None or "" in a row: `instruction`). Other keyword arguments go
    to radix.Engine (threads, max_batch_tokens, attention_mode, ...)."""

    def __init__(self, model: str, *, text_column: str = "text",
                 instruction_column: Optional[str] = None, output_column: str = "embedding",
                 instruction: Optional[str] = None, prompt_name: Optional[str] = None,
                 normalize: bool = True, dimensions: Optional[int] = None,
                 batch_tokens: Optional[int] = None, device: Optional[str] = None,
                 **engine_options):
        super().__init__(model, device, batch_tokens, engine_options)
        self.text_column, self.instruction_column = text_column, instruction_column
        self.output_column = output_column
        self.options = dict(instruction=instruction, prompt_name=prompt_name,
                            normalize=normalize, dimensions=dimensions)

    def __call__(self, batch):
        texts = _column(batch, self.text_column)
        if self.instruction_column is None:
            items = texts
        else:
            items = [{"text": t, "instruction": i or None}
                     for t, i in zip(texts, _column(batch, self.instruction_column))]
        vectors = np.asarray(self.engine.embed_corpus(items, self.batch_tokens, **self.options))
        return self._with(batch, self.output_column, vectors)


class Reranker(_Actor):
    """A callable class for Dataset.map_batches: adds `output_column` (float32 relevance, or the
    logit with raw_scores=True) for each row's (query_column, document_column) pair."""

    def __init__(self, model: str, *, query_column: str = "query",
                 document_column: str = "document", output_column: str = "score",
                 instruction: Optional[str] = None, raw_scores: bool = False,
                 batch_tokens: Optional[int] = None, device: Optional[str] = None,
                 **engine_options):
        super().__init__(model, device, batch_tokens, engine_options)
        self.query_column, self.document_column = query_column, document_column
        self.output_column = output_column
        self.options = dict(instruction=instruction, raw_scores=raw_scores)

    def __call__(self, batch):
        pairs = list(zip(_column(batch, self.query_column), _column(batch, self.document_column)))
        scores = np.asarray(self.engine.rerank_corpus(pairs, self.batch_tokens, **self.options))
        return self._with(batch, self.output_column, scores)


def embed_dataset(dataset, model: str, *, actors: int = 1, gpus_per_actor: float = 0,
                  cpus_per_actor: float = 1, batch_size: int = 4096, **options):
    """dataset.map_batches over `actors` Embedder actors (each with `gpus_per_actor` GPUs and
    `cpus_per_actor` of Ray's CPUs): returns the lazy Dataset with an "embedding" column.
    `options` go to Embedder. Leave Ray CPUs free for the read tasks: actors that hold every CPU
    starve them and the dataset never finishes."""
    import ray.data
    return dataset.map_batches(Embedder, fn_constructor_kwargs=dict(model=model, **options),
                               compute=ray.data.ActorPoolStrategy(size=actors),
                               num_gpus=gpus_per_actor, num_cpus=cpus_per_actor,
                               batch_size=batch_size,
                               batch_format="numpy")
