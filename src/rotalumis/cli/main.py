"""The ``rotalumis`` command: run inference on a model file from the shell.

Every user error (missing file, unknown model, bad observation) is printed as one line
starting with ``error:`` and exits with status 2; no traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rotalumis.core import RotalumisError, available_engines

from .calibrate import calibrate_command
from .dataset import dataset_app
from .loading import CommandError, load_model, parse_observations
from .report import report, write_run_report
from .serve import serve_command
from .train import train

__all__ = ["app", "main"]

app = typer.Typer(
    name="rotalumis",
    help="Run stochastic simulators in reverse: Bayesian inference over their random choices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(dataset_app, name="dataset")
app.command()(train)
app.command()(report)
app.command("serve")(serve_command)
app.command("calibrate")(calibrate_command)


@app.callback()
def _root() -> None:
    """Run stochastic simulators in reverse: Bayesian inference over their random choices."""


def fail(message: str) -> None:
    """Print one error line and exit with status 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _engine_options(
    engine: str, burn_in: int, thin: int, chains: int, scale: float
) -> dict[str, Any]:
    if engine in ("lmh", "rmh"):
        opts: dict[str, Any] = {"burn_in": burn_in, "thin": thin, "num_chains": chains}
        if engine == "rmh":
            opts["scale"] = scale
        return opts
    return {}


@app.command()
def run(
    target: Annotated[str, typer.Argument(help="The model: FILE.py:NAME")],
    engine: Annotated[str, typer.Option("--engine", "-e", help="prior, is, lmh, rmh or ic")] = "is",
    num_traces: Annotated[int, typer.Option("-n", "--num-traces", help="traces / samples")] = 1000,
    observe: Annotated[
        list[str] | None,
        typer.Option("--observe", "-o", help="NAME=VALUE (number, JSON list, or @file.npy)"),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (reproducible results)")] = None,
    out: Annotated[Path | None, typer.Option(help="directory for the results")] = None,
    burn_in: Annotated[int, typer.Option(help="MCMC: moves discarded per chain")] = 0,
    thin: Annotated[int, typer.Option(help="MCMC: keep one sample every THIN moves")] = 1,
    chains: Annotated[int, typer.Option(help="MCMC: number of chains")] = 1,
    scale: Annotated[float, typer.Option(help="RMH: step size / prior std")] = 0.5,
    network: Annotated[
        Path | None, typer.Option(help="IC: trained inference network (rotalumis train)")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="worker processes: importance-sampling chunks or MCMC chains in parallel "
            "(same results as 0)"
        ),
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    html_report: Annotated[
        bool, typer.Option("--report", help="also write OUT/report.html (keeps traces)")
    ] = False,
    proposal_only: Annotated[
        bool,
        typer.Option(help="IC: sample the network's proposal alone (no simulator, no weights)"),
    ] = False,
) -> None:
    """Run inference on MODEL and print a posterior summary; save results and a plot to OUT."""
    try:
        if engine not in available_engines():
            raise CommandError(
                f"unknown engine {engine!r} (choose from {', '.join(available_engines())})"
            )
        model = load_model(target)
        observations = parse_observations(observe)
        opts = _engine_options(engine, burn_in, thin, chains, scale)
        if html_report:
            if out is None:
                raise CommandError("--report needs --out DIR (the report is written there)")
            opts["keep_traces"] = True  # the address structure is read from the traces
        if engine == "ic":
            opts["network"] = network
            if proposal_only:
                opts["proposal_only"] = True
        elif proposal_only:
            raise CommandError("--proposal-only needs --engine ic")
        if workers:
            opts["workers"] = workers
        progress = False if quiet else None
        if engine == "prior":
            result = model.prior(num_traces, seed=seed, progress=progress, **opts)
        else:
            result = model.posterior(
                num_traces,
                engine=engine,
                observe=observations,
                seed=seed,
                progress=progress,
                **opts,
            )
    except (CommandError, RotalumisError, ValueError, TypeError) as exc:
        fail(str(exc))
        return
    summary = result.summary()
    ess = _ess_of(result, summary)
    title = f"{engine} posterior of {model.name} ({len(result)} samples, ESS {ess:.1f})"
    _print_summary(title, summary)
    if out is not None:
        _write_results(out, result, engine, model.name, observations, seed)
        typer.echo(f"results written to {out}/ (empirical.npz, summary.json, posterior.png)")
        if html_report:
            typer.echo(f"report written to {write_run_report(out, result)}")


def _ess_of(result: Any, summary: dict[str, dict[str, Any]]) -> float:
    """Replace the importance-sampling ESS by ArviZ's chain ESS for MCMC results."""
    from rotalumis.diagnostics.mcmc import mcmc_ess

    chain_ess = mcmc_ess(result)
    for label, ess in chain_ess.items():
        if label in summary:
            summary[label]["ess"] = ess
    result.metadata["summary"] = summary
    if chain_ess:
        return min(chain_ess.values())
    return float(result.ess)


def _print_summary(title: str, summary: dict[str, dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("quantity", "mean", "std", "5%", "50%", "95%", "ESS"):
        table.add_column(col, justify="left" if col == "quantity" else "right")
    for label, s in summary.items():
        cells = [s.get(k) for k in ("mean", "std", "q05", "q50", "q95", "ess")]
        table.add_row(label, *(_fmt(c) for c in cells))
    Console(file=sys.stdout, soft_wrap=True).print(table)


def _fmt(x: Any) -> str:
    if isinstance(x, (int, float)):
        return f"{x:.4g}"
    if x is None:
        return "-"
    return str(x)


def _write_results(
    out: Path, result: Any, engine: str, model_name: str, observations: dict[str, Any], seed: Any
) -> None:
    from rotalumis.diagnostics.plots import plot_posterior

    out.mkdir(parents=True, exist_ok=True)
    result.save(out / "empirical.npz", traces=False)  # the report keeps what it needs
    meta = {
        "model": model_name,
        "engine": engine,
        "seed": seed,
        "observe": observations,
        "num_samples": len(result),
        "ess": _ess_of(result, result.summary()),
        "summary": result.metadata["summary"],
    }
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2, default=_json_default))
    tmp.replace(out / "summary.json")
    plot_posterior(result, out / "posterior.png", title=f"{model_name}: {engine} posterior")


def _json_default(x: Any) -> Any:
    if hasattr(x, "tolist"):
        return x.tolist()
    return str(x)


def main() -> None:
    """Entry point with logging configured for command-line use."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
