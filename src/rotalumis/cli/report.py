"""``rotalumis report DIR``: one self-contained HTML page from a ``rotalumis run`` directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rotalumis.core import RotalumisError

from .loading import fail

__all__ = ["report", "write_run_report"]


def _parse_truth(items: list[str] | None) -> dict[str, float]:
    truth: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            truth[name] = float(value)
        except ValueError:
            fail(f"--truth expects NAME=NUMBER, got {item!r}")
    return truth


def report(
    directory: Annotated[Path, typer.Argument(help="results directory of `rotalumis run --out`")],
    out: Annotated[
        Path | None, typer.Option(help="HTML file to write (default DIR/report.html)")
    ] = None,
    truth: Annotated[
        list[str] | None,
        typer.Option("--truth", "-t", help="NAME=VALUE known value drawn on the posterior"),
    ] = None,
    top: Annotated[int, typer.Option(help="address graph of the TOP most frequent types")] = 5,
) -> None:
    """Write an HTML report (summary, diagnostics, plots, address structure) for DIR."""
    if top < 1:
        fail(f"--top must be at least 1, got {top}")
    from rotalumis.diagnostics.report import write_report

    try:
        path = write_report(directory, out, truth=_parse_truth(truth), top=top)
    except (FileNotFoundError, RotalumisError, ValueError) as exc:
        fail(exc)
    typer.echo(f"report written to {path}")


def write_run_report(out: Path, result: Any) -> Path:
    """After ``rotalumis run --report``: save the address structure of the kept traces next
    to the results and write ``OUT/report.html``."""
    from rotalumis.diagnostics.report import save_address_structure, write_report

    save_address_structure(result, out)
    return write_report(out)
