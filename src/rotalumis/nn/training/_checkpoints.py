"""Training checkpoints: the optimizer they hold, writing them atomically, resuming them.

A checkpoint holds the network, the optimizer's state, the progress counters and the run's
identity (see :mod:`rotalumis.nn._checkpoint`); it is loadable with ``weights_only=True``.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from rotalumis.core import DatasetError
from rotalumis.core.errors import CheckpointError
from rotalumis.core.files import atomic_write

from .._checkpoint import check_resume
from ..network import InferenceNetwork
from ._progress import Progress
from .config import NetworkOptions, TrainingConfig

__all__ = ["Resumed", "add_to_optimizer", "load_checkpoint", "make_optimizer", "save_checkpoint"]

FORMAT = "rotalumis-ic-checkpoint"


def make_optimizer(network: InferenceNetwork, config: TrainingConfig) -> torch.optim.Adam:
    """Adam over one parameter group: the core, then each address's layers in creation order
    (new addresses append to it, so a checkpoint's optimizer state lines up on resume)."""
    params = [p for n, p in network.named_parameters() if not n.startswith("sites.")]
    for i in range(len(network.specs)):
        params += list(network.sites[f"site{i}"].parameters())
    fused = params[0].device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params)
    return torch.optim.Adam(
        params, lr=config.learning_rate, weight_decay=config.weight_decay, fused=fused
    )


def add_to_optimizer(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter]) -> None:
    """Append the parameters of new address layers to the optimizer's group."""
    optimizer.param_groups[0]["params"].extend(params)


def save_checkpoint(
    path: Path,
    network: InferenceNetwork,
    optimizer: torch.optim.Optimizer,
    config: TrainingConfig,
    progress: Progress,
    identity: dict[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write the checkpoint (atomically: readers see the old file or the new one)."""
    payload = {
        "format": FORMAT,
        "network": network.payload(),
        "optimizer": optimizer.state_dict(),
        "training_config": json.dumps(asdict(config)),
        "progress": json.dumps(progress.to_dict()),
        "identity": json.dumps(identity, sort_keys=True),
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:  # unpredictable temporary name, never through a symlink
        torch.save(payload, fh)


def _check_processes(path: Path, saved: Mapping[str, Any], identity: dict[str, Any]) -> None:
    """A checkpoint of several processes resumed by one is another run (its steps were
    ``N`` times larger), and so is one trained from memory resumed streaming; the other way
    round, :func:`check_resume` already tells."""
    try:
        recorded = json.loads(saved.get("identity") or "{}")
    except (TypeError, ValueError):
        return  # check_resume has reported it
    ddp = recorded.get("distributed") if isinstance(recorded, dict) else None
    if isinstance(ddp, dict) and "distributed" not in identity:
        raise CheckpointError(
            f"checkpoint {path} belongs to another training run: it was written by "
            f"{ddp.get('world_size')} processes (torchrun/srun) and is resumed by one. Resume "
            "it with as many processes, or start afresh: delete it, or pass fresh=True "
            "(rotalumis train --fresh)"
        )
    if isinstance(recorded, dict) and recorded.get("in_memory") and "in_memory" not in identity:
        raise CheckpointError(
            f"checkpoint {path} belongs to another training run: it trained from memory "
            "(in_memory=True; other batches than streaming the dataset). Resume it with "
            "in_memory=True (rotalumis train --in-memory), or start afresh: delete it, or pass "
            "fresh=True (rotalumis train --fresh)"
        )


class Resumed:
    """What a checkpoint gives back: network, progress, optimizer and early-stopping state."""

    def __init__(
        self,
        network: InferenceNetwork,
        progress: Progress,
        optimizer: Any,
        early_stopping: Any,
    ) -> None:
        self.network = network
        self.progress = progress
        self.optimizer = optimizer
        self.early_stopping = early_stopping


def load_checkpoint(
    path: Path,
    identity: dict[str, Any],
    network: InferenceNetwork | None,
    new: NetworkOptions,
) -> Resumed:
    """Read the checkpoint at ``path`` and check that it belongs to this run.

    Raises:
        CheckpointError: if it was written by a run with other settings.
        DatasetError: if it is unreadable.
    """
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        resumed = InferenceNetwork.from_payload(saved["network"], str(path))
        check_resume(path, saved, resumed, identity, network, new.embeddings, new.sizes)
        _check_processes(path, saved, identity)
        return Resumed(
            resumed,
            Progress(json.loads(saved["progress"])),
            saved["optimizer"],
            saved.get("early_stopping"),
        )
    except (
        OSError,
        RuntimeError,
        KeyError,
        ValueError,
        EOFError,
        pickle.UnpicklingError,
    ) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise DatasetError(f"cannot resume from checkpoint {path}: {exc}") from exc
