"""``rotalumis train``: train an inference-compilation network, online or from a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rotalumis.core import RotalumisError

from .loading import CommandError, fail
from .options import Cluster, MaxChoices, MaxSeconds, Quiet
from .train_config import (
    TrainCommand,
    TrainInputs,
    TrainNetwork,
    TrainOutputs,
    TrainSettings,
    run_train,
)

__all__ = ["train"]


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
    lr_scaling: Annotated[
        str,
        typer.Option(
            help="under torchrun/srun with N processes: scale --lr by N (linear), sqrt(N) "
            "(sqrt) or not (none); each process trains on --batch-size traces per step"
        ),
    ] = "linear",
    warmup: Annotated[
        int | None,
        typer.Option(
            help="under torchrun/srun: traces over which the scaled learning rate is reached "
            "[default: 5% of -n; offline without -n: 5 epochs]"
        ),
    ] = None,
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
    cluster: Cluster = None,
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
    in_memory: Annotated[
        bool,
        typer.Option(
            "--in-memory",
            help="offline: decode --dataset once and cut the batches out of memory (faster "
            "when it fits; one process; other batches than streaming, so another run)",
        ),
    ] = False,
    quiet: Quiet = False,
    plot: Annotated[
        bool, typer.Option("--plot/--no-plot", help="save the learning curve as OUT.loss.png")
    ] = True,
) -> None:
    """Train an inference network for MODEL (online) or on --dataset (offline); save to OUT.

    With both MODEL and --dataset, training is offline from the dataset. Offline without -n,
    training goes over the dataset for epochs, validates on the held-out shard after each,
    stops when the validation loss has not improved for --patience epochs, and keeps the
    best epoch's network. A checkpoint (OUT.ckpt) is resumed only with the settings that
    wrote it; --fresh starts afresh. Under torchrun --nproc-per-node N (or srun) the N
    processes train together (DDP; see docs/ddp.md) and rank 0 writes the files.
    """
    from rotalumis.nn import launched_rank

    command = TrainCommand(
        TrainInputs(target, dataset, valid_dataset, holdout, workers, cluster),
        TrainSettings(
            num_traces,
            batch_size,
            learning_rate,
            schedule,
            max_epochs,
            patience,
            checkpoint_every,
            seed,
            lr_scaling,
            warmup,
            on_invalid,
            in_memory,
        ),
        TrainNetwork(
            tuple(embedding or ()),
            lstm_dim,
            components,
            tuple(head or ()),
            tuple(interest or ()),
            tuple(interest_address or ()),
        ),
        TrainOutputs(out, checkpoint, device, fresh, quiet, plot, max_choices, max_seconds),
    )
    ckpt = command.outputs.checkpoint_file
    curve = out.with_suffix(".loss.png") if plot else None
    try:
        rank = launched_rank()
        result, held_out = run_train(command, rank)
        if rank != 0:  # the other ranks trained the same network: rank 0 saves it
            return
        result.network.save(out)
        if curve is not None:
            from rotalumis.diagnostics import plot_training

            plot_training(result, curve, title=f"Inference network training ({out.name})")
    except (CommandError, RotalumisError, ValueError, TypeError, KeyError) as exc:
        fail(str(exc))
        return
    except OSError as exc:
        fail(f"cannot write {exc.filename or out}: {exc.strerror or exc}")
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
        if result.world_size > 1:
            resumed += f", by {result.world_size} processes"
        done = (
            f"trained on {result.traces} traces{resumed} "
            f"({result.traces_per_second:,.0f} traces/s){vloss}"
        )
    typer.echo(
        f"{done}; network saved to {out} (checkpoint {ckpt})"
        + (f"; learning curve {curve}" if curve is not None else "")
    )
    if result.simulations.runs:  # online: the runs behind the traces
        typer.echo(f"simulations: {result.simulations.summary()}")
    if result.skipped_steps:
        typer.echo(f"warning: {result.skipped_steps} steps had a NaN/inf loss and were skipped")
