"""Inference compilation (``engine="ic"``): importance sampling with a trained network.

Each execution draws every controlled choice from the proposal an
:class:`~rotalumis.nn.InferenceNetwork` computes from the observations and the choices made
so far; the trace's weight is ``log p(x, y) - log q(x)``, so the posterior is exact in the
limit whatever the network's quality (a better network only gives a larger effective sample
size). Choices at addresses the network never saw are drawn from their prior (with an
:class:`~rotalumis.nn.UnseenAddressWarning`), and their ``q`` is the prior, which cancels.

The engine only sees messages, so it works for any model — Python, intercepted or a PPX
remote simulator.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rotalumis.core import InferenceError, Model

from .importance import sample_traces

if TYPE_CHECKING:
    import torch

    from rotalumis.nn import InferenceNetwork

__all__ = ["inference_compilation", "load_network"]

log = logging.getLogger(__name__)


def load_network(
    network: InferenceNetwork | str | os.PathLike[str],
    device: str | torch.device | None = None,
) -> InferenceNetwork:
    """A network object, loaded from a file when given a path."""
    from rotalumis.nn import InferenceNetwork  # torch.nn and pyarrow load only when used

    if isinstance(network, InferenceNetwork):
        return network if device is None else network.to(device)
    if isinstance(network, (str, os.PathLike)):
        return InferenceNetwork.load(network, device=device)
    raise TypeError(
        "network must be an InferenceNetwork or the path of a saved one, "
        f"got {type(network).__name__}"
    )


def inference_compilation(
    model: Model,
    num_traces: int,
    *,
    observe: Mapping[str, Any] | None = None,
    seed: int | None = None,
    network: InferenceNetwork | str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    **options: Any,
) -> Any:
    """Importance sampling with the proposals of a trained inference network.

    Args:
        model: The model (local or remote).
        num_traces: Number of importance samples.
        observe: Observed values by name; must include every observation the network
            conditions on.
        seed: Seed for reproducible results.
        network: A trained :class:`~rotalumis.nn.InferenceNetwork` or the path of one saved
            with :meth:`~rotalumis.nn.InferenceNetwork.save`.
        device: Device to run the network on (default: where it is).
        **options: ``keep_traces``, ``progress``, ``model_args``, ``workers`` (see
            :func:`~rotalumis.infer.sample_traces`; workers need the network on the CPU);
            ``proposal_only=True``: samples of the proposed choices from the network alone,
            without running the simulator (:func:`~rotalumis.nn.sample_proposal`);
            ``defensive=eps``: categorical proposals mixed with their prior at weight
            ``eps`` (see :class:`~rotalumis.nn.NetworkProposal`).

    Returns:
        A weighted ``Empirical``; ``metadata`` records the engine, the fraction of choices
        drawn from the prior, and the addresses the network did not know.

    Raises:
        InferenceError: if no network is given.
        ObservationError: if an observation the network needs is missing.
    """
    if network is None:
        raise InferenceError(
            "the 'ic' engine needs a trained inference network: pass network=<InferenceNetwork "
            "or path> (train one with rotalumis.nn.train_network or `rotalumis train`)"
        )
    import torch

    from rotalumis.nn import NetworkMismatchWarning, NetworkProposal

    net = load_network(network, device)
    if net.model_name and net.model_name != model.name:
        warnings.warn(
            f"the inference network was trained on model {net.model_name!r}, not "
            f"{model.name!r}: addresses it does not know are drawn from the prior",
            NetworkMismatchWarning,
            stacklevel=3,
        )
    if options.get("workers") and net.observation_encoder.device.type != "cpu":
        raise ValueError(
            "workers > 0 needs the inference network on the CPU (forked worker processes "
            "cannot use the GPU); pass device='cpu'"
        )
    if options.pop("proposal_only", False):
        from rotalumis.nn import sample_proposal

        return sample_proposal(net, dict(observe or {}), num_traces, seed=seed)
    proposal = NetworkProposal(net, dict(observe or {}), options.pop("defensive", 0.0))
    options.setdefault("description", "inference compilation")
    with torch.no_grad():
        result = sample_traces(
            model, num_traces, observe=observe, seed=seed, proposal=proposal, **options
        )
    total = proposal.proposed + proposal.fallbacks
    result.metadata["engine"] = "ic"
    result.metadata["prior_fallback_fraction"] = proposal.fallbacks / total if total else 0.0
    result.metadata["unseen_addresses"] = sorted(proposal.unseen)
    if proposal.nuisance:  # a network of parameters of interest: the rest drawn from the prior
        result.metadata["nuisance_choices"] = proposal.nuisance
    if proposal.unseen:
        log.warning(
            "ic: %d address(es) unknown to the network were sampled from the prior",
            len(proposal.unseen),
        )
    return result
