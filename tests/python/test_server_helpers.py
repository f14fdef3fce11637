"""Starts and stops a real `radix serve` on a free loopback port for the serving tests.

Not a test module: pytest collects it (the name matches) and finds nothing to run.
"""
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

DEMO_CLASSIFIER = (
    "random:hidden=64,layers=2,heads=2,kv_heads=1,head_dim=32,intermediate=128,vocab=512:classifier"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RadixServer:
    """`radix serve ARGS` on 127.0.0.1; waits for /health; always stopped by stop()."""

    def __init__(self, binary, *args, headers=None, ready_timeout=60.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = headers or {}
        self.log = tempfile.TemporaryFile()
        cmd = [str(binary), "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--tokenization-workers", "2", "--threads", "2", *args]
        env = dict(os.environ)
        env.pop("RADIX_API_KEY", None)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"radix serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + "/health", headers=self.headers, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"radix serve not ready after {ready_timeout} s:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"radix serve did not stop within {timeout} s:\n{self.output()}")
        return self.proc.returncode

    def post(self, path, body=None, **kw):
        headers = {**self.headers, **kw.pop("headers", {})}
        return requests.post(self.url + path, json=body, headers=headers, timeout=kw.pop("timeout", 60), **kw)

    def get(self, path, **kw):
        headers = {**self.headers, **kw.pop("headers", {})}
        return requests.get(self.url + path, headers=headers, timeout=kw.pop("timeout", 60), **kw)

    def metric(self, name: str) -> float:
        """The value of an unlabelled sample in /metrics."""
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)


@pytest.fixture
def start_server(radix_bin):
    """Factory: start_server(*args) -> RadixServer; every server started is stopped afterwards."""
    servers = []

    def start(*args, **kw):
        server = RadixServer(radix_bin, *args, **kw)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop(signal.SIGKILL if s.proc.poll() is None else signal.SIGTERM)
