"""What a training checkpoint belongs to, and the device training runs on.

A checkpoint is resumed only by the run that wrote it: its *identity* (what shapes the
trained network: hyper-parameters, seed, the model or the dataset) is saved with it and
compared on resume, and so is the architecture the run asks for with the checkpoint's
network (options left unset take the checkpoint's). The training budget (``num_traces``),
how often to validate and to checkpoint, the validation size, the device and the number of
workers are left out: changing them does not change what is trained, and a larger budget
continues the same run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rotalumis.core import Model
from rotalumis.core.errors import CheckpointError
from rotalumis.data import TraceDataset

from .network import InferenceNetwork

__all__ = ["check_resume", "run_identity", "training_device"]

log = logging.getLogger(__name__)

# TrainingConfig fields that do not change what is trained
_NOT_IDENTITY = ("num_traces", "valid_every", "checkpoint_every", "valid_size")


def run_identity(
    config: Any,
    model: Model | None,
    dataset: TraceDataset | None,
    model_args: tuple[Any, ...],
) -> dict[str, Any]:
    """What a training run trains on and how, as a JSON-friendly dict (saved in its
    checkpoints); the architecture is the checkpoint's network itself."""
    training = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_IDENTITY}
    if model is not None:
        source: dict[str, Any] = {
            "model": model.name,
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "model_args": repr(model_args),
        }
    else:
        assert dataset is not None
        m = dataset.manifest
        shards = ",".join(map(str, dataset.shard_indices))
        source = {
            "dataset_model": m.get("model"),
            "dataset_seed": m.get("seed"),
            "dataset_traces": len(dataset),
            "dataset_shards": hashlib.sha1(shards.encode()).hexdigest()[:16],
        }
    return {"training": training, "source": source}


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=repr))


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``"name OLD (now NEW)"`` for every key of ``new`` whose value differs in ``old``."""
    return [
        f"{key.rsplit('.', 1)[-1]} {old.get(key, '(unset)')!r} (now {new[key]!r})"
        for key in sorted(new)
        if old.get(key) != new[key]
    ]


def _architecture_differences(
    saved: InferenceNetwork,
    network: InferenceNetwork | None,
    embeddings: Mapping[str, Any] | None,
    network_sizes: Mapping[str, Any] | None,
) -> list[str]:
    """What the requested network (given, or to be built from these options) does not share
    with the checkpoint's; options left unset take the checkpoint's."""
    old = _plain(saved.config.to_dict())  # tuples and JSON lists compare equal
    old_obs = {o["name"]: o for o in old.pop("observations")}
    if network is not None:
        new = _plain(network.config.to_dict())
        new_obs = {o["name"]: o for o in new.pop("observations")}
    else:
        new = _plain(dict(network_sizes or {}))
        new_obs = {}
        for name, opts in (embeddings or {}).items():
            opts = {"embedding": opts} if isinstance(opts, str) else _plain(dict(opts))
            new_obs[name] = {"name": name, **opts}
    diffs = _differences(old, new)
    for name, spec in sorted(new_obs.items()):
        saved_spec = old_obs.get(name, {})
        diffs += [f"observation {name!r} {d}" for d in _differences(saved_spec, spec)]
    return diffs


def check_resume(
    path: Path,
    saved: Mapping[str, Any],
    saved_network: InferenceNetwork,
    identity: dict[str, Any],
    network: InferenceNetwork | None,
    embeddings: Mapping[str, Any] | None,
    network_sizes: Mapping[str, Any] | None,
) -> None:
    """Raise unless the checkpoint at ``path`` belongs to this training run.

    Args:
        path: The checkpoint file.
        saved: Its content (``identity`` is its run's JSON identity, if recorded).
        saved_network: Its network.
        identity: This run's :func:`run_identity`.
        network: The network this run was given (``None``: built from the options).
        embeddings: This run's observation embeddings of a new network.
        network_sizes: This run's :class:`NetworkConfig` fields of a new network.

    Raises:
        CheckpointError: naming every setting that differs and how to start afresh.
    """
    diffs = _architecture_differences(saved_network, network, embeddings, network_sizes)
    recorded = saved.get("identity")
    if recorded is None:  # written before checkpoints recorded their run
        log.warning("checkpoint %s does not record its training settings: resumed as is", path)
    else:
        try:
            old = _flatten(json.loads(recorded))
        except (TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(
                f"checkpoint {path}: unreadable training settings ({exc})"
            ) from exc
        new = _flatten(_plain(identity))
        diffs = _differences(old, new) + diffs
    if diffs:
        raise CheckpointError(
            f"checkpoint {path} belongs to another training run: {'; '.join(diffs)}. Resume "
            "it with the same settings, or start afresh: delete it, or pass fresh=True "
            "(rotalumis train --fresh)"
        )


def training_device(device: str | torch.device | None) -> torch.device:
    """The device to train on, checked to exist here.

    Raises:
        ValueError: for a malformed device name, or a CUDA/MPS device this machine lacks.
    """
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {device!r} (expected cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {str(device)!r}: CUDA is not available here (this torch has no CUDA "
                "support or no GPU is visible); train on cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(device)!r}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r}: MPS is not available here")
    return dev
