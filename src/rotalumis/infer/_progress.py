"""A progress bar for long engine loops (Rich), silent when not on a terminal."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

__all__ = ["ProgressBar"]


class ProgressBar:
    """Rich progress bar updated at most ~10 times per second, so it costs nothing per trace.

    Args:
        total: Number of steps.
        description: Text shown before the bar.
        enabled: ``True``/``False`` to force; ``None`` shows it only when stderr is a TTY.
    """

    def __init__(self, total: int, description: str, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.total = total
        self.enabled = bool(enabled) and total > 0
        self.description = description
        self._progress: Any = None
        self._task: Any = None
        self._next = 0.0
        self._done = 0
        # Check the clock only every ``stride`` steps: time.monotonic is cheap but not free.
        self.stride = max(1, total // 1000)

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, rate="")
            self._start = time.monotonic()
        return self

    def update(self, done: int, info: str = "") -> None:
        """Report that ``done`` steps are complete (call every step; cheap)."""
        if self._progress is None or done % self.stride:
            return
        now = time.monotonic()
        if now < self._next and done < self.total:
            return
        self._next = now + 0.1
        elapsed = max(now - self._start, 1e-9)
        rate = f"{done / elapsed:,.0f}/s {info}"
        self._progress.update(self._task, completed=done, rate=rate)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            if exc is None:
                self._progress.update(self._task, completed=self.total)
            self._progress.stop()
