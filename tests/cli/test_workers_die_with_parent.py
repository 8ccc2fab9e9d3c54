"""``rotalumis run --workers N`` killed by SIGTERM (what ``timeout``, SLURM and systemd send)
or SIGKILL: no worker process survives its parent (issue 12, defect 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BAD = str(Path(__file__).resolve().parent / "bad_models.py")

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads processes from /proc"
)


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped running; only its exit status is left


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_workers_die_with_their_parent(sig: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rotalumis.cli", "run", f"{BAD}:busy", "-n", "200000",
         "--workers", "2", "--seed", "0", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            workers = _children(proc.pid)
        assert len(workers) >= 2, f"no workers started: {proc.stderr and proc.stderr.read()}"
        time.sleep(1.0)  # both are busy with their chunks now
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert proc.returncode == -sig  # the parent died of the signal, as it should
        deadline = time.monotonic() + 15
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [w for w in workers if _alive(w)]
        assert not survivors, f"workers {survivors} survived their parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for w in workers:  # never leave a spinning process behind, even when the test fails
            if _alive(w):
                os.kill(w, signal.SIGKILL)
        if proc.stderr is not None:
            proc.stderr.close()
