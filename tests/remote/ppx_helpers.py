"""Shared helpers of the PPX tests: addresses, served ``rotalumis serve`` processes."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MODELS = HERE / "sim_models.py"
PEERS = HERE / "peers"
PYPROB_PYTHON = ROOT / ".venv-pyprob" / "bin" / "python"


def ipc_address() -> str:
    """A fresh abstract-namespace IPC address (no file left behind)."""
    return f"ipc://@rotalumis-test-{os.getpid()}-{uuid.uuid4().hex[:10]}"


def tcp_address() -> str:
    """A loopback TCP address on a port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


#: Tolerance of statistical tests in Monte Carlo standard errors (as in the local engine tests):
#: a correct implementation fails a comparison with probability below 1e-6.
Z = 5.0


def is_stderr(values, weights):  # type: ignore[no-untyped-def]
    """Standard error of a self-normalised importance-sampling mean, sqrt(Var_w / Kish ESS)."""
    import numpy as np

    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    x = np.asarray(values, dtype=float)
    mean = float(np.sum(w * x))
    var = float(np.sum(w * (x - mean) ** 2))
    return float(np.sqrt(max(var, 1e-12) * float(np.sum(w * w))))


def _default_sigint() -> None:  # background shells start children with SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Served:
    """A ``rotalumis serve`` child process."""

    def __init__(self, proc: subprocess.Popen[str], address: str) -> None:
        self.proc = proc
        self.address = address
        self.stderr = ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal the server, wait for it (kill it after ``timeout``), keep its stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, self.stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, self.stderr = self.proc.communicate(timeout=timeout)
        return int(self.proc.returncode)


def start_server(model: str, address: str, env: dict[str, str] | None = None) -> Served:
    """Start ``rotalumis serve tests/remote/sim_models.py:MODEL`` and wait until it listens."""
    cmd = [sys.executable, "-m", "rotalumis.cli.serve", f"{MODELS}:{model}", "--address", address]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=_default_sigint,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60.0)
    line = proc.stdout.readline() if ready else ""
    if "serving" not in line:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise RuntimeError(f"rotalumis serve did not start: {line!r} {err[-2000:]}")
    return Served(proc, address)


@contextmanager
def served(model: str, address: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """Context manager around :func:`start_server` that always stops the process."""
    server = start_server(model, address, env)
    try:
        yield server
    finally:
        server.stop()


def wait_for(predicate, timeout: float = 10.0, step: float = 0.02) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
