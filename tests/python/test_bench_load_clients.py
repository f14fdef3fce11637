"""bench/load.py with its clients split over processes, against `radix serve` (demo model): every
request is sent once and answered, the line names the client processes and the client's CPU, and
the server's batch phases come back (plan, enqueue and wait are measured on the CPU backend too;
without a prefix cache prepare and finish are 0)."""
import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_clients_over_processes_send_each_request_once(radix_bin):
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "load.py"), "--radix-bin", str(radix_bin),
         "--serve-args", "--model demo --threads 2", "--workload", "embed",
         "--concurrency", "4", "--requests", "24", "--client-processes", "2"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    assert len(rows) == 1
    row = rows[0]
    assert row["requests"] == 24 and row["ok"] == 24 and row["errors"] == 0, row
    assert row["client_processes"] == 2
    assert row["client_cores_busy"] > 0
    # The server saw exactly the timed requests' inputs (one text each), each once.
    assert row["batches"] >= 1
    phases = row["batch_phase_ms_mean"]
    assert set(phases) == {"plan", "prepare", "enqueue", "wait", "finish"}, phases
    assert phases["enqueue"] > 0
    assert phases["prepare"] == 0 and phases["finish"] == 0
    assert sum(phases.values()) <= row["batch_ms_mean"] * 1.01 + 0.01, row
