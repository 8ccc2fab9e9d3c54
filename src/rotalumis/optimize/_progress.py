"""A Rich progress bar for optimization loops, silent when not on a terminal."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

__all__ = ["StepProgress"]


class StepProgress:
    """Shows steps done, the smoothed loss and the parameters, redrawn at most 10 times a second.

    Args:
        total: Number of steps.
        enabled: ``True``/``False`` to force; ``None`` shows it only when stderr is a TTY.
    """

    def __init__(self, total: int, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.total = total
        self.enabled = bool(enabled) and total > 0
        self._progress: Any = None
        self._task: Any = None
        self._next = 0.0

    def __enter__(self) -> StepProgress:
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
                TextColumn("[bold]optimize"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
            )
            self._progress.start()
            self._task = self._progress.add_task("optimize", total=self.total, info="")
        return self

    def update(self, done: int, info: str) -> None:
        """Report ``done`` finished steps; ``info`` is shown after the bar."""
        if self._progress is None:
            return
        now = time.monotonic()
        if now < self._next and done < self.total:
            return
        self._next = now + 0.1
        self._progress.update(self._task, completed=done, info=info)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
