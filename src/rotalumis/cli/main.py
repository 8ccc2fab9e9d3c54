"""The ``rotalumis`` command: run inference on a model file from the shell.

Every user error (missing file, unknown model, bad observation) is printed as one line
starting with ``error:`` and exits with status 2; no traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from rotalumis.core import RotalumisError, available_engines

from .calibrate import calibrate_command
from .dataset import dataset_app
from .loading import CommandError, fail, load_model, parse_observations
from .options import (
    Cluster,
    MaxChoices,
    MaxSeconds,
    Quiet,
    SimulatorPerWorker,
    cluster_option,
    limit_options,
    model_and_cluster,
)
from .output import RunOutput
from .pool import pool_command
from .report import report, write_run_report
from .serve import serve_command
from .surrogate import load_surrogate, surrogate_app
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
app.add_typer(surrogate_app, name="surrogate")
app.command()(train)
app.command()(report)
app.command("serve")(serve_command)
app.command("calibrate")(calibrate_command)
app.command("pool")(pool_command)


@app.callback()
def _root() -> None:
    """Run stochastic simulators in reverse: Bayesian inference over their random choices."""


MCMC_ENGINES = ("lmh", "rmh", "pmmh")


def _engine_options(
    engine: str,
    given: dict[str, Any],
    params: list[str] | None,
    network: Path | None,
) -> dict[str, Any]:
    """The engine's options; an option given for an engine that does not use it is an error.

    ``given`` maps each MCMC flag to its value (``None``: not given).
    """
    only: dict[str, tuple[Any, tuple[str, ...]]] = {
        "--burn-in": (given["--burn-in"], MCMC_ENGINES),
        "--thin": (given["--thin"], MCMC_ENGINES),
        "--chains": (given["--chains"], MCMC_ENGINES),
        "--param": (params, MCMC_ENGINES),
        "--scale": (given["--scale"], ("rmh", "pmmh")),
        "--param-probability": (given["--param-probability"], ("lmh", "rmh")),
        "--particles": (given["--particles"], ("pmmh",)),
        "--proposal": (given["--proposal"], ("pmmh",)),
        "--refresh": (given["--refresh"], ("pmmh",)),
        "--network": (network, ("ic",)),
        "--proposal-only": (given.get("--proposal-only"), ("ic",)),
    }
    wrong = [
        f for f, (value, engines) in only.items() if value is not None and engine not in engines
    ]
    if wrong:
        engines = only[wrong[0]][1]
        to = (
            f"the MCMC engines ({', '.join(MCMC_ENGINES)})"
            if engines == MCMC_ENGINES
            else " or ".join(f"-e {e}" for e in engines)
        )
        raise CommandError(f"{wrong[0]} only applies to {to}, not -e {engine}")
    opts: dict[str, Any] = {}
    if engine == "ic":
        opts["network"] = network
        if given.get("--proposal-only"):
            opts["proposal_only"] = True
    if engine not in MCMC_ENGINES:
        return opts
    defaults = {"--burn-in": ("burn_in", 0), "--thin": ("thin", 1), "--chains": ("num_chains", 1)}
    for flag, (key, default) in defaults.items():
        opts[key] = default if given[flag] is None else given[flag]
    if engine in ("rmh", "pmmh"):
        opts["scale"] = 0.5 if given["--scale"] is None else given["--scale"]
    if params:
        opts["params"] = params
    if given["--param-probability"] is not None:
        if not params:
            raise CommandError("--param-probability needs --param (the parameters to favour)")
        opts["param_probability"] = given["--param-probability"]
    if engine == "pmmh":
        if not params:
            raise CommandError(
                "-e pmmh needs --param NAME (repeatable): the parameters to infer; every "
                "other random choice is redrawn in each run"
            )
        for flag, key in (("--particles", "num_particles"), ("--proposal", "proposal"),
                          ("--refresh", "refresh")):  # fmt: skip
            if given[flag] is not None:
                opts[key] = given[flag]
    return opts


@app.command()
def run(
    target: Annotated[
        str, typer.Argument(help="The model: FILE.py:NAME (a name with --simulator-per-worker)")
    ],
    engine: Annotated[
        str, typer.Option("--engine", "-e", help="prior, is, lmh, rmh, pmmh or ic")
    ] = "is",
    num_traces: Annotated[int, typer.Option("-n", "--num-traces", help="traces / samples")] = 1000,
    observe: Annotated[
        list[str] | None,
        typer.Option("--observe", "-o", help="NAME=VALUE (number, JSON list, or @file.npy)"),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (reproducible results)")] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="directory for the results (replaced as a whole when complete)"),
    ] = None,
    burn_in: Annotated[
        int | None, typer.Option(help="MCMC: moves discarded per chain [default: 0]")
    ] = None,
    thin: Annotated[
        int | None, typer.Option(help="MCMC: keep one sample every THIN moves [default: 1]")
    ] = None,
    chains: Annotated[int | None, typer.Option(help="MCMC: number of chains [default: 1]")] = None,
    scale: Annotated[
        float | None, typer.Option(help="RMH, PMMH: step size / prior std [default: 0.5]")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="MCMC: a parameter's name or address pattern (repeatable); PMMH infers "
            "these, LMH/RMH move one of them with probability --param-probability",
        ),
    ] = None,
    param_probability: Annotated[
        float | None, typer.Option(help="LMH/RMH: probability of moving a --param (0.5)")
    ] = None,
    particles: Annotated[
        int | None, typer.Option(help="PMMH: simulator runs averaged per step (1)")
    ] = None,
    proposal: Annotated[
        str | None, typer.Option(help="PMMH: random_walk (default) or prior")
    ] = None,
    refresh: Annotated[
        float | None,
        typer.Option(help="PMMH: share of the other draws redrawn per step (1; <1: correlated)"),
    ] = None,
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
    cluster: Cluster = None,
    simulator_per_worker: SimulatorPerWorker = None,
    max_choices: MaxChoices = None,
    max_seconds: MaxSeconds = None,
    quiet: Quiet = False,
    html_report: Annotated[
        bool, typer.Option("--report", help="also write OUT/report.html (keeps traces)")
    ] = False,
    proposal_only: Annotated[
        bool,
        typer.Option(help="IC: sample the network's proposal alone (no simulator, no weights)"),
    ] = False,
    surrogate: Annotated[
        Path | None,
        typer.Option(help="run on this surrogate of MODEL instead (MODEL '-': no fallbacks)"),
    ] = None,
) -> None:
    """Run inference on MODEL and print a posterior summary; save results and a plot to OUT."""
    output: RunOutput | None = None
    stack = contextlib.ExitStack()  # a cluster started for --simulator-per-worker
    try:
        if engine not in available_engines():
            raise CommandError(
                f"unknown engine {engine!r} (choose from {', '.join(available_engines())})"
            )
        given = {
            "--burn-in": burn_in,
            "--thin": thin,
            "--chains": chains,
            "--scale": scale,
            "--param-probability": param_probability,
            "--particles": particles,
            "--proposal": proposal,
            "--refresh": refresh,
            "--proposal-only": True if proposal_only else None,
        }
        opts = _engine_options(engine, given, param, network)
        opts.update(limit_options(max_choices, max_seconds))
        if html_report and out is None:
            raise CommandError("--report needs --out DIR (the report is written there)")
        if surrogate is not None:
            if simulator_per_worker is not None:
                raise CommandError("give --surrogate or --simulator-per-worker, not both")
            model = load_surrogate(surrogate, None if target == "-" else load_model(target))
            opts.update(cluster_option(cluster, workers))
        else:
            place = model_and_cluster(target, cluster, workers, simulator_per_worker)
            model, where = stack.enter_context(place)
            opts.update(where)
        observations = parse_observations(observe)
        if out is not None:
            output = RunOutput(out)  # before the inference: a bad --out fails now
        if html_report:
            opts["keep_traces"] = True  # the address structure is read from the traces
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
        if surrogate is not None:
            result.metadata["surrogate"] = {"file": str(surrogate), **model.stats.to_dict()}
        summary = result.summary()  # ESS: Kish for weighted samples, ArviZ's bulk ESS for chains
        result.metadata["summary"] = summary
        ess = result.ess
        title = f"{engine} posterior of {model.name} ({len(result)} samples, ESS {ess:.1f})"
        _print_summary(title, summary)
        if output is not None:
            _write_results(output.staging, result, engine, model.name, observations, seed)
            page = write_run_report(output.staging, result) if html_report else None
            output.commit()
            typer.echo(f"results written to {out}/ (empirical.npz, summary.json, posterior.png)")
            if page is not None:
                typer.echo(f"report written to {output.out / page.name}")
    except (CommandError, RotalumisError, ValueError, TypeError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write the results to {out}: {exc}")
    finally:
        stack.close()
        if output is not None:
            output.discard()


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

    run_id = uuid.uuid4().hex  # the files of one run carry it; `rotalumis report` checks
    result.metadata["run_id"] = run_id
    result.save(out / "empirical.npz", traces=False)  # the report keeps what it needs
    meta = {
        "run_id": run_id,
        "model": model_name,
        "engine": engine,
        "seed": seed,
        "observe": observations,
        "num_samples": len(result),
        "ess": result.ess,
        "summary": result.metadata["summary"],
    }
    if "surrogate" in result.metadata:
        meta["surrogate"] = result.metadata["surrogate"]
    (out / "summary.json").write_text(json.dumps(meta, indent=2, default=_json_default))
    plot_posterior(result, out / "posterior.png", title=f"{model_name}: {engine} posterior")


def _json_default(x: Any) -> Any:
    if hasattr(x, "tolist"):
        return x.tolist()
    return str(x)


def _is_a(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is click's exception ``name`` (typer may vendor its own click)."""
    return any(c.__name__ == name for c in type(exc).__mro__)


def main(argv: list[str] | None = None) -> None:
    """Entry point with logging configured for command-line use.

    Usage errors (an unknown option, ``-n abc``) are one ``error:`` line too, exit status 2.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        status = app(args=argv, standalone_mode=False, prog_name="rotalumis")
    except Exception as exc:
        if _is_a(exc, "NoArgsIsHelpError"):  # the help is shown already
            sys.exit(2)
        if _is_a(exc, "UsageError"):
            ctx = getattr(exc, "ctx", None)
            command = ctx.command_path if ctx is not None else "rotalumis"
            message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
            typer.echo(f"error: {message} (see {command} --help)", err=True)
            sys.exit(2)
        if _is_a(exc, "Abort"):
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        raise
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
