"""Pieces shared by the engines: observation checks and the Empirical builder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rotalumis.core import Model, ObservationError, Trace

__all__ = ["ObservationChecker", "check_num_traces"]

_MAX_TRACES_TO_SEE_A_NAME = 100


def check_num_traces(num_traces: object, what: str = "num_traces") -> int:
    """Validate a positive trace count."""
    if isinstance(num_traces, bool) or not isinstance(num_traces, int) or num_traces < 1:
        raise ValueError(f"{what} must be a positive integer, got {num_traces!r}")
    return num_traces


class ObservationChecker:
    """Raise :class:`ObservationError` for an observation name the model never observes.

    A name that appears in none of the first executions (a model may observe some names
    only on some branches, so a few executions are allowed) is reported with the names the
    model does observe.
    """

    def __init__(self, model: Model, observe: Mapping[str, Any] | None) -> None:
        self.model = model
        self.unseen = set(observe or ())
        self.known: set[str] = set()
        self.count = 0

    def check(self, trace: Trace) -> None:
        """Check one trace (cheap once every name was seen)."""
        if not self.unseen:
            return
        for v in trace.variables:
            if v.name is not None and v.kind != "tag":
                self.known.add(v.name)
        self.unseen -= self.known
        self.count += 1
        if self.unseen and self.count >= _MAX_TRACES_TO_SEE_A_NAME:
            self.fail()

    def fail(self) -> None:
        """Raise for the names not seen so far."""
        names = ", ".join(sorted(self.unseen))
        known = ", ".join(sorted(self.known)) or "none"
        raise ObservationError(
            f"model {self.model.name!r} never observes {names} (it has named sites: {known})"
        )

    def finish(self) -> None:
        """Call after the run: fails if some name was never seen."""
        if self.unseen:
            self.fail()
