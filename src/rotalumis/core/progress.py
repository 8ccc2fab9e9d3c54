"""One progress bar (Rich) for every long loop: engines, optimization, the CLI.

Rich is imported only when a bar is shown; a bar is shown only when asked for, or, by
default, when stderr is a terminal (so logs and pipes stay clean).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

__all__ = ["ProgressBar"]


class ProgressBar:
    """A Rich progress bar redrawn at most ~10 times a second, so updates cost nothing per step.

    Use it as a context manager; call :meth:`update` (or the bar itself, as a
    ``(done, total, info)`` callback) as work completes.

    Args:
        total: Number of steps (``None``: given later, by the first update).
        description: Text shown before the bar.
        enabled: ``True``/``False`` to force; ``None`` shows it only when stderr is a TTY.
        show_rate: Show the steps per second before the update's ``info``.
        every_step: The caller updates at every step of a hot loop: look at the clock only
            every ``total / 1000`` steps.
    """

    def __init__(
        self,
        total: int | None,
        description: str,
        enabled: bool | None = None,
        *,
        show_rate: bool = False,
        every_step: bool = False,
    ) -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.total = total
        self.enabled = bool(enabled) and (total is None or total > 0)
        self.description = description
        self.show_rate = show_rate
        self._progress: Any = None
        self._task: Any = None
        self._next = 0.0
        self._start = 0.0
        # Check the clock only every ``stride`` steps: time.monotonic is cheap but not free.
        self.stride = max(1, total // 1000) if total and every_step else 1

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
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            self._progress.start()
            if self.total is not None:
                self._task = self._progress.add_task(self.description, total=self.total, info="")
            self._start = time.monotonic()
        return self

    def update(self, done: int, info: str = "", total: int | None = None) -> None:
        """Report that ``done`` steps are complete (call every step; cheap).

        Args:
            done: Steps complete.
            info: Text shown after the bar.
            total: A new total (e.g. known only once the work started).
        """
        if self._progress is None or done % self.stride:
            return
        if total is not None:
            self.total = total
        now = time.monotonic()
        if now < self._next and (self.total is None or done < self.total):
            return
        self._next = now + 0.1
        if self.show_rate:
            info = f"{done / max(now - self._start, 1e-9):,.0f}/s {info}"
        if self._task is None:
            self._task = self._progress.add_task(self.description, total=self.total, info=info)
        self._progress.update(self._task, completed=done, total=self.total, info=info)

    def __call__(self, done: int, total: int, info: str = "") -> None:
        """:meth:`update` as a ``(done, total, info)`` progress callback."""
        self.update(done, info, total)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            if exc is None and self._task is not None:
                self._progress.update(self._task, completed=self.total)
            self._progress.stop()
