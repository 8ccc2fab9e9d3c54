"""``rotalumis dataset``: generate trace datasets on disk and inspect them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rotalumis.core import RotalumisError
from rotalumis.core.limits import limit_traces
from rotalumis.core.progress import ProgressBar

from .loading import CommandError, fail
from .options import (
    Cluster,
    MaxChoices,
    MaxSeconds,
    Quiet,
    SimulatorPerWorker,
    command_group,
    limit_options,
    model_and_cluster,
)

__all__ = ["dataset_app", "progress_bar"]

dataset_app = command_group(
    "dataset", "Simulate prior traces into a sharded Parquet dataset, and inspect datasets."
)


def progress_bar(description: str, quiet: bool) -> ProgressBar:
    """The progress bar of a command, fed by ``(done, total, info)`` callbacks; silent when
    ``quiet`` or not on a terminal."""
    return ProgressBar(None, description, False if quiet else None)


def _ranges(indices: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` as ``"0-2, 5, 7-8"`` (a dataset may miss a million shards)."""
    parts: list[str] = []
    start = prev = None
    for k in [*sorted(indices), None]:
        if prev is not None and k == prev + 1:
            prev = k
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = k
    return ", ".join(parts)


@dataset_app.command("generate")
def generate(
    target: Annotated[
        str, typer.Argument(help="The model: FILE.py:NAME (a name with --simulator-per-worker)")
    ],
    num_traces: Annotated[int, typer.Option("-n", "--num-traces", help="traces in total")],
    out: Annotated[Path, typer.Option("--out", "-o", help="dataset directory")],
    seed: Annotated[
        int | None, typer.Option(help="random seed (default: recorded fresh one)")
    ] = None,
    traces_per_shard: Annotated[int, typer.Option(help="traces per Parquet file")] = 1000,
    workers: Annotated[
        int, typer.Option(help="write shards in this many processes (same dataset for any)")
    ] = 0,
    cluster: Cluster = None,
    simulator_per_worker: SimulatorPerWorker = None,
    max_choices: MaxChoices = None,
    max_seconds: MaxSeconds = None,
    quiet: Quiet = False,
    on_invalid: Annotated[
        str,
        typer.Option(help="simulations that raise or give NaN/inf: drop (and count) or raise"),
    ] = "drop",
    max_invalid: Annotated[
        float, typer.Option(help="drop: fail when a larger share of the runs is invalid")
    ] = 0.5,
) -> None:
    """Simulate N prior traces of MODEL into OUT; rerun to resume, with a larger N to extend."""
    from rotalumis.core import InvalidPolicy
    from rotalumis.data import TraceDataset, generate_dataset

    try:
        policy = InvalidPolicy(on_invalid, max_invalid)
        limits = limit_options(max_choices, max_seconds)
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} exists and is not a directory")
        with (
            model_and_cluster(target, cluster, workers, simulator_per_worker) as (model, where),
            progress_bar("generating", quiet) as bar,
            limit_traces(**limits),
        ):
            generate_dataset(
                model,
                out,
                num_traces,
                seed=seed,
                traces_per_shard=traces_per_shard,
                on_progress=bar,
                workers=workers,
                policy=policy,
                **where,
            )
        ds = TraceDataset(out)
    except (CommandError, RotalumisError, ValueError, TypeError) as exc:
        fail(str(exc))
        return
    except OSError as exc:
        fail(f"cannot write the dataset to {out}: {exc.strerror or exc} ({exc.filename or out})")
        return
    typer.echo(
        f"{len(ds)} traces of {ds.manifest['model']} in {out} (seed {ds.manifest['seed']}); "
        f"{ds.stats().simulations.summary()}"
    )


@dataset_app.command("info")
def info(
    directory: Annotated[Path, typer.Argument(help="dataset directory")],
    top: Annotated[int, typer.Option(help="trace types and addresses to list")] = 10,
    check: Annotated[bool, typer.Option(help="read every shard fully to find corruption")] = False,
) -> None:
    """Print a dataset's size, trace types and addresses; report missing or corrupt shards."""
    from rich.console import Console
    from rich.table import Table

    from rotalumis.data import TraceDataset

    try:
        ds = TraceDataset(directory)
        bad = ds.validate() if check else dict(ds.corrupt_shards)
    except (RotalumisError, ValueError) as exc:
        fail(str(exc))
        return
    m = ds.manifest
    stats = ds.stats()
    console = Console(file=sys.stdout, soft_wrap=True)
    console.print(
        f"[bold]{directory}[/bold]: {len(ds)} of {m['num_traces']} traces of model "
        f"{m.get('model')!r}, seed {m.get('seed')}, {len(ds.shard_indices)} of "
        f"{m['num_shards']} shards, schema version {m['schema_version']}"
    )
    console.print(f"simulations: {stats.simulations.summary()}")
    obs = ", ".join(f"{k} {tuple(v)}" for k, v in sorted(stats.observations.items()))
    console.print(f"observations: {obs or 'none'}")
    types = Table(title=f"trace types ({len(stats.trace_types)})")
    for col in ("trace type", "choices", "traces", "frequency"):
        types.add_column(col, justify="left" if col == "trace type" else "right")
    for t, c, f in stats.most_common_types(top):
        types.add_row(t, str(stats.type_lengths.get(t, "?")), str(c), f"{f:.4f}")
    console.print(types)
    addresses = Table(title=f"addresses ({len(stats.addresses)})")
    for col in ("address", "distribution", "visits"):
        addresses.add_column(col, justify="right" if col == "visits" else "left")
    for a, c in stats.addresses.most_common(top):
        addresses.add_row(a, stats.distributions.get(a, "?"), str(c))
    console.print(addresses)
    if ds.missing_shards:
        console.print(
            f"[yellow]missing shards[/yellow] (generation unfinished; rerun generate to "
            f"resume): {_ranges(ds.missing_shards)}"
        )
    for path, reason in bad.items():
        console.print(f"[red]corrupt shard[/red] {path}: {reason}")
    if bad:
        raise typer.Exit(1)
