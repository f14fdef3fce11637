"""bench/dtype_agreement.py: its statistics against hand-worked values, and one end-to-end run
on the built-in demo model (float32 against itself must agree exactly, a broken pipeline or a
misaligned row order would not)."""
import importlib.util
import json
import math
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("dtype_agreement",
                                               REPO / "bench" / "dtype_agreement.py")
agreement = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agreement)


def test_spearman_and_cosine_known_values():
    assert agreement.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert agreement.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ties take the mean rank: ranks (0, 1.5, 1.5, 3) against (0, 1, 2, 3).
    assert agreement.ranks([1, 5, 5, 9]) == [0.0, 1.5, 1.5, 3.0]
    assert agreement.spearman([1, 5, 5, 9], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert agreement.cosine([1, 0], [0, 1]) == pytest.approx(0.0)
    assert agreement.cosine([1, 2], [2, 4]) == pytest.approx(1.0)


def test_demo_model_agrees_with_itself(radix_bin, shared_assets):
    dl19 = shared_assets / "msmarco" / "dl19_bm25_top100.json"
    if not dl19.exists():
        pytest.skip("needs ../shared/assets/msmarco/dl19_bm25_top100.json")
    out = subprocess.run([sys.executable, str(REPO / "bench" / "dtype_agreement.py"), "--radix",
                          str(radix_bin), "--model", "demo", "--device", "cpu", "--dtypes",
                          "float32,float32", "--queries", "2", "--dl19", str(dl19)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    assert {r["task"] for r in rows} == {"rerank", "embed"}
    for r in rows:
        if r["task"] == "rerank":
            assert r["queries"] == 2 and r["spearman_min"] == pytest.approx(1.0)
        else:
            assert r["rows"] == 200 and r["cosine_min"] == pytest.approx(1.0, abs=1e-9)
