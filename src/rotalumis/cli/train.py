"""``rotalumis train``: train an inference-compilation network, online or from a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rotalumis.core import RotalumisError
from rotalumis.core.limits import limit_traces

from .dataset import progress_bar
from .loading import CommandError, check_writable, load_model
from .options import MaxChoices, MaxSeconds, limit_options
from .train_budget import BudgetOptions, train_until_stopped

__all__ = ["train"]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _embeddings(items: list[str] | None) -> dict[str, str]:
    from rotalumis.nn import EMBEDDINGS

    out = {}
    for item in items or []:
        name, sep, kind = item.partition("=")
        if not sep or not name or kind not in EMBEDDINGS:
            raise CommandError(f"--embedding expects NAME={'|'.join(EMBEDDINGS)}, got {item!r}")
        out[name] = kind
    return out


def _heads(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        selector, sep, family = item.partition("=")
        if not sep or not selector or family not in ("mixture", "flow"):
            raise CommandError(f"--head expects SELECTOR=mixture|flow, got {item!r}")
        out[selector] = family
    return out


def train(
    target: Annotated[
        str | None, typer.Argument(help="FILE.py:MODEL for online training (fresh simulations)")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="file for the trained network")] = Path(
        "network.pt"
    ),
    num_traces: Annotated[
        int | None,
        typer.Option(
            "-n",
            "--num-traces",
            help="training traces [default: online 100000; offline: epochs until the "
            "validation loss stops improving]",
        ),
    ] = None,
    dataset: Annotated[
        Path | None, typer.Option(help="train offline from this trace dataset")
    ] = None,
    valid_dataset: Annotated[
        Path | None,
        typer.Option(help="validation trace dataset [default: --dataset's last shard]"),
    ] = None,
    holdout: Annotated[
        bool,
        typer.Option(
            "--holdout/--no-holdout",
            help="without --valid-dataset, validate on --dataset's last shard (not trained on)",
        ),
    ] = True,
    batch_size: Annotated[
        int | None, typer.Option(help="traces per step [default: 64; offline 200]")
    ] = None,
    learning_rate: Annotated[
        float | None,
        typer.Option("--lr", help="initial learning rate [default: 1e-3; offline 5e-4]"),
    ] = None,
    schedule: Annotated[str, typer.Option(help="constant, cosine or exponential")] = "cosine",
    max_epochs: Annotated[
        int, typer.Option(help="offline without -n: most epochs over the dataset")
    ] = 500,
    patience: Annotated[
        int, typer.Option(help="offline without -n: epochs without a better validation loss")
    ] = 20,
    checkpoint: Annotated[
        Path | None, typer.Option(help="checkpoint file, resumed if present [default: OUT.ckpt]")
    ] = None,
    checkpoint_every: Annotated[int, typer.Option(help="traces between checkpoints")] = 50_000,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:1, ...")] = "cpu",
    workers: Annotated[
        int,
        typer.Option(
            help="online: simulate in this many worker processes, ahead of training "
            "(same network for any number)"
        ),
    ] = 0,
    embedding: Annotated[
        list[str] | None,
        typer.Option(help="NAME=ff|cnn2d|cnn3d|set|cnn1d|gru embedding of an observation"),
    ] = None,
    lstm_dim: Annotated[int, typer.Option(help="LSTM hidden size")] = 128,
    components: Annotated[int, typer.Option(help="mixture components per proposal")] = 5,
    interest: Annotated[
        list[str] | None,
        typer.Option(help="propose only this named latent (repeatable); the rest: the prior"),
    ] = None,
    interest_address: Annotated[
        list[str] | None,
        typer.Option(help="propose only choices whose address contains this (repeatable)"),
    ] = None,
    head: Annotated[
        list[str] | None,
        typer.Option(
            help="SELECTOR=mixture|flow: proposal family per kind of address (SELECTOR: "
            "vector, scalar, real, bound, pos, a distribution name, or *), e.g. vector=flow"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    fresh: Annotated[
        bool,
        typer.Option(help="start afresh: ignore (and overwrite) an existing checkpoint"),
    ] = False,
    max_choices: MaxChoices = None,
    max_seconds: MaxSeconds = None,
    on_invalid: Annotated[
        str,
        typer.Option(help="online: simulations that raise or give NaN/inf: drop or raise"),
    ] = "drop",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    plot: Annotated[
        bool, typer.Option("--plot/--no-plot", help="save the learning curve as OUT.loss.png")
    ] = True,
) -> None:
    """Train an inference network for MODEL (online) or on --dataset (offline); save to OUT.

    With both MODEL and --dataset, training is offline from the dataset. Offline without -n,
    training goes over the dataset for epochs, validates on the held-out shard after each,
    stops when the validation loss has not improved for --patience epochs, and keeps the
    best epoch's network. A checkpoint (OUT.ckpt) is resumed only with the settings that
    wrote it; --fresh starts afresh.
    """
    from rotalumis.data import TraceDataset
    from rotalumis.nn import TrainingConfig, train_network
    from rotalumis.nn._checkpoint import training_device

    try:
        if target is None and dataset is None:
            raise CommandError("give a model FILE.py:MODEL (online) or --dataset DIR (offline)")
        training_device(device)  # an unknown or absent device fails before anything runs
        limits = limit_options(max_choices, max_seconds)
        ckpt = checkpoint if checkpoint is not None else out.with_name(out.name + ".ckpt")
        check_writable(out, "--out")
        check_writable(ckpt, "--checkpoint")
        model = load_model(target) if target is not None else None  # checks the target
        if dataset is not None:
            model = None  # offline: the dataset holds the traces
        ds = TraceDataset(dataset) if dataset is not None else None
        valid = TraceDataset(valid_dataset) if valid_dataset is not None else None
        held_out = ""
        if ds is not None and valid is None and holdout and len(ds.shard_indices) >= 2:
            ds, valid = ds.split(1)
            held_out = f" (validation: the dataset's last shard, {len(valid)} traces, held out)"
        sizes = {
            "lstm_dim": lstm_dim,
            "mixture_components": components,
            "heads": _heads(head),
            "interest_names": tuple(interest or ()),
            "interest_addresses": tuple(interest_address or ()),
        }
        if ds is not None and num_traces is None:
            if valid is None:
                raise CommandError(
                    f"--dataset {dataset} has one shard: nothing to hold out for validation; "
                    "give --valid-dataset, or -n for a fixed number of training traces"
                )
            with progress_bar("training", quiet) as bar:
                result, note = train_until_stopped(
                    ds, valid, out, ckpt, device, _embeddings(embedding), sizes,
                    BudgetOptions(max_epochs, patience, batch_size, learning_rate, seed, fresh),
                    lambda done, total, loss: bar(done, total, f"loss {loss:.3f}"),
                )  # fmt: skip
            held_out += note
        else:
            config = TrainingConfig(
                num_traces=100_000 if num_traces is None else num_traces,
                batch_size=64 if batch_size is None else batch_size,
                learning_rate=1e-3 if learning_rate is None else learning_rate,
                schedule=schedule,
                checkpoint_every=checkpoint_every,
                valid_every=max((100_000 if num_traces is None else num_traces) // 20, 1),
                seed=seed,
                on_invalid=on_invalid,
            )
            with progress_bar("training", quiet) as bar, limit_traces(**limits):
                result = train_network(
                    model=model,
                    dataset=ds,
                    valid_dataset=valid,
                    config=config,
                    checkpoint=ckpt,
                    device=device,
                    workers=workers,
                    embeddings=_embeddings(embedding),
                    network_sizes=sizes,
                    on_step=lambda done, total, loss: bar(done, total, f"loss {loss:.3f}"),
                    fresh=fresh,
                )
        result.network.save(out)
        curve = out.with_suffix(".loss.png") if plot else None
        if curve is not None:
            from rotalumis.diagnostics import plot_training

            plot_training(result, curve, title=f"Inference network training ({out.name})")
    except (CommandError, RotalumisError, ValueError, TypeError, KeyError) as exc:
        _fail(str(exc))
        return
    except OSError as exc:
        _fail(f"cannot write {exc.filename or out}: {exc.strerror or exc}")
        return
    vloss = (
        f", validation loss {result.valid_loss[-1][1]:.4f}{held_out}" if result.valid_loss else ""
    )
    if result.traces == result.resumed_traces:
        done = (
            f"checkpoint {ckpt} already holds the whole training ({result.traces} traces; "
            "--fresh retrains, a larger -n continues)"
        )
    else:
        resumed = f", resumed after {result.resumed_traces}" if result.resumed_traces else ""
        done = (
            f"trained on {result.traces} traces{resumed} "
            f"({result.traces_per_second:,.0f} traces/s){vloss}"
        )
    typer.echo(
        f"{done}; network saved to {out} (checkpoint {ckpt})"
        + (f"; learning curve {curve}" if curve is not None else "")
    )
    if model is not None:  # online: the runs behind the traces
        typer.echo(f"simulations: {result.simulations.summary()}")
    if result.skipped_steps:
        typer.echo(f"warning: {result.skipped_steps} steps had a NaN/inf loss and were skipped")
