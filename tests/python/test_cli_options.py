"""Options a first-time user tripped on (issue 10 section 4) and the prompt options of `embed`,
which go through the library core like the server's."""
import json
import re
import subprocess


def run(radix_bin, *args):
    return subprocess.run([str(radix_bin), *args], capture_output=True, text=True, timeout=120)


def embedding(radix_bin, *args):
    r = run(radix_bin, "embed", "--model", "demo", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["embeddings"][0]


def close(a, b, tol=1e-6):
    # Separate runs of the same batch on the same machine; a tolerance all the same, so a BLAS
    # that splits work by timing could not fail it.
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) <= tol


def test_serve_refuses_a_threshold_outside_0_1(radix_bin):
    r = run(radix_bin, "serve", "--model", "demo", "--radix-threshold", "7")
    assert r.returncode != 0
    assert "--radix-threshold must be in [0, 1]" in r.stderr


def test_serve_max_batch_tokens_0_says_what_is_wrong(radix_bin):
    r = run(radix_bin, "serve", "--model", "demo", "--max-batch-tokens", "0")
    assert r.returncode != 0
    assert "--max-batch-tokens must be at least 1" in r.stderr
    assert "1797693" not in r.stderr


def test_tokenize_takes_the_demo_tokenizer(radix_bin):
    r = run(radix_bin, "tokenize", "--tokenizer", "demo", "hi")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [104, 105]


def test_embed_takes_a_tokenizer(radix_bin):
    # The demo tokenizer given explicitly equals the model's own.
    assert close(embedding(radix_bin, "--tokenizer", "demo", "abc"), embedding(radix_bin, "abc"))
    r = run(radix_bin, "embed", "--model", "demo", "--tokenizer", "/nonexistent/tok.json", "x")
    assert r.returncode != 0 and "/nonexistent/tok.json" in r.stderr


def test_embed_default_prompt_is_put_before_the_text(radix_bin):
    prompted = embedding(radix_bin, "--default-prompt", "Instruct: Find it\nQuery:", "radix")
    assert close(prompted, embedding(radix_bin, "Instruct: Find it\nQuery:radix"))
    assert close(prompted, embedding(radix_bin, "--query-instruction", "Find it", "radix"))


def test_embed_unknown_prompt_names_are_errors(radix_bin):
    r = run(radix_bin, "embed", "--model", "demo", "--prompt-name", "nope", "x")
    assert r.returncode != 0 and "prompt_name `nope`" in r.stderr
    r = run(radix_bin, "embed", "--model", "demo", "--default-prompt-name", "nope", "x")
    assert r.returncode != 0 and "nope" in r.stderr
    r = run(radix_bin, "embed", "--model", "demo", "--default-prompt-name", "a",
            "--default-prompt", "b", "x")
    assert r.returncode != 0


def test_embed_pooling_and_dtype(radix_bin):
    last = embedding(radix_bin, "one two three")
    assert close(embedding(radix_bin, "--pooling", "lasttoken", "one two three"), last)
    mean = embedding(radix_bin, "--pooling", "mean", "one two three")
    assert not close(mean, last, 1e-3)
    assert abs(sum(x * x for x in mean) - 1) < 1e-5
    assert close(embedding(radix_bin, "--dtype", "float32", "one two three"), last)
    r = run(radix_bin, "embed", "--model", "demo", "--dtype", "bfloat16", "x")
    assert r.returncode != 0 and "runs float32" in r.stderr


def test_bench_model_prints_progress_and_its_defaults(radix_bin):
    out = subprocess.run([str(radix_bin), "bench", "model", "--model", "demo", "--workload",
                          "syn:B=2,P=8,S=4", "--modes", "off,tree", "--warmup", "0",
                          "--repetitions", "1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # One line before and one after every workload and mode, so a long run is never silent.
    assert out.stderr.count("timed runs...") == 2 and out.stderr.count("median") == 2, out.stderr
    help_text = subprocess.run([str(radix_bin), "bench", "model", "--help"], capture_output=True,
                               text=True, timeout=30).stdout
    assert re.search(r"--warmup \S+=\d+", help_text), help_text
    assert re.search(r"--repetitions \S+=\d+", help_text), help_text


def test_bench_tokenize_finds_the_shared_assets_from_any_directory(radix_bin, shared_assets,
                                                                   tmp_path):
    # Run from a folder that has no ../shared: the defaults are found from the binary's place.
    out = subprocess.run([str(radix_bin), "bench", "tokenize", "--repetitions", "1", "--json"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["passages"] == 4300
