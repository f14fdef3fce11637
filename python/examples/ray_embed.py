"""Embed a JSONL or parquet dataset across Ray actors with radix (docs/deploy.md, "Ray").

    python ray_embed.py corpus.jsonl out/ --model /models/Qwen3-Embedding-0.6B --actors 4 --gpus 1
    python ray_embed.py corpus.parquet out/ --model demo --actors 2 --threads 1 --cpus-per-actor 0.5

The input needs a "text" column (and optionally "instruction"); the output is parquet with an
"embedding" column added. Each actor holds one radix.Engine; within each block radix orders the
rows by shared prefix before batching (radix.ray.Embedder).
"""

import argparse

import ray

import radix.ray


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input", help="a .jsonl or .parquet file (or folder)")
    p.add_argument("output", help="output folder (parquet)")
    p.add_argument("--model", default="demo")
    p.add_argument("--actors", type=int, default=2)
    p.add_argument("--gpus", type=float, default=0, help="GPUs per actor (0: CPU actors)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per actor (0: all)")
    p.add_argument("--cpus-per-actor", type=float, default=1,
                   help="Ray CPUs each actor holds (leave some free for the read tasks)")
    p.add_argument("--batch-size", type=int, default=4096, help="rows per block handed to an actor")
    p.add_argument("--instruction-column", default=None)
    args = p.parse_args()

    ray.init()
    if args.input.endswith(".parquet"):
        ds = ray.data.read_parquet(args.input)
    else:
        ds = ray.data.read_json(args.input, lines=True)
    ds = radix.ray.embed_dataset(ds, args.model, actors=args.actors, gpus_per_actor=args.gpus,
                                 cpus_per_actor=args.cpus_per_actor,
                                 batch_size=args.batch_size, threads=args.threads,
                                 instruction_column=args.instruction_column)
    ds.write_parquet(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
