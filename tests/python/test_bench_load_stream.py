"""bench/load.py's stream workload against `radix serve` (demo model): the shared prefix is fitted
to P tokens and stays a token prefix of every request, and the server's hit rate comes back in the
JSON line (about P / (P + S) with the cache on, 0 with it off)."""
import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def run_load(radix_bin, cache_mib):
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "load.py"), "--radix-bin", str(radix_bin),
         "--serve-args", f"--model demo --threads 2 --prefix-cache-mib {cache_mib}",
         "--workload", "stream:P=200,S=20", "--requests", "6"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    assert len(rows) == 1
    return rows[0]


def test_stream_reports_the_cache_hit_rate(radix_bin):
    on = run_load(radix_bin, 64)
    assert on["ok"] == 6 and on["concurrency"] == 1 and on["batches"] == 6
    # The demo tokenizer is byte-level: the fit lands within a word of P.
    assert abs(on["prefix_tokens"] - 200) <= 12, on
    assert on["request_tokens"] > on["prefix_tokens"]
    expected = on["prefix_tokens"] / on["request_tokens"]
    assert expected - 0.05 <= on["cache_hit_rate"] <= 1.0, on
    off = run_load(radix_bin, 0)
    assert off["cache_hit_rate"] == 0.0 and off["cache_hit_tokens"] == 0
    assert off["prefix_tokens"] == on["prefix_tokens"]
