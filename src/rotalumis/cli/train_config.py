"""The options of ``rotalumis train`` as typed groups, and the command's work on them.

:func:`~.train.train` declares the options (Typer needs them as parameters) and packs them
into a :class:`TrainCommand`: what to train on, how, which network, and where the results
go; :func:`run_train` does the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rotalumis.core.limits import limit_traces

from .dataset import progress_bar
from .loading import CommandError, check_writable, load_model
from .options import cluster_option, limit_options
from .train_budget import BudgetOptions, train_until_stopped

__all__ = ["TrainCommand", "TrainInputs", "TrainNetwork", "TrainOutputs", "TrainSettings"]


@dataclass(frozen=True)
class TrainInputs:
    """What to train on: a model (online) or a dataset (offline, with its validation)."""

    target: str | None
    dataset: Path | None
    valid_dataset: Path | None
    holdout: bool
    workers: int
    cluster: str | None = None


@dataclass(frozen=True)
class TrainSettings:
    """How to train (``None``: the default of the mode, online or offline)."""

    num_traces: int | None
    batch_size: int | None
    learning_rate: float | None
    schedule: str
    max_epochs: int
    patience: int
    checkpoint_every: int
    seed: int
    lr_scaling: str
    warmup: int | None
    on_invalid: str = "drop"
    in_memory: bool = False

    def distributed(self, **defaults: Any) -> Any:
        """The :class:`~rotalumis.nn.DistributedConfig` of ``--lr-scaling``/``--warmup``."""
        from rotalumis.nn import DistributedConfig

        if self.lr_scaling not in ("linear", "sqrt", "none"):
            raise CommandError(
                f"--lr-scaling expects linear, sqrt or none, got {self.lr_scaling!r}"
            )
        if self.warmup is not None and self.warmup < 0:
            raise CommandError(f"--warmup must be >= 0 traces, got {self.warmup}")
        warmup = self.warmup if self.warmup is not None else defaults.get("warmup_traces")
        return DistributedConfig(lr_scaling=self.lr_scaling, warmup_traces=warmup)


@dataclass(frozen=True)
class TrainNetwork:
    """The architecture of a new network (``NAME=KIND`` / ``SELECTOR=FAMILY`` strings)."""

    embedding: tuple[str, ...]
    lstm_dim: int
    components: int
    head: tuple[str, ...]
    interest: tuple[str, ...] = ()
    interest_address: tuple[str, ...] = ()

    def embeddings(self) -> dict[str, str]:
        """``--embedding`` as observation name -> embedding kind."""
        from rotalumis.nn import EMBEDDINGS

        out = {}
        for item in self.embedding:
            name, sep, kind = item.partition("=")
            if not sep or not name or kind not in EMBEDDINGS:
                raise CommandError(f"--embedding expects NAME={'|'.join(EMBEDDINGS)}, got {item!r}")
            out[name] = kind
        return out

    def sizes(self) -> dict[str, Any]:
        """The :class:`~rotalumis.nn.NetworkConfig` fields the options set."""
        heads = {}
        for item in self.head:
            selector, sep, family = item.partition("=")
            if not sep or not selector or family not in ("mixture", "flow"):
                raise CommandError(f"--head expects SELECTOR=mixture|flow, got {item!r}")
            heads[selector] = family
        return {
            "lstm_dim": self.lstm_dim,
            "mixture_components": self.components,
            "heads": heads,
            "interest_names": self.interest,
            "interest_addresses": self.interest_address,
        }


@dataclass(frozen=True)
class TrainOutputs:
    """Where the results go and how the run behaves."""

    out: Path
    checkpoint: Path | None
    device: str
    fresh: bool
    quiet: bool
    plot: bool
    max_choices: int | None
    max_seconds: float | None

    @property
    def checkpoint_file(self) -> Path:
        """``--checkpoint`` or ``OUT.ckpt``."""
        return self.checkpoint or self.out.with_name(self.out.name + ".ckpt")


@dataclass(frozen=True)
class TrainCommand:
    """All options of ``rotalumis train``."""

    inputs: TrainInputs
    settings: TrainSettings
    network: TrainNetwork
    outputs: TrainOutputs


def run_train(cmd: TrainCommand, rank: int) -> tuple[Any, str]:
    """Train as ``cmd`` says; return the result and a note on validation for the summary.

    Under ``torchrun``/``srun`` every rank trains; only rank 0 shows progress.

    Raises:
        CommandError: for options that do not fit together.
    """
    from rotalumis.data import TraceDataset
    from rotalumis.nn import (
        NetworkOptions,
        RunOptions,
        TrainingConfig,
        TrainingSource,
        train_network,
        training_device,
    )

    inputs, settings, outputs = cmd.inputs, cmd.settings, cmd.outputs
    if inputs.target is None and inputs.dataset is None:
        raise CommandError("give a model FILE.py:MODEL (online) or --dataset DIR (offline)")
    training_device(outputs.device)  # an unknown or absent device fails before anything runs
    settings.distributed()  # so do bad --lr-scaling / --warmup
    limits = limit_options(outputs.max_choices, outputs.max_seconds)
    ckpt = outputs.checkpoint_file
    check_writable(outputs.out, "--out")
    check_writable(ckpt, "--checkpoint")
    model = load_model(inputs.target) if inputs.target is not None else None  # checks it
    if inputs.dataset is not None:
        model = None  # offline: the dataset holds the traces
        if inputs.cluster is not None:
            raise CommandError("--cluster simulates online training: not with --dataset")
    elif settings.in_memory:
        raise CommandError("--in-memory is for offline training: give --dataset DIR")
    ds = TraceDataset(inputs.dataset) if inputs.dataset is not None else None
    valid = TraceDataset(inputs.valid_dataset) if inputs.valid_dataset is not None else None
    note = ""
    if ds is not None and valid is None and inputs.holdout and len(ds.shard_indices) >= 2:
        ds, valid = ds.split(1)
        note = f" (validation: the dataset's last shard, {len(valid)} traces, held out)"
    embeddings, sizes = cmd.network.embeddings(), cmd.network.sizes()
    quiet = outputs.quiet or rank != 0
    if ds is not None and settings.num_traces is None:
        if valid is None:
            raise CommandError(
                f"--dataset {inputs.dataset} has one shard: nothing to hold out for "
                "validation; give --valid-dataset, or -n for a fixed number of training traces"
            )
        per_epoch = len(ds)
        budget = BudgetOptions(
            settings.max_epochs, settings.patience, settings.batch_size,
            settings.learning_rate, settings.seed, outputs.fresh,
            settings.distributed(warmup_traces=5 * per_epoch), settings.in_memory,
        )  # fmt: skip
        with progress_bar("training", quiet) as bar:
            result, stopped = train_until_stopped(
                ds, valid, outputs.out, ckpt, outputs.device, embeddings, sizes, budget,
                lambda done, total, loss: bar(done, total, f"loss {loss:.3f}"),
            )  # fmt: skip
        return result, note + stopped
    num_traces = 100_000 if settings.num_traces is None else settings.num_traces
    config = TrainingConfig(
        num_traces=num_traces,
        batch_size=64 if settings.batch_size is None else settings.batch_size,
        learning_rate=1e-3 if settings.learning_rate is None else settings.learning_rate,
        schedule=settings.schedule,
        checkpoint_every=settings.checkpoint_every,
        valid_every=max(num_traces // 20, 1),
        seed=settings.seed,
        on_invalid=settings.on_invalid,
    )
    with progress_bar("training", quiet) as bar, limit_traces(**limits):
        result = train_network(
            config=config,
            source=TrainingSource(
                model=model,
                dataset=ds,
                valid_dataset=valid,
                workers=inputs.workers,
                in_memory=settings.in_memory,
                **cluster_option(inputs.cluster, inputs.workers),
            ),
            run=RunOptions(
                checkpoint=ckpt,
                fresh=outputs.fresh,
                device=outputs.device,
                on_step=lambda done, total, loss: bar(done, total, f"loss {loss:.3f}"),
            ),
            network_options=NetworkOptions(embeddings, sizes),
            distributed=settings.distributed(),
        )
    return result, note
