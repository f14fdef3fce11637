"""python -m radix: the engine from the command line (JSON on stdout, like the `radix` binary).

    python -m radix embed --model demo "hello world" "hello there"
    python -m radix rerank --model demo --query "what is a trie" "a prefix tree" "a fruit"
    python -m radix classify --model /path/to/classifier "some text"
    python -m radix version
"""

import argparse
import json
import sys

from . import __version__, _core


def _engine(args, head=""):
    from .engine import Engine
    return Engine(args.model, device=args.device, attention_mode=args.mode, threads=args.threads,
                  head=head, auto_truncate=args.truncate, radix_threshold=1.0,
                  max_batch_tokens=1 << 30, preallocate=False)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m radix", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the package version and its native module's path")
    cmds = {}
    for name, text in (("embed", "embed texts"), ("rerank", "score documents against a query"),
                       ("classify", "classify texts")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--model", default="demo", help="a Hugging Face folder, demo, random:...")
        p.add_argument("--device", default="cpu")
        p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all)")
        p.add_argument("--mode", default="tree", choices=["off", "scatter", "tree"])
        p.add_argument("--truncate", action="store_true", help="cut over-long inputs")
        cmds[name] = p
    cmds["embed"].add_argument("--prompt-name")
    cmds["embed"].add_argument("--query-instruction")
    cmds["embed"].add_argument("--no-normalize", action="store_true")
    cmds["embed"].add_argument("--dimensions", type=int)
    cmds["rerank"].add_argument("--query", required=True)
    cmds["rerank"].add_argument("--instruction")
    for p in cmds.values():
        p.add_argument("texts", nargs="+")
    args = ap.parse_args(argv)

    if args.command == "version":
        print(f"radix {__version__} ({_core.__file__})")
        return 0
    try:
        engine = _engine(args, head="reranker" if args.command == "rerank" else "")
        out = {"model": args.model, "mode": args.mode}
        if args.command == "embed":
            vectors = engine.embed(args.texts, prompt_name=args.prompt_name,
                                   instruction=args.query_instruction,
                                   normalize=not args.no_normalize, dimensions=args.dimensions)
            out["dim"] = int(vectors.shape[1])
            out["embeddings"] = vectors.tolist()
        elif args.command == "rerank":
            scores, logits, _ = engine._engine.rerank(args.query, args.texts, args.instruction,
                                                      None, "right")
            out["query"] = args.query
            out["results"] = [{"index": i, "score": float(s), "logit": float(l)}
                              for i, (s, l) in enumerate(zip(scores, logits))]
        else:
            probs = engine.classify(args.texts)
            out["labels"] = engine.labels
            out["results"] = [dict(zip(engine.labels, map(float, row))) for row in probs]
        engine.shutdown()
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        print(f"python -m radix {args.command}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
