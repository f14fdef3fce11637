"""bench/ncu_kernels.py: ncu's CSV summed per forward and per kernel name."""
import importlib.util
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("ncu_kernels", REPO / "bench" / "ncu_kernels.py")
ncu_kernels = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ncu_kernels)

HEADER = ('"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream",'
          '"Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit",'
          '"Metric Value"\n')


def row(i, name, unit, value, metric="gpu__time_duration.sum"):
    return (f'"{i}","1","radix","h","{name}","1","7","(128, 1, 1)","(4, 1, 1)","0","9.0",'
            f'"Command line profiler metrics","{metric}","{unit}","{value}"\n')


LINES = [
    "==PROF== Connected to process 1\n",
    HEADER,
    row(0, "void radix::cuda::random_normal_kernel<float>(float *, long)", "ns", "9,000"),
    row(1, "void radix::cuda::(anonymous namespace)::embedding_kernel<4>(int, int)", "ns", "3,000"),
    row(2, "nvjet_sm90_tst_64x64_TNT", "us", "17.5"),
    row(3, "nvjet_sm90_tst_64x64_TNT", "ns", "2,500"),
    row(3, "nvjet_sm90_tst_64x64_TNT", "ns", "123", metric="sm__cycles_elapsed.avg"),
    row(4, "void radix::cuda::(anonymous namespace)::embedding_kernel<4>(int, int)", "ns", "1,000"),
    row(5, "void radix::<unnamed>::add_rmsnorm_kernel<__nv_bfloat16, 8>(T1 *, int)", "ms", "0.004"),
]


def test_kernels_are_read_in_microseconds_and_other_metrics_skipped():
    kernels = ncu_kernels.read_kernels(LINES)
    assert [us for _, us in kernels] == pytest.approx([9.0, 3.0, 17.5, 2.5, 1.0, 4.0])


def test_forwards_start_at_the_embedding_and_names_lose_their_templates():
    runs = ncu_kernels.forwards(ncu_kernels.read_kernels(LINES), "embedding_kernel")
    assert [len(r) for r in runs] == [3, 2]  # the kernel before the first forward is left out
    first = ncu_kernels.summary(runs[0])
    assert first[0] == ("nvjet_sm90_tst_64x64_TNT", 2, pytest.approx(20.0))
    assert first[1] == ("radix::cuda::embedding_kernel", 1, pytest.approx(3.0))
    assert ncu_kernels.summary(runs[1])[0][0] == "radix::add_rmsnorm_kernel"  # ncu's <unnamed>


def test_an_unknown_unit_is_an_error():
    with pytest.raises(ValueError, match="unit"):
        ncu_kernels.read_kernels([HEADER, row(0, "k", "cycle", "5")])


def test_main_prints_each_forward_and_the_chosen_one(tmp_path, capsys):
    path = tmp_path / "kernels.csv"
    path.write_text("".join(LINES))
    ncu_kernels.main([str(path), "--forward", "0"])
    out = capsys.readouterr().out
    assert "forward 0: 3 kernels, 0.023 ms" in out
    assert "forward 1: 2 kernels, 0.005 ms" in out
    assert "2x" in out and "nvjet_sm90_tst_64x64_TNT" in out
