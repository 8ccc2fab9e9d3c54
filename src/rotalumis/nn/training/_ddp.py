"""Data-parallel training with ``torch.distributed``: the processes of a run, DDP, reductions.

A run is data-parallel when it is launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the
environment), by ``srun`` (``SLURM_STEP_NUM_TASKS`` > 1, with ``MASTER_ADDR`` exported), or
when the caller already initialised the default process group. Each process (a *rank*)
trains a replica of the network on its own part of every step's traces; DDP averages the
gradients, so the replicas stay identical. Alone (one process) :class:`Ranks` is a no-op.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import torch
import torch.distributed as dist
from torch import nn

from rotalumis.data import TraceBatch

from ..network import InferenceNetwork
from .config import DistributedConfig

__all__ = ["Ranks", "join", "launched_rank"]

log = logging.getLogger(__name__)


class _LossOf(nn.Module):
    """The training loss as a module's ``forward`` (what DDP wraps): the batch's mean loss
    times ``scale`` (its share of the step's traces times the number of ranks, so that
    DDP's mean of the ranks' gradients is the gradient of the mean over all traces)."""

    def __init__(self, network: InferenceNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, batch: TraceBatch, scale: float) -> torch.Tensor:
        if batch.size == 0:  # fewer traces than ranks: this one contributes nothing
            return next(self.network.parameters()).sum() * 0.0
        loss: torch.Tensor = self.network.loss(batch) * scale
        return loss


class Ranks:
    """This process's place among the processes of a run (``world_size`` 1: alone).

    Args:
        world_size: Processes of the run.
        rank: This process's index.
        local_rank: Its index on this machine (which GPU it uses).
        owns_group: Whether this run created the process group (and so destroys it).
    """

    def __init__(
        self, world_size: int = 1, rank: int = 0, local_rank: int = 0, owns_group: bool = False
    ) -> None:
        self.world_size = world_size
        self.rank = rank
        self.local_rank = local_rank
        self.owns_group = owns_group
        self.unseen: dict[str, int] = {}

    @property
    def distributed(self) -> bool:
        """Whether several processes train together."""
        return self.world_size > 1

    def part(self, table: pa.Table) -> pa.Table:
        """This rank's contiguous share of a step's rows (sizes differ by at most one)."""
        if not self.distributed:
            return table
        n = table.num_rows
        start = n * self.rank // self.world_size
        stop = n * (self.rank + 1) // self.world_size
        return table.slice(start, stop - start)

    def sum(
        self, values: Sequence[float], device: torch.device, agree: bool = False
    ) -> list[float]:
        """Element-wise sums over the ranks (in float64). With ``agree``, rank 0's sums are
        sent to all, so that decisions taken on them (early stopping) are the same on every
        rank whatever the reduction's rounding."""
        if not self.distributed:
            return [float(v) for v in values]
        t = torch.tensor(list(values), dtype=torch.float64, device=device)
        dist.all_reduce(t)
        if agree:
            dist.broadcast(t, 0)
        return [float(v) for v in t.tolist()]

    def gather(self, item: Any) -> list[Any]:
        """Every rank's ``item``, in rank order."""
        if not self.distributed:
            return [item]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, item)
        return out

    def wrap(self, network: InferenceNetwork, device: torch.device) -> nn.Module:
        """The module whose ``forward(batch, scale)`` is the loss (DDP-wrapped when
        distributed: parameters are broadcast from rank 0 and gradients averaged)."""
        module = _LossOf(network)
        if not self.distributed:
            return module
        ids = [device.index] if device.type == "cuda" else None
        # find_unused_parameters: a batch visits only some addresses (and a rank's share
        # may visit others than its neighbour's); parameters no rank used keep no gradient,
        # so Adam skips them exactly as it does alone. Buffers (the observation scaling)
        # are fitted identically on every rank, so they need no broadcast.
        return nn.parallel.DistributedDataParallel(
            module, device_ids=ids, find_unused_parameters=True, forward_sync_buffers=False
        )

    def note_unseen(self, network: InferenceNetwork, batch: TraceBatch) -> None:
        """Count visits of addresses without layers (not registered before training)."""
        if not self.distributed:
            return
        for g in batch.groups:
            if network.site(g.address) is None:
                if g.address not in self.unseen:
                    log.warning(
                        "address %s was not registered before distributed training: its "
                        "visits are not trained (its proposal stays the prior)",
                        g.address,
                    )
                self.unseen[g.address] = self.unseen.get(g.address, 0) + len(g)

    def close(self) -> None:
        """Destroy the process group if this run created it."""
        if self.owns_group and dist.is_initialized():
            # every rank gets here before any tears the group down: a rank that exits while
            # another still talks to it aborts gloo ("terminate called without an active
            # exception")
            dist.barrier()
            dist.destroy_process_group()


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r} is not an integer") from None


def _launcher() -> tuple[int, int, int] | None:
    """``(world_size, rank, local_rank)`` set by torchrun or srun, or ``None``."""
    world = _env_int("WORLD_SIZE")
    if world is not None and world > 1:  # torchrun (and torch.distributed.launch)
        return world, _env_int("RANK") or 0, _env_int("LOCAL_RANK") or 0
    world = _env_int("SLURM_STEP_NUM_TASKS")  # srun (not set in the batch script itself)
    if world is not None and world > 1 and "SLURM_PROCID" in os.environ:
        if "MASTER_ADDR" not in os.environ:
            raise ValueError(
                "srun started this process as one of several tasks, but MASTER_ADDR is not "
                "set: export MASTER_ADDR=$(scontrol show hostnames $SLURM_JOB_NODELIST | "
                "head -n 1) (and MASTER_PORT) before srun; see docs/ddp.md"
            )
        rank, local = _env_int("SLURM_PROCID") or 0, _env_int("SLURM_LOCALID") or 0
        os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(local))
        os.environ.setdefault("MASTER_PORT", "29500")
        return world, rank, local
    return None


def launched_rank() -> int:
    """This process's rank in a data-parallel run (set by ``torchrun`` or ``srun``, or of
    the initialised process group); ``0`` for a process running alone.

    Use it to do once what all ranks would otherwise repeat (save files, print)."""
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    world = _env_int("WORLD_SIZE")
    if world is not None and world > 1:
        return _env_int("RANK") or 0
    world = _env_int("SLURM_STEP_NUM_TASKS")
    if world is not None and world > 1:
        return _env_int("SLURM_PROCID") or 0
    return 0


def join(device: torch.device, config: DistributedConfig) -> tuple[Ranks, torch.device]:
    """This process's :class:`Ranks` (joining the launcher's process group if there is
    one) and the device it trains on (``cuda`` becomes this process's local GPU)."""
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
        ranks = Ranks(world, rank, _env_int("LOCAL_RANK") or 0)
    else:
        found = _launcher()
        if found is None:
            return Ranks(), device
        if not dist.is_available():
            raise ValueError("this torch has no torch.distributed: cannot train in parallel")
        world, rank, local = found
        ranks = Ranks(world, rank, local, owns_group=True)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", ranks.local_rank % max(torch.cuda.device_count(), 1))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if ranks.owns_group:
        backend = config.backend or ("nccl" if device.type == "cuda" else "gloo")
        dist.init_process_group(
            backend, rank=ranks.rank, world_size=ranks.world_size, init_method="env://"
        )
        if dist.get_world_size() != ranks.world_size:  # pragma: no cover - launcher bug
            raise ValueError("the process group's size differs from WORLD_SIZE")
    if ranks.rank != 0:
        log.debug("rank %d of %d on %s", ranks.rank, ranks.world_size, device)
    return ranks, device
