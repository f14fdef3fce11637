#!/usr/bin/env python3
"""Where a forward's GPU time goes, kernel by kernel, from an Nsight Compute CSV.

Record the kernels' durations with caches and clocks left as they are (so that each kernel runs
as it would in the forward, only one at a time), then sum them per forward:

  ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv \
      --log-file kernels.csv build/cuda-release/radix bench model --device cuda \
      --model random:qwen3-8b --workload stream:P=2048,S=64,N=2 --modes tree
  python3 bench/ncu_kernels.py kernels.csv            # the last forward
  python3 bench/ncu_kernels.py kernels.csv --forward 0

A forward starts at its embedding lookup (`--start`, a substring of the kernel name). Kernel
names are shortened to their qualified name without template arguments and parameters. The sum
is the GPU's busy time with every kernel at full clock: a forward's wall time above it is launch
gaps, host work, or a lower clock (a GPU at its power cap).
"""
import argparse
import collections
import csv
import sys

UNITS_US = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}


def read_kernels(lines):
    """[(kernel name, microseconds)] in launch order, from ncu's --csv output (log lines skipped)."""
    rows = csv.DictReader(line for line in lines if line.startswith('"'))
    kernels = []
    for row in rows:
        if row["Metric Name"] != "gpu__time_duration.sum":
            continue
        unit = row["Metric Unit"]
        if unit not in UNITS_US:
            raise ValueError(f"unknown duration unit {unit!r}")
        value = float(row["Metric Value"].replace(",", ""))
        kernels.append((row["Kernel Name"], value * UNITS_US[unit]))
    return kernels


def short_name(name):
    """`void ns::kernel<T, 4>(args)` -> `ns::kernel`."""
    out, depth = [], 0
    for ch in name.replace("void ", "", 1).replace("(anonymous namespace)::", "").replace(
            "<unnamed>::", ""):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0:
            break
        elif depth == 0:
            out.append(ch)
    return "".join(out).strip()


def forwards(kernels, start):
    """The kernels split into forwards, each beginning at a kernel whose name contains `start`."""
    begins = [i for i, (name, _) in enumerate(kernels) if start in name]
    return [kernels[b:e] for b, e in zip(begins, begins[1:] + [len(kernels)])]


def summary(forward):
    """[(short name, count, total us)], largest total first."""
    by_name = collections.defaultdict(lambda: [0, 0.0])
    for name, us in forward:
        entry = by_name[short_name(name)]
        entry[0] += 1
        entry[1] += us
    return sorted(((n, c, t) for n, (c, t) in by_name.items()), key=lambda r: -r[2])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", help="ncu --csv output (its log lines are skipped)")
    ap.add_argument("--forward", type=int, default=-1, help="which forward (default: the last)")
    ap.add_argument("--start", default="embedding_kernel",
                    help="a substring of the first kernel of every forward")
    args = ap.parse_args(argv)
    with open(args.csv) as f:
        kernels = read_kernels(f)
    runs = forwards(kernels, args.start)
    if not runs:
        sys.exit(f"no kernel named like {args.start!r} among {len(kernels)} kernels")
    for i, run in enumerate(runs):
        print(f"forward {i}: {len(run)} kernels, {sum(us for _, us in run) / 1e3:.3f} ms")
    chosen = runs[args.forward]
    print(f"\nforward {args.forward % len(runs)}, by kernel:")
    for name, count, total in summary(chosen):
        print(f"  {total / 1e3:8.3f} ms  {count:4d}x  {total / count:8.2f} us  {name}")


if __name__ == "__main__":
    main()
