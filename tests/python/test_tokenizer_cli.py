"""`radix tokenize`: JSON out, JSONL in order, clear errors. Uses a byte-level tokenizer.json
written here (ids = byte values, one merge), so it needs neither ../shared nor PyPI."""
import json
import subprocess

import pytest


def byte_char(b: int) -> str:
    printable = 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or b >= 0xAE
    if printable:
        return chr(b)
    return chr(256 + sum(1 for k in range(b) if not (0x21 <= k <= 0x7E or 0xA1 <= k <= 0xAC or k >= 0xAE)))


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory):
    vocab = {byte_char(b): b for b in range(256)}
    vocab["ab"] = 256
    doc = {
        "added_tokens": [{"id": 257, "content": "<eos>", "special": True}],
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "<eos>"}}],
            "pair": [{"Sequence": {"id": "A"}}, {"Sequence": {"id": "B"}},
                     {"SpecialToken": {"id": "<eos>"}}],
            "special_tokens": {"<eos>": {"id": "<eos>", "ids": [257], "tokens": ["<eos>"]}},
        },
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": vocab, "merges": ["a b"]},
    }
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def tokenize(radix_bin, tokenizer_json, *args, stdin=None):
    return subprocess.run([str(radix_bin), "tokenize", "--tokenizer", str(tokenizer_json), *args],
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_text_argument_prints_ids(radix_bin, tokenizer_json):
    r = tokenize(radix_bin, tokenizer_json, "abc")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [256, ord("c")]
    r = tokenize(radix_bin, tokenizer_json, "--add-special-tokens", "abc<eos>")
    assert json.loads(r.stdout) == [256, ord("c"), 257, 257]


def test_stdin_when_no_text(radix_bin, tokenizer_json):
    r = tokenize(radix_bin, tokenizer_json, stdin="ab ab")
    assert json.loads(r.stdout) == [256, 32, 256]


def test_jsonl_one_line_out_per_line_in_order(radix_bin, tokenizer_json, tmp_path):
    texts = [f"{'ab' * (i % 7)} {i}" for i in range(5000)] + ["", "é"]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    r = tokenize(radix_bin, tokenizer_json, "--jsonl", str(path), "--threads", "2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(texts)
    for text, line in zip(texts, lines):
        ids = json.loads(line)["ids"]
        expected = []
        for word in text.split(" ")[:1]:
            expected += [256] * (len(word) // 2)
        if " " in text:
            expected += [32] + [ord(c) for c in text.split(" ")[1]]
        if text == "é":
            expected = [0xC3, 0xA9]
        assert ids == expected, text


def test_jsonl_pairs_and_offsets(radix_bin, tokenizer_json):
    rows = [{"text": "ab", "text_pair": "c"}, {"text": "ab"}]
    r = tokenize(radix_bin, tokenizer_json, "--jsonl", "-", "--add-special-tokens", "--offsets",
                 stdin="".join(json.dumps(x) + "\n" for x in rows))
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert out[0] == {"ids": [256, ord("c"), 257], "offsets": [[0, 2], [0, 1], [0, 0]]}
    assert out[1] == {"ids": [256, 257], "offsets": [[0, 2], [0, 0]]}


def test_errors_are_clear(radix_bin, tokenizer_json, tmp_path):
    r = tokenize(radix_bin, tokenizer_json, "--jsonl", "-", stdin='{"text": "ok"}\n{"txt": 1}\n')
    assert r.returncode != 0 and "line 2" in r.stderr
    r = tokenize(radix_bin, tokenizer_json, "--jsonl", "-", stdin="not json\n")
    assert r.returncode != 0 and "line 1: not valid JSON" in r.stderr
    bad = subprocess.run([str(radix_bin), "tokenize", "--tokenizer", str(tokenizer_json)],
                         input=b"ab\xffcd", capture_output=True, timeout=60)
    assert bad.returncode != 0 and b"invalid UTF-8 at byte 2" in bad.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"model": {"type": "Unigram"}}')
    r = tokenize(radix_bin, broken, "x")
    assert r.returncode != 0 and 'model type "Unigram" is not supported' in r.stderr
