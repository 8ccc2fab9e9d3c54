"""``rotalumis train``: train an inference-compilation network, online or from a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rotalumis.core import RotalumisError

from .dataset import progress_bar
from .loading import CommandError, load_model

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


def train(
    target: Annotated[
        str | None, typer.Argument(help="FILE.py:MODEL for online training (fresh simulations)")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="file for the trained network")] = Path(
        "network.pt"
    ),
    num_traces: Annotated[
        int, typer.Option("-n", "--num-traces", help="training traces")
    ] = 100_000,
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
    batch_size: Annotated[int, typer.Option(help="traces per step")] = 64,
    learning_rate: Annotated[float, typer.Option("--lr", help="initial learning rate")] = 1e-3,
    schedule: Annotated[str, typer.Option(help="constant, cosine or exponential")] = "cosine",
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
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
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

    With both MODEL and --dataset, training is offline from the dataset.
    """
    from rotalumis.data import TraceDataset
    from rotalumis.nn import TrainingConfig, train_network

    try:
        if target is None and dataset is None:
            raise CommandError("give a model FILE.py:MODEL (online) or --dataset DIR (offline)")
        model = load_model(target) if target is not None else None  # checks the target
        if dataset is not None:
            model = None  # offline: the dataset holds the traces
        ds = TraceDataset(dataset) if dataset is not None else None
        valid = TraceDataset(valid_dataset) if valid_dataset is not None else None
        held_out = ""
        if ds is not None and valid is None and holdout and len(ds.shard_indices) >= 2:
            ds, valid = ds.split(1)
            held_out = f" (validation: the dataset's last shard, {len(valid)} traces, held out)"
        config = TrainingConfig(
            num_traces=num_traces,
            batch_size=batch_size,
            learning_rate=learning_rate,
            schedule=schedule,
            checkpoint_every=checkpoint_every,
            valid_every=max(num_traces // 20, 1),
            seed=seed,
            on_invalid=on_invalid,
        )
        ckpt = checkpoint if checkpoint is not None else out.with_name(out.name + ".ckpt")
        with progress_bar("training", quiet) as bar:
            result = train_network(
                model=model,
                dataset=ds,
                valid_dataset=valid,
                config=config,
                checkpoint=ckpt,
                device=device,
                workers=workers,
                embeddings=_embeddings(embedding),
                network_sizes={
                    "lstm_dim": lstm_dim,
                    "mixture_components": components,
                    "interest_names": tuple(interest or ()),
                    "interest_addresses": tuple(interest_address or ()),
                },
                on_step=lambda done, total, loss: bar(done, total, f"loss {loss:.3f}"),
            )
        result.network.save(out)
        curve = out.with_suffix(".loss.png") if plot else None
        if curve is not None:
            from rotalumis.diagnostics import plot_training

            plot_training(result, curve, title=f"Inference network training ({out.name})")
    except (CommandError, RotalumisError, ValueError, TypeError, KeyError) as exc:
        _fail(str(exc))
        return
    vloss = (
        f", validation loss {result.valid_loss[-1][1]:.4f}{held_out}" if result.valid_loss else ""
    )
    typer.echo(
        f"trained on {result.traces} traces ({result.traces_per_second:,.0f} traces/s){vloss}; "
        f"network saved to {out} (checkpoint {ckpt})"
        + (f"; learning curve {curve}" if curve is not None else "")
    )
    if model is not None:  # online: the runs behind the traces
        typer.echo(f"simulations: {result.simulations.summary()}")
    if result.skipped_steps:
        typer.echo(f"warning: {result.skipped_steps} steps had a NaN/inf loss and were skipped")
