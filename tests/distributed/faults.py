"""Fault injection for the cluster tests: kill a process while the cluster is busy."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def killed_when_busy(client: Any, pid: int, after: float = 0.3) -> Iterator[dict[str, bool]]:
    """While the block runs, SIGKILL ``pid`` ``after`` seconds into the first moment the
    cluster of ``client`` runs tasks; ``state["killed"]`` says whether it was killed (the
    block may end first)."""
    state = {"killed": False, "finished": False}

    def kill_when_busy() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not state["finished"]:
            if any(client.processing().values()):
                time.sleep(after)  # well inside its units
                if not state["finished"]:
                    os.kill(pid, signal.SIGKILL)
                    state["killed"] = True
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    try:
        yield state
    finally:
        state["finished"] = True
        killer.join()
