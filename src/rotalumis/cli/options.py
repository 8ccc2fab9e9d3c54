"""Options shared by several commands: the limits per trace, the Dask cluster."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .loading import CommandError

__all__ = ["Cluster", "MaxChoices", "MaxSeconds", "cluster_option", "limit_options"]

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

Cluster = Annotated[
    str | None,
    typer.Option(
        help="run the work units on a Dask cluster: a scheduler address (tcp://host:8786) "
        "or local:N for a local cluster of N workers (same results as without; needs "
        "pip install 'rotalumis[distributed]')"
    ),
]


def cluster_option(cluster: str | None, workers: int) -> dict[str, Any]:
    """``--cluster`` as an option of engines and the dataset writer.

    Raises:
        CommandError: with ``--workers`` too, or for a malformed address.
    """
    if cluster is None:
        return {}
    if workers:
        raise CommandError("give --workers or --cluster, not both (a cluster has its own)")
    from rotalumis.distributed import parse_cluster

    try:
        parse_cluster(cluster)
    except ValueError as exc:
        raise CommandError(f"--cluster: {exc}") from None
    return {"cluster": cluster}


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
