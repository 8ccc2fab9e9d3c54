"""Options shared by several commands: the limits per trace, the Dask cluster."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from rotalumis.core import Model

from .loading import CommandError, load_model

__all__ = [
    "Cluster",
    "MaxChoices",
    "MaxSeconds",
    "Quiet",
    "SimulatorPerWorker",
    "cluster_option",
    "command_group",
    "limit_options",
    "model_and_cluster",
]

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

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")]

Cluster = Annotated[
    str | None,
    typer.Option(
        help="run the work units on a Dask cluster: a scheduler address (tcp://host:8786) "
        "or local:N for a local cluster of N workers (same results as without; needs "
        "pip install 'rotalumis[distributed]')"
    ),
]


def command_group(name: str, help: str) -> typer.Typer:
    """A ``rotalumis NAME ...`` sub-command group, configured as the root app is."""
    return typer.Typer(
        name=name,
        help=help,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )


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


SimulatorPerWorker = Annotated[
    str | None,
    typer.Option(
        "--simulator-per-worker",
        help="with --cluster: start one PPX simulator per Dask worker from this command "
        "('./sim --serve {address}'); MODEL is then just the model's name",
    ),
]


@contextlib.contextmanager
def model_and_cluster(
    target: str, cluster: str | None, workers: int, simulator: str | None
) -> Iterator[tuple[Model, dict[str, Any]]]:
    """The model of ``target`` and the ``cluster=`` / ``workers=`` options; with
    ``--simulator-per-worker``, a cluster whose workers each run that simulator (closed
    when the block ends) and the model that runs on them, named ``target``.

    Raises:
        CommandError: for a bad target, ``--cluster`` or simulator command.
    """
    where = cluster_option(cluster, workers)
    if simulator is None:
        yield load_model(target), where
        return
    if cluster is None:
        raise CommandError("--simulator-per-worker needs --cluster (the workers to run on)")
    from rotalumis.distributed import DaskExecutor
    from rotalumis.remote.worker_plugin import SimulatorPerWorker as Plugin

    try:
        plugin = Plugin(shlex.split(simulator))
    except ValueError as exc:
        raise CommandError(f"--simulator-per-worker: {exc}") from None
    with DaskExecutor(cluster, worker_plugins=[plugin]) as executor:
        yield plugin.model(name=target), {"cluster": executor}


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
