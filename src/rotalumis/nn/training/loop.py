""":func:`train_network`: the training loop (one process, or data-parallel under DDP)."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

from rotalumis.core.rng import derive_seed

from .._checkpoint import run_identity, training_device
from ..early_stopping import Stopper
from ..network import InferenceNetwork
from ._batches import training_steps, validate, validation_set
from ._checkpoints import add_to_optimizer, load_checkpoint, make_optimizer, save_checkpoint
from ._ddp import Ranks, join
from ._progress import Progress, TrainingResult
from ._register import register_addresses
from .config import DistributedConfig, NetworkOptions, RunOptions, TrainingConfig, TrainingSource

__all__ = ["train_network"]

log = logging.getLogger(__name__)

# the keyword form of the grouped settings: keyword -> (group, field)
_KEYWORDS = {
    "model": ("source", "model"),
    "dataset": ("source", "dataset"),
    "valid_dataset": ("source", "valid_dataset"),
    "model_args": ("source", "model_args"),
    "workers": ("source", "workers"),
    "in_memory": ("source", "in_memory"),
    "cluster": ("source", "cluster"),
    "checkpoint": ("run", "checkpoint"),
    "fresh": ("run", "fresh"),
    "device": ("run", "device"),
    "on_step": ("run", "on_step"),
    "early_stopping": ("run", "early_stopping"),
    "embeddings": ("network_options", "embeddings"),
    "network_sizes": ("network_options", "sizes"),
}


def record_provenance(network: InferenceNetwork, model: Any, dataset: Any) -> None:
    """Record in ``network`` the model whose traces train it.

    Traces of a stand-in for a model (a surrogate, whose ``imitates`` names the model, or a
    dataset whose manifest has ``imitates``) train a network for the imitated model: that is
    its ``model_name`` (so it runs on the simulator without a mismatch warning), and the
    stand-in's own name is kept in ``trained_on``.
    """
    if model is not None:
        name, imitates = model.name, getattr(model, "imitates", None)
    elif dataset is not None:
        name, imitates = dataset.manifest.get("model"), dataset.manifest.get("imitates")
    else:
        return
    if isinstance(imitates, str) and imitates and imitates != name:
        network.model_name, network.trained_on = imitates, name
    else:
        network.model_name = name


def _grouped(
    source: TrainingSource | None,
    run: RunOptions | None,
    network_options: NetworkOptions | None,
    keywords: dict[str, Any],
) -> tuple[TrainingSource, RunOptions, NetworkOptions]:
    """The settings groups, with the keyword form (``model=``, ``checkpoint=``, ...) folded in."""
    unknown = sorted(set(keywords) - set(_KEYWORDS))
    if unknown:
        raise TypeError(
            f"train_network() got unexpected keyword argument(s) {', '.join(unknown)}; it "
            f"takes config=, source=, run=, network_options=, distributed= or the keywords "
            f"{', '.join(_KEYWORDS)}"
        )
    given = {"source": source, "run": run, "network_options": network_options}
    fields: dict[str, dict[str, Any]] = {"source": {}, "run": {}, "network_options": {}}
    for key, value in keywords.items():
        group, name = _KEYWORDS[key]
        if given[group] is not None:
            raise TypeError(f"train_network(): give {key}= inside {group}=, not beside it")
        fields[group][name] = value
    return (
        source or TrainingSource(**fields["source"]),
        run or RunOptions(**fields["run"]),
        network_options or NetworkOptions(**fields["network_options"]),
    )


def train_network(
    network: InferenceNetwork | None = None,
    *,
    config: TrainingConfig,
    source: TrainingSource | None = None,
    run: RunOptions | None = None,
    network_options: NetworkOptions | None = None,
    distributed: DistributedConfig | None = None,
    **keywords: Any,
) -> TrainingResult:
    """Train (or continue training) an inference network.

    The traces come from ``source``: a model (online: fresh prior simulations every step)
    or a dataset (offline). With ``run.checkpoint``, an existing checkpoint file is resumed
    (network, optimizer, progress) and rewritten every ``config.checkpoint_every`` traces
    and at the end. A checkpoint records what its run trains (hyper-parameters, seed, model
    or dataset, number of processes; see :mod:`rotalumis.nn._checkpoint`) and its network:
    resuming it with other settings or another architecture is an error (architecture
    options left unset take the checkpoint's), and a larger ``config.num_traces`` continues
    the same run (the learning-rate schedule then spans the new budget).

    Launched by ``torchrun`` or ``srun`` with several processes (or with the default
    ``torch.distributed`` process group initialised), each process trains on
    ``config.batch_size`` traces per step and DDP averages their gradients (see
    ``docs/ddp.md``); ``distributed`` sets the learning-rate scaling and how addresses are
    registered before training.

    The keyword form ``train_network(model=..., checkpoint=..., embeddings=...,
    network_sizes=...)`` is the same as the grouped one: each of ``model``, ``dataset``,
    ``valid_dataset``, ``model_args``, ``workers``, ``cluster``, ``in_memory`` fill
    ``source``; ``checkpoint``,
    ``fresh``, ``device``, ``on_step``, ``early_stopping`` fill ``run``; ``embeddings`` and
    ``network_sizes`` fill ``network_options``.

    Args:
        network: The network to train; ``None`` creates one from the first batch.
        config: What to train and how.
        source: Where the traces come from.
        run: Checkpoint, device, callbacks, early stopping.
        network_options: The architecture of a network created here.
        distributed: Data-parallel settings (used with several processes).
        **keywords: The keyword form of ``source``, ``run`` and ``network_options``.

    Returns:
        A :class:`TrainingResult` (``.network`` is the trained network).

    Raises:
        CheckpointError: if the checkpoint was written by a run with other settings.
        DatasetError: if the checkpoint is unreadable.
        TypeError: for an unknown keyword, or one given beside its group.
        ValueError: for an unknown or unavailable ``device``, or bad settings.
    """
    source, run, new = _grouped(source, run, network_options, keywords)
    distributed = distributed or DistributedConfig()
    if run.early_stopping is not None and config.valid_size == 0:
        raise ValueError("early_stopping needs validation traces (TrainingConfig.valid_size > 0)")
    ranks, dev = join(training_device(run.device), distributed)
    try:
        return _train(network, config, source, run, new, distributed, ranks, dev)
    finally:
        ranks.close()


def _train(
    network: InferenceNetwork | None,
    config: TrainingConfig,
    source: TrainingSource,
    run: RunOptions,
    new: NetworkOptions,
    distributed: DistributedConfig,
    ranks: Ranks,
    dev: torch.device,
) -> TrainingResult:
    model, dataset, model_args = source.model, source.dataset, source.model_args
    torch.manual_seed(derive_seed(config.seed, "init"))
    progress = Progress()
    ckpt = Path(run.checkpoint) if run.checkpoint is not None else None
    identity = run_identity(config, model, dataset, model_args)
    if ranks.distributed:  # a single process's identity stays what it always was
        identity["distributed"] = distributed.identity(ranks.world_size)
    if source.in_memory:  # other batches than streaming: another run (recorded only if so)
        identity["in_memory"] = True
    opt_state = saved_stop = None
    if ckpt is not None and ckpt.exists() and not run.fresh:
        resumed = load_checkpoint(ckpt, identity, network, new)
        network, progress = resumed.network, resumed.progress
        opt_state, saved_stop = resumed.optimizer, resumed.early_stopping
        log.info("resuming from %s after %d traces", ckpt, progress.traces)
    if ranks.distributed:
        network = register_addresses(
            network, model, dataset, config, distributed, progress, model_args, ranks, new
        )
    steps = training_steps(
        model,
        dataset,
        config,
        progress,
        model_args,
        source.workers,
        ranks,
        source.in_memory,
        source.cluster,
    )
    try:
        first: tuple[Any, int] | None = None
        if network is None:
            first = next(steps)
            network = InferenceNetwork.for_batch(first[0], new.embeddings, **dict(new.sizes or {}))
        if network.model_name is None:
            record_provenance(network, model, dataset)
        network.to(dev).train()
        optimizer = make_optimizer(network, config)
        if opt_state is not None:
            optimizer.load_state_dict(opt_state)
        loss_of = ranks.wrap(network, dev)
        valid = validation_set(model, source.valid_dataset, config, model_args)
        if run.early_stopping is not None and not valid:
            raise ValueError("early_stopping needs validation traces: give valid_dataset=")
        stopper = (
            Stopper(run.early_stopping, progress.valid_loss, saved_stop)
            if run.early_stopping is not None
            else None
        )
        result = TrainingResult(network, progress.traces, progress.steps, 0.0, 0.0)
        result.resumed_traces, result.world_size = progress.traces, ranks.world_size
        start = time.perf_counter()
        traces_start = progress.traces
        next_valid = (progress.traces // config.valid_every + 1) * config.valid_every
        next_ckpt = (progress.traces // config.checkpoint_every + 1) * config.checkpoint_every
        while progress.traces < config.num_traces and not (stopper and stopper.stopped):
            batch, step_size = first if first is not None else next(steps)
            first = None
            if ranks.distributed:  # the layers are all made: DDP cannot take new ones
                ranks.note_unseen(network, batch)
            else:
                for site in network.add_sites(batch):
                    add_to_optimizer(optimizer, list(site.parameters()))
                network.observation_encoder.fit(batch.observations)
            if batch.simulations is not None:
                progress.simulations.add(batch.simulations)
            lr = config.learning_rate_at(progress.traces) * distributed.lr_factor(
                ranks.world_size, progress.traces, config.num_traces
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            scale = batch.size * ranks.world_size / step_size
            # cleared before the forward, in which DDP prepares the gradient reduction
            optimizer.zero_grad(set_to_none=True)
            loss = loss_of(batch, scale)
            loss.backward()  # on every rank, also for a NaN loss (DDP reduces in it)
            value = float(loss.detach()) / scale if scale else 0.0
            if ranks.distributed:  # the step's mean loss over all its traces (all agree)
                value = ranks.sum([value * batch.size], dev)[0] / step_size
            progress.traces += step_size
            progress.steps += 1
            if math.isfinite(value):
                if config.grad_clip is not None:
                    # the optimizer's list holds every parameter (walking modules costs ~2%)
                    torch.nn.utils.clip_grad_norm_(
                        optimizer.param_groups[0]["params"], config.grad_clip
                    )
                optimizer.step()
                progress.add_loss(progress.traces, value)
            else:  # never step on NaN: it would poison every weight
                progress.skipped_steps += 1
                log.warning(
                    "training loss is %s at %d traces: step skipped (%d so far)",
                    value, progress.traces, progress.skipped_steps,
                )  # fmt: skip
            if run.on_step is not None:
                run.on_step(progress.traces, config.num_traces, value)
            done = progress.traces >= config.num_traces
            if valid and (progress.traces >= next_valid or done):
                next_valid += config.valid_every
                vl = validate(network, valid, ranks)
                progress.valid_loss.append((progress.traces, vl))
                log.info("traces %d: loss %.4f, validation loss %.4f", progress.traces, value, vl)
                if stopper is not None and stopper.update(network, progress.traces, vl):
                    done = True
                    log.info("validation loss has not improved for %d validations: stopping",
                             stopper.since_best)  # fmt: skip
            if ckpt is not None and (progress.traces >= next_ckpt or done):
                next_ckpt += config.checkpoint_every
                if ranks.rank == 0:
                    extra = {"early_stopping": stopper.state()} if stopper is not None else None
                    save_checkpoint(ckpt, network, optimizer, config, progress, identity, extra)
        seconds = time.perf_counter() - start
        result.traces, result.steps, result.seconds = progress.traces, progress.steps, seconds
        result.traces_per_second = (progress.traces - traces_start) / max(seconds, 1e-9)
        result.valid_loss = [(int(a), float(b)) for a, b in progress.valid_loss]
        result.loss = progress.loss_history()
        result.unseen_addresses = dict(ranks.unseen)
        result.simulations, result.skipped_steps = progress.simulations, progress.skipped_steps
        if progress.simulations.invalid:
            log.warning("training: %s", progress.simulations.summary())
        if stopper is not None:
            stopper.restore(network)
            result.stopped_early = stopper.stopped
            result.best_valid_loss = (stopper.best_traces, stopper.best_loss)
        network.eval()
        return result
    finally:
        steps.close()  # stops simulation workers
