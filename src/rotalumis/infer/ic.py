"""Inference compilation (:class:`InferenceCompilation`, ``engine="ic"``): importance
sampling with a trained network as proposal, or with the mixture of several networks'
proposals (multiple importance sampling).

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
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rotalumis.core import InferenceError, Model
from rotalumis.data import Empirical

from .importance import sample_traces

if TYPE_CHECKING:
    import torch

    from rotalumis.nn import InferenceNetwork

__all__ = ["InferenceCompilation", "load_network"]

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


class InferenceCompilation:
    """Importance sampling with the proposals of a trained inference network.

    Each run makes a :class:`~rotalumis.nn.NetworkProposal` for its observations (the
    network's proposal, a :class:`~rotalumis.core.proposal.Proposal`) and runs importance
    sampling with it; ``result.info.proposal`` counts the choices the network proposed and
    those it left to the prior, and lists the addresses it did not know.

    With a list of networks the proposal is their equal mixture
    (:class:`~rotalumis.core.MixtureProposal`): each trace is drawn with the proposals of one
    network, picked at random, and weighted by ``p(x, y) / q_mix(x | y)``, ``q_mix`` the
    mean of every network's density of the trace (the balance heuristic of multiple
    importance sampling). Networks that each cover a different part of the posterior (e.g.
    the successive rounds of an adaptation) then bound each other's heavy weights; each
    choice costs a step of every network. ``mixture_weights`` gives the networks unequal
    shares (e.g. in proportion to each one's effective sample size in a pilot run): each
    trace is drawn by network ``k`` with probability ``a_k`` and weighted by
    ``p / sum_k a_k q_k``; fixed before the run, they keep every estimate exact.

    Args:
        network: A trained :class:`~rotalumis.nn.InferenceNetwork` or the path of one saved
            with :meth:`~rotalumis.nn.InferenceNetwork.save`; or a list of them (their
            mixture).
        device: Device to run the network on (default: where it is).
        keep_traces: Keep full traces in the result.
        progress: Show a progress bar (default: when on a terminal).
        workers: Worker processes (``0``: run here; workers need the network on the CPU).
        cluster: Run on a Dask cluster instead (a ``dask.distributed.Client``, a scheduler
            address, or ``"local"``/``"local:N"``; the network must be on the CPU).
        defensive: Mix each categorical proposal with its prior at this weight (see
            :class:`~rotalumis.nn.NetworkProposal`; ``0``: the network's proposal as it is),
            or a mapping of selectors (a site's name, a distribution name, a head kind,
            ``"vector"``, ``"scalar"``, ``"*"``) to weights, for any kind of choice (e.g.
            ``{"cat": 0.02, "momentum": 0.1}``: :func:`rotalumis.nn.defensive_weights`).
        proposal_only: Return samples of the proposed choices from the network alone,
            without running the simulator (:func:`~rotalumis.nn.sample_proposal`;
            unweighted, so only as accurate as the network; one network only).
        mixture_weights: With a list of networks, their mixing weights (non-negative, one
            per network, normalised here; default: equal).

    Raises:
        InferenceError: if no network is given.
        ValueError: for ``workers`` with a network on a GPU, ``proposal_only`` with
            several networks, or ``mixture_weights`` that do not fit the networks.
    """

    name = "ic"

    def __init__(
        self,
        network: InferenceNetwork
        | str
        | os.PathLike[str]
        | Sequence[InferenceNetwork | str | os.PathLike[str]]
        | None = None,
        *,
        device: str | torch.device | None = None,
        keep_traces: bool = False,
        progress: bool | None = None,
        workers: int = 0,
        cluster: Any = None,
        defensive: float | Mapping[str, float] = 0.0,
        proposal_only: bool = False,
        mixture_weights: Sequence[float] | None = None,
    ) -> None:
        if network is None:
            raise InferenceError(
                "the 'ic' engine needs a trained inference network: pass network=<Inference"
                "Network or path> (train one with rotalumis.nn.train_network or `rotalumis "
                "train`)"
            )
        items: list[InferenceNetwork | str | os.PathLike[str]]
        if isinstance(network, Sequence) and not isinstance(network, str):
            items = list(network)
            if not items:
                raise InferenceError("the 'ic' engine got an empty list of networks")
        else:
            items = [network]
        #: the networks (one, or the components of the mixture); ``network``: the first
        self.networks = [load_network(n, device) for n in items]
        self.network = self.networks[0]
        if (workers or cluster is not None) and any(
            n.observation_encoder.device.type != "cpu" for n in self.networks
        ):
            raise ValueError(
                "workers > 0 or cluster= needs the inference network on the CPU (worker "
                "processes cannot use this process's GPU); pass device='cpu'"
            )
        self.keep_traces, self.progress, self.workers = keep_traces, progress, workers
        self.cluster = cluster
        from rotalumis.nn import defensive_weights

        #: selector -> weight of the prior mixed into those proposals
        self.defensive = defensive_weights(defensive)
        self.proposal_only = bool(proposal_only)
        if self.proposal_only and len(self.networks) > 1:
            raise ValueError("proposal_only=True samples one network: pass one, not a list")
        self.mixture_weights: list[float] | None = None
        if mixture_weights is not None:
            from rotalumis.core.proposal import normalised_weights

            if len(mixture_weights) != len(self.networks):
                raise ValueError(
                    f"mixture_weights: one weight per network ({len(self.networks)}), got "
                    f"{len(mixture_weights)}"
                )
            self.mixture_weights = normalised_weights(mixture_weights, len(self.networks))

    def run(
        self,
        model: Model,
        *,
        num_traces: int,
        observe: Mapping[str, Any] | None = None,
        seed: int | None = None,
        model_args: tuple[Any, ...] = (),
    ) -> Empirical:
        """Importance sampling of ``model`` given ``observe`` with the network's proposals.

        Args:
            model: The model (local or remote).
            num_traces: Number of importance samples.
            observe: Observed values by name; must include every observation the network
                conditions on.
            seed: Seed (``None``: a fresh one, recorded in ``result.info.seed``).
            model_args: Arguments for ``model.forward``.

        Returns:
            A weighted ``Empirical``; ``result.info.proposal`` holds the network's
            statistics (``result.info.prior_fallback_fraction``,
            ``result.info.unseen_addresses``).

        Raises:
            ObservationError: if an observation the network needs is missing.
        """
        import torch

        from rotalumis.core import MixtureProposal, Proposal
        from rotalumis.nn import NetworkMismatchWarning, NetworkProposal, sample_proposal

        for net in self.networks:
            if net.model_name and net.model_name != model.name:
                warnings.warn(
                    f"the inference network was trained on model {net.model_name!r}, not "
                    f"{model.name!r}: addresses it does not know are drawn from the prior",
                    NetworkMismatchWarning,
                    stacklevel=3,
                )
        if self.proposal_only:
            return sample_proposal(self.network, dict(observe or {}), num_traces, seed=seed)
        given = dict(observe or {})
        parts = [NetworkProposal(net, given, self.defensive) for net in self.networks]
        proposal: Proposal
        if len(parts) == 1:
            proposal = parts[0]
        else:
            proposal = MixtureProposal(parts, weights=self.mixture_weights)
        with torch.no_grad():
            result = sample_traces(
                model, num_traces, observe=observe, seed=seed, proposal=proposal,
                keep_traces=self.keep_traces, progress=self.progress, model_args=model_args,
                description="inference compilation", engine_name=self.name,
                workers=self.workers, cluster=self.cluster, options=self._options(),
            )  # fmt: skip
        stats = proposal.stats
        assert stats is not None
        unseen = stats.unseen
        if unseen:
            log.warning(
                "ic: %d address(es) unknown to the network were sampled from the prior",
                len(unseen),
            )
            if stats.proposed == 0:
                warnings.warn(
                    f"the inference network proposed none of this model's "
                    f"{stats.fallbacks} random choices: it knows none of its "
                    f"{len(unseen)} addresses (e.g. {min(unseen)!r}), so this was importance "
                    "sampling from the prior. Was it trained on another version of the model? "
                    "Addresses name the lines of the call stack, so editing the model's file "
                    "above a draw (a docstring included) changes them: retrain the network",
                    NetworkMismatchWarning,
                    stacklevel=3,
                )
        return result

    def _options(self) -> dict[str, Any]:
        out: dict[str, Any] = {"workers": self.workers}
        if self.defensive:  # a number when it is the categorical weight alone, as before
            keys = list(self.defensive)
            out["defensive"] = self.defensive["cat"] if keys == ["cat"] else dict(self.defensive)
        if len(self.networks) > 1:
            out["networks"] = len(self.networks)
        if self.mixture_weights is not None and len(self.networks) > 1:
            out["mixture_weights"] = list(self.mixture_weights)
        return out

    def __repr__(self) -> str:
        return f"InferenceCompilation(network={self.network.model_name!r}, workers={self.workers})"
