"""Checking a saved inference network before building it.

A network file holds a JSON configuration (sizes, observation embeddings, one entry per
address) and a state dict of tensors. A damaged or crafted file must not make loading
allocate a giant network, recurse without end or fail with a ``KeyError`` from deep inside:
:func:`check_config` checks every field (type, range, unknown keys); the network is built
under an :class:`AllocationBudget` of the state dict's size (every parameter and buffer is in
the state dict, so a sound file never exceeds it), and :func:`check_state_dict` checks that
the tensors are exactly those of the network built. All raise a ``ValueError`` saying what is
wrong; :meth:`InferenceNetwork.load` names the file.

(Building on PyTorch's ``meta`` device would allocate nothing either, but its first use
imports ``torch._dynamo`` and more: seconds added to every load.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from rotalumis.core.checks import get_field

from .flow_head import INTERVAL_MAPS
from .flow_head import PROPOSAL_FAMILIES as _PROPOSAL_FAMILIES
from .heads import HEAD_KINDS

__all__ = [
    "MAX_ELEMENTS",
    "MAX_LAYERS",
    "MAX_WIDTH",
    "AllocationBudget",
    "check_config",
    "check_state_dict",
    "count_sites",
    "state_size",
]

MAX_WIDTH = 1 << 16  #: largest layer size
MAX_LAYERS = 64  #: deepest stack of layers
MAX_ELEMENTS = 1 << 24  #: most elements in one value, observation or support
_MAX_DIMS = 8
_HEADS = {*HEAD_KINDS.values(), "prior"}
_WIDTHS = ("observation_dim", "lstm_dim", "address_dim", "value_dim")
_FLOW_SIZES = ("flow_transforms", "flow_bins", "flow_hidden")
_SLACK = 1 << 20  # elements of temporaries made while initialising layers
# Every tensor a module creates comes from one of these (nn layers use torch.empty).
_FACTORIES = {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn,
              torch.randint, torch.linspace, torch.arange, torch.eye, torch.tensor}  # fmt: skip


def _known(d: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(d) - keys)
    if unknown:
        raise ValueError(f"{where} has unknown fields {', '.join(map(repr, unknown))}")


def _shape(d: Any, key: str, where: str) -> list[int]:
    shape: list[int] = get_field(d, key, list, where)
    if len(shape) > _MAX_DIMS or not all(
        isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_ELEMENTS for n in shape
    ):
        raise ValueError(f"{where}: {key!r} is not a shape of at most {_MAX_DIMS} sizes: {shape}")
    if math.prod(shape) > MAX_ELEMENTS:
        raise ValueError(f"{where}: {key!r} {shape} has over {MAX_ELEMENTS} elements")
    return shape


def _check_observation(o: Any, where: str) -> None:
    get_field(o, "name", str, where)
    _shape(o, "shape", where)
    get_field(o, "embedding", str, where, optional=True)
    get_field(o, "dim", int, where, low=1, high=MAX_WIDTH, optional=True)
    get_field(o, "depth", int, where, low=1, high=MAX_LAYERS, optional=True)
    _known(o, {"name", "shape", "embedding", "dim", "depth"}, where)


def _check_network(d: Any) -> None:
    where = "the network configuration"
    for key in _WIDTHS:  # fields with a default may be absent (files of earlier versions)
        get_field(d, key, int, where, low=1, high=MAX_WIDTH, optional=True)
    get_field(d, "lstm_depth", int, where, low=1, high=MAX_LAYERS, optional=True)
    get_field(d, "mixture_components", int, where, low=1, high=1024, optional=True)
    get_field(d, "count_prior_weight", float, where, low=0.0, high=1.0, optional=True)
    heads = get_field(d, "heads", dict, where, optional=True, default={})
    if len(heads) > MAX_LAYERS or not all(
        isinstance(k, str) and v in _PROPOSAL_FAMILIES for k, v in heads.items()
    ):
        raise ValueError(f"{where}: 'heads' must map selectors to {_PROPOSAL_FAMILIES}")
    for key in ("flow_transforms", "flow_hidden"):
        get_field(d, key, int, where, low=1, high=MAX_WIDTH, optional=True)
    get_field(d, "flow_bins", int, where, low=2, high=MAX_WIDTH, optional=True)
    get_field(d, "flow_bound", (int, float), where, low=1e-3, high=1e3, optional=True)
    interval = get_field(d, "flow_interval", str, where, optional=True, default="logit")
    if interval not in INTERVAL_MAPS:
        raise ValueError(f"{where}: 'flow_interval' must be one of {INTERVAL_MAPS}")
    for key in ("interest_names", "interest_addresses"):
        chosen = get_field(d, key, list, where, optional=True, default=[])
        if len(chosen) > MAX_ELEMENTS or not all(isinstance(x, str) for x in chosen):
            raise ValueError(f"{where}: {key!r} must be a list of strings")
    observations = get_field(d, "observations", list, where)
    if not observations:
        raise ValueError(f"{where} embeds no observation")
    for i, o in enumerate(observations):
        _check_observation(o, f"observation {i} of {where}")
    _known(d, {*_WIDTHS, "lstm_depth", "mixture_components", "count_prior_weight",
               "observations", "heads", *_FLOW_SIZES, "flow_bound", "flow_interval",
               "interest_names", "interest_addresses"}, where)  # fmt: skip


def _check_site(s: Any, where: str) -> None:
    get_field(s, "address", str, where)
    get_field(s, "distribution", str, where)
    head = get_field(s, "head", str, where)
    if head not in _HEADS:
        raise ValueError(f"{where}: unknown head kind {head!r}")
    numel = get_field(s, "numel", int, where, low=1, high=MAX_ELEMENTS)
    if math.prod(_shape(s, "value_shape", where)) != numel:
        raise ValueError(f"{where}: 'numel' {numel} does not match 'value_shape'")
    get_field(s, "num_params", int, where, low=0, high=MAX_ELEMENTS)
    supports = head in ("cat", "count")  # their output layer has one unit per category
    get_field(
        s, "categories", int, where, low=int(supports), high=MAX_ELEMENTS, optional=not supports
    )
    proposal = get_field(s, "proposal", str, where, optional=True, default="mixture")
    if proposal not in _PROPOSAL_FAMILIES:
        raise ValueError(f"{where}: unknown proposal family {proposal!r}")
    _known(s, {"address", "distribution", "head", "numel", "value_shape", "num_params",
               "categories", "proposal"}, where)  # fmt: skip


def check_config(cfg: Any) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    """Check a network's parsed JSON configuration.

    Returns:
        ``(network sizes, address entries, model name)``.

    Raises:
        ValueError: naming the first field that is missing or invalid.
    """
    network = get_field(cfg, "network", dict, "the configuration")
    sites = get_field(cfg, "sites", list, "the configuration")
    model = get_field(cfg, "model", (str, type(None)), "the configuration", optional=True)
    _check_network(network)
    for i, s in enumerate(sites):
        _check_site(s, f"address entry {i}")
    return network, sites, model


def count_sites(state: Mapping[str, Any]) -> int:
    """How many address layers a state dict holds (checked before anything is built)."""
    return len({k.split(".", 2)[1] for k in state if k.startswith("sites.")})


def check_state_dict(state: Any, expected: Mapping[str, torch.Size]) -> None:
    """Check that ``state`` holds tensors of exactly the names and shapes of ``expected``.

    Raises:
        ValueError: listing (some of) the missing, unexpected and misshapen entries.
    """
    if not isinstance(state, Mapping):
        raise ValueError(f"the state dict is a {type(state).__name__}, not a mapping")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise ValueError(f"the state dict has non-tensor entries: {bad[:3]}")
    problems = []
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k} {list(state[k].shape)} (expected {list(expected[k])})"
        for k in expected
        if k in state and state[k].shape != expected[k]
    ]
    if missing:
        problems.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    if unexpected:
        more = " ..." if len(unexpected) > 3 else ""
        problems.append(f"unexpected {', '.join(unexpected[:3])}{more}")
    if shapes:
        problems.append(f"wrong shape {', '.join(shapes[:3])}{' ...' if len(shapes) > 3 else ''}")
    if problems:
        raise ValueError("the state dict does not match the configuration: " + "; ".join(problems))


def state_size(state: Any) -> int:
    """Elements in the tensors of a state dict (0 for anything else)."""
    if not isinstance(state, Mapping):
        return 0
    return sum(v.numel() for v in state.values() if torch.is_tensor(v))


class AllocationBudget(TorchFunctionMode):
    """Within this context, creating tensors of more than ``elements`` (+ a small slack)
    elements in all raises ``ValueError``, checked as each one is created (before layers
    write their initial values into it)."""

    def __init__(self, elements: int) -> None:
        super().__init__()
        self.left = elements + _SLACK

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func in _FACTORIES and isinstance(out, torch.Tensor):
            self.left -= out.numel()
            if self.left < 0:
                raise ValueError(
                    "the configuration describes a network larger than the weights in the file"
                )
        return out
