"""``rotalumis surrogate``: train a probabilistic surrogate, and check it against its simulator.

``rotalumis run MODEL --surrogate S.pt`` then runs inference on the surrogate (``-`` as
MODEL: without the simulator, so without fallbacks).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rotalumis.core import Model, RotalumisError

from .dataset import progress_bar
from .loading import CommandError, check_writable, fail, load_model
from .options import Quiet, command_group

__all__ = ["load_surrogate", "surrogate_app"]

surrogate_app = command_group(
    "surrogate",
    "Train a probabilistic surrogate of a simulator, and compare it with the simulator.",
)


def load_surrogate(path: Path, simulator: Model | None) -> Any:
    """The :class:`~rotalumis.surrogate.SurrogateModel` saved in ``path``.

    Raises:
        CommandError: if ``simulator`` is not the model the surrogate imitates.
    """
    from rotalumis.surrogate import SurrogateModel

    model = SurrogateModel.load(path, simulator)
    if simulator is not None and model.imitates not in (None, simulator.name):
        raise CommandError(
            f"--surrogate {path} imitates model {model.imitates!r}, not {simulator.name!r}"
        )
    return model


@surrogate_app.command("train")
def train_command(
    target: Annotated[
        str | None, typer.Argument(help="FILE.py:MODEL to simulate training traces from")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="file for the surrogate")] = Path(
        "surrogate.pt"
    ),
    dataset: Annotated[
        Path | None, typer.Option(help="train from this trace dataset instead")
    ] = None,
    num_traces: Annotated[
        int, typer.Option("-n", "--num-traces", help="simulated training traces")
    ] = 10_000,
    epochs: Annotated[int, typer.Option(help="passes over the traces")] = 1,
    batch_size: Annotated[int, typer.Option(help="traces per gradient step")] = 32,
    learning_rate: Annotated[float, typer.Option(help="Adam's initial learning rate")] = 1e-2,
    lstm_dim: Annotated[int, typer.Option(help="LSTM hidden size")] = 64,
    site: Annotated[
        list[str] | None,
        typer.Option(
            "--site",
            "-s",
            help="model only this choice (name or address pattern, repeatable); the others "
            "are marginalised [default: all]",
        ),
    ] = None,
    validation: Annotated[
        int,
        typer.Option(
            help="held-out traces: their -log q is reported after every epoch and the best "
            "epoch's weights are kept"
        ),
    ] = 0,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    quiet: Quiet = False,
) -> None:
    """Train a surrogate on prior traces of MODEL (or of --dataset); save it to OUT."""
    from rotalumis.surrogate import SurrogateConfig, SurrogateTraining, train_surrogate

    try:
        if (target is None) == (dataset is None):
            raise CommandError("give either MODEL or --dataset DIR (the training traces)")
        config = SurrogateConfig(lstm_dim=lstm_dim, sites=tuple(site or ()))
        training = SurrogateTraining(
            num_traces=num_traces,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            validation_traces=validation,
        )
        check_writable(out, "--out")
        source: Any = load_model(target) if target is not None else dataset
        with progress_bar("training surrogate", quiet) as bar:
            trained = train_surrogate(
                source, config, training, progress=lambda i, n, loss: bar(i, n, f"{loss:.3f}")
            )
        trained.network.save(out)
    except (CommandError, RotalumisError, ValueError, TypeError) as exc:
        fail(str(exc))
    n = len(trained.network.specs)
    typer.echo(
        f"surrogate of {trained.network.model_name} with {n} addresses trained on "
        f"{trained.traces} traces (simulation {trained.simulation_seconds:.1f} s, training "
        f"{trained.training_seconds:.1f} s), saved to {out}"
    )
    if trained.validation:
        losses = ", ".join(f"{loss:.3f}" for _, loss in trained.validation)
        typer.echo(f"held-out -log q per epoch: {losses}; kept epoch {trained.best_epoch}")


@surrogate_app.command("check")
def check_command(
    surrogate: Annotated[Path, typer.Argument(help="the surrogate file (surrogate train)")],
    target: Annotated[str, typer.Argument(help="FILE.py:MODEL, the simulator it imitates")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="directory for the numbers and plots")
    ] = None,
    num_traces: Annotated[int, typer.Option("-n", "--num-traces", help="traces each")] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Compare the surrogate with its simulator: trace types, values per address (C2ST)."""
    from rotalumis.diagnostics import compare_surrogate

    try:
        simulator = load_model(target)
        model = load_surrogate(surrogate, simulator)
        fidelity = compare_surrogate(model, simulator, num_traces=num_traces, seed=seed)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            fidelity.save(out)
            fidelity.plot_trace_types(out / "surrogate_trace_types.png")
            fidelity.plot_sites(out / "surrogate_sites.png")
    except (CommandError, RotalumisError, ValueError, TypeError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write to {out}: {exc}")
    numbers = {
        "trace_type_tv": fidelity.trace_type_tv,
        "trace_type_tv_noise": fidelity.trace_type_tv_noise,
        "max_c2st": fidelity.max_c2st,
        "fallback_rate": fidelity.fallback_rate,
    }
    typer.echo(json.dumps(numbers, indent=1))
