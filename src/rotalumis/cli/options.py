"""Options shared by several commands: the limits per trace."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .loading import CommandError

__all__ = ["MaxChoices", "MaxSeconds", "limit_options"]

MaxChoices = Annotated[
    int | None,
    typer.Option(
        help="most random choices (sites) in one execution; 0: no limit "
        "[default: 1,000,000, or the model's trace_limits]"
    ),
]
MaxSeconds = Annotated[
    float | None,
    typer.Option(
        help="most seconds one execution may run; 0: no limit "
        "[default: 3600, or the model's trace_limits]"
    ),
]


def limit_options(max_choices: int | None, max_seconds: float | None) -> dict[str, Any]:
    """``--max-choices`` / ``--max-seconds`` as engine options (``0``: no limit).

    Raises:
        CommandError: for a negative value.
    """
    opts: dict[str, Any] = {}
    for key, value in (("max_choices", max_choices), ("max_seconds", max_seconds)):
        if value is not None:
            if value < 0:
                raise CommandError(f"--{key.replace('_', '-')} must be >= 0, got {value}")
            opts[key] = value or None
    return opts
