"""``rotalumis calibrate``: is a trained network's posterior right across observations?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rotalumis.core import RotalumisError

from .dataset import progress_bar
from .loading import CommandError, fail, load_model
from .options import Quiet

__all__ = ["calibrate_command"]


def calibrate_command(
    target: Annotated[str, typer.Argument(help="The model: FILE.py:NAME")],
    network: Annotated[Path, typer.Option(help="trained inference network (rotalumis train)")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="directory for calibration.json and plots")
    ] = Path("calibration"),
    simulations: Annotated[
        int, typer.Option("-n", "--simulations", help="prior simulations (theta*, y)")
    ] = 200,
    samples: Annotated[int, typer.Option(help="posterior samples per simulation (L)")] = 99,
    method: Annotated[
        str, typer.Option(help="proposal (the network alone) or ic (importance sampling)")
    ] = "proposal",
    ic_traces: Annotated[int, typer.Option(help="ic: traces per simulation")] = 1000,
    level: Annotated[float, typer.Option(help="significance level of the tests")] = 0.01,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    quiet: Quiet = False,
) -> None:
    """Simulation-based calibration (rank histograms) and TARP coverage of NETWORK on MODEL.

    Writes OUT/calibration.json, OUT/calibration_ranks.png, OUT/calibration_coverage.png
    and OUT/calibration.html; `rotalumis report OUT` (when OUT is also a run directory)
    includes the calibration section.
    """
    from rotalumis.diagnostics import (
        calibrate,
        plot_coverage,
        plot_rank_histograms,
        write_calibration_report,
    )
    from rotalumis.diagnostics.calibration import CALIBRATION_FILE
    from rotalumis.infer.ic import load_network

    try:
        if not 0.0 < level < 1.0:
            raise CommandError(f"--level must be in (0, 1), got {level}")
        model = load_model(target)
        net = load_network(network)
        with progress_bar("calibrating", quiet) as bar:
            result = calibrate(
                model, net, simulations, samples, method=method, ic_traces=ic_traces,
                seed=seed, on_simulation=bar,
            )  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        result.save(out / CALIBRATION_FILE)
        plot_rank_histograms(result, out / "calibration_ranks.png")
        plot_coverage(result, out / "calibration_coverage.png")
        page = write_calibration_report(result, out / "calibration.html", level)
    except (CommandError, RotalumisError, ValueError, TypeError, KeyError) as exc:
        fail(exc)
    typer.echo(result.summary(level))
    typer.echo(f"results in {out}/ (report {page})")
