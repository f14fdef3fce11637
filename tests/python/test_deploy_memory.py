"""deploy/memory_estimate.py against measured peaks, and docs/deploy.md's table against it.

The measured figures are the CUDA backend's allocation high-water marks (weights, activation
arena, cuBLASLt workspace, attention scratch) from bench/RESULTS.md, H100 runs of
`radix bench model` in `off` mode, where the arena has one row per token. The estimate leaves out
only the attention scratch (tile tables, megabytes), so it must land within 3 % below the peak;
RESULTS.md rounds to 0.1 GiB, which the tolerance also covers.
"""
import importlib.util
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "memory_estimate.py"


def load():
    spec = importlib.util.spec_from_file_location("memory_estimate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# (model, tokens in the batch, measured peak GiB in `off` mode): bench/RESULTS.md, 2026-11-23
# H100 grid (syn B=32: P=32,S=256 -> 9,216 tokens) and the 65,536-token 8B check.
MEASURED = [
    ("0.6b", 9216, 1.5),
    ("8b", 9216, 15.2),
    ("8b", 65536, 21.9),
]


@pytest.mark.parametrize("model,tokens,peak_gib", MEASURED)
def test_estimate_matches_measured_peak(model, tokens, peak_gib):
    m = load()
    est = m.estimate(m.QWEN3[model], "bf16", tokens)["total"] / m.GIB
    assert peak_gib * 0.97 - 0.05 <= est <= peak_gib + 0.05, f"estimate {est:.2f} GiB, measured {peak_gib}"


def test_weights_follow_the_shapes():
    m = load()
    # Parameter counts the models are named for (the embedding head reads no LM-head rows).
    assert m.weight_params(m.QWEN3["0.6b"], 0) == pytest.approx(0.596e9, rel=0.01)
    assert m.weight_params(m.QWEN3["4b"], 0) == pytest.approx(4.02e9, rel=0.01)
    # Qwen3-8B has 8.19e9 parameters with its untied 0.62e9 LM head, which no radix head loads.
    assert m.weight_params(m.QWEN3["8b"], 0) == pytest.approx(8.19e9 - 151669 * 4096, rel=0.01)
    s = m.QWEN3["8b"]
    assert m.estimate(s, "fp32", 1024)["weights"] == 2 * m.estimate(s, "bf16", 1024)["weights"]


def test_config_json_gives_the_same_shape(tmp_path):
    m = load()
    (tmp_path / "config.json").write_text(
        '{"hidden_size": 2560, "num_hidden_layers": 36, "num_attention_heads": 32, '
        '"num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 9728, "vocab_size": 151669}')
    assert m.shape_from_config(str(tmp_path / "config.json")) == m.QWEN3["4b"]


def test_docs_table_is_the_scripts():
    table = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                           check=True).stdout.strip()
    docs = (REPO / "docs" / "deploy.md").read_text()
    assert table in docs, "docs/deploy.md's memory table differs from deploy/memory_estimate.py's"
