""":class:`NetworkProposal`: the network stepped along one execution, as a core proposal.

It is the callable a :class:`~rotalumis.core.ProposeHandler` asks for the proposal of each
controlled choice (``Message -> Distribution | None``), so it works for any model whose
random choices arrive as messages — local Python models and PPX remote simulators alike.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rotalumis.core import RNG, Distribution, InferenceError, Message, Mixture, ObservationError
from rotalumis.core.handlers import normalize_observation
from rotalumis.core.proposal import Proposal, ProposalStats
from rotalumis.data import Empirical, EmpiricalBuilder, RunInfo, flat_params, flat_value

from .flow_head import selector_keys
from .network import InferenceNetwork, SiteLayers

__all__ = [
    "NetworkMismatchWarning",
    "NetworkProposal",
    "UnseenAddressWarning",
    "sample_proposal",
]

_MAX_WARNINGS = 5  # unseen addresses warned about individually, per proposal object


class UnseenAddressWarning(UserWarning):
    """The inference network met an address it was never trained on; the prior is used there."""


class NetworkMismatchWarning(UserWarning):
    """The inference network was trained on a model of another name than the one it runs on."""


def defensive_weights(defensive: float | Mapping[str, float]) -> dict[str, float]:
    """Selector -> weight of the prior in the proposals :class:`NetworkProposal` mixes with it.

    A number ``w`` is ``{"cat": w}`` (categorical choices). Selectors, most specific first:
    a site's name (``"momentum"``), its prior's distribution name (``"Uniform"``), its head
    kind (``"cat"``, ``"count"``, ``"real"``, ``"bound"``, ``"pos"``), ``"vector"`` or
    ``"scalar"`` (values of more than one element / of one), ``"*"``; a choice no selector
    matches keeps the network's proposal.

    Raises:
        ValueError: for a weight outside ``[0, 1)`` or a selector that is not a string.
    """
    if isinstance(defensive, Mapping):
        chosen = dict(defensive)
    elif isinstance(defensive, int | float) and not isinstance(defensive, bool):
        chosen = {"cat": defensive} if defensive else {}
    else:
        raise ValueError(
            f"defensive must be a number or a mapping of selectors to numbers, got {defensive!r}"
        )
    for key, weight in chosen.items():
        if not isinstance(key, str):
            raise ValueError(f"defensive: selectors must be strings, got {key!r}")
        ok = isinstance(weight, int | float) and not isinstance(weight, bool)
        if not (ok and 0.0 <= weight < 1.0):
            raise ValueError(f"defensive[{key!r}] must be in [0, 1), got {weight!r}")
    return {k: float(w) for k, w in chosen.items()}


def defensive_for(weights: Mapping[str, float], name: str | None, spec: Any) -> float:
    """The weight of the prior in the proposal of a choice named ``name`` whose address has
    the layers' :class:`~.heads.SiteSpec` ``spec`` (see :func:`defensive_weights`)."""
    for key in (name, *selector_keys(spec.distribution, spec.head, spec.numel)):
        if key is not None and key in weights:
            return weights[key]
    return 0.0


class NetworkProposal(Proposal):
    """Proposals of an :class:`InferenceNetwork` for one set of observations: a
    :class:`~rotalumis.core.proposal.Proposal`.

    Call :meth:`begin_trace` before each execution (``sample_traces`` does); then each call
    with a sample message advances the LSTM by one step and returns the proposal for that
    choice. Addresses the network never saw get ``None`` (their prior) and an
    :class:`UnseenAddressWarning` each (the first five; all are listed in
    ``stats.unseen``). :attr:`stats` counts the choices proposed and left to the prior.
    A network of parameters of interest returns ``None`` at every other choice without
    stepping its LSTM (the nuisance, left to the simulator; counted in ``stats.nuisance``).

    Args:
        network: A trained network.
        observe: Observed values by name (every observation the network embeds).
        defensive: Mix the proposal of each categorical choice with its prior at this
            weight (defensive importance sampling: a choice the network all but rules out
            keeps probability ``defensive`` times its prior, which bounds its weight); ``0``
            uses the network's proposal as it is. Or a mapping of selectors to weights, for
            any kind of choice (see :func:`defensive_weights`), e.g. ``{"cat": 0.02,
            "momentum": 0.1}``: a continuous proposal far thinner than the posterior in
            places its training draws missed keeps ``weight`` times its prior's density
            there, which bounds those traces' importance weights.

    Raises:
        ObservationError: if an observation the network needs is missing from ``observe``.
    """

    def __init__(
        self,
        network: InferenceNetwork,
        observe: Mapping[str, Any],
        defensive: float | Mapping[str, float] = 0.0,
    ) -> None:
        self.defensive = defensive_weights(defensive)
        self._defensive_at: dict[str, float] = {}  # address -> weight (resolved once)
        self.network = network.eval()
        self.device = network.observation_encoder.device
        obs = {}
        for spec in network.config.observations:
            if spec.name not in observe:
                trained = (
                    f" (trained on model {network.model_name!r})" if network.model_name else ""
                )
                raise ObservationError(
                    f"the inference network{trained} conditions on observation {spec.name!r}; "
                    f"give it in observe= (given: {', '.join(sorted(observe)) or 'none'})"
                )
            value = normalize_observation(spec.name, observe[spec.name])
            obs[spec.name] = np.asarray(flat_value(value)[0], dtype=np.float64)[None]
        cfg = network.config
        with torch.no_grad():
            self._obs = network.observation_encoder(obs, 1)
        self._zero_addr = torch.zeros(1, cfg.address_dim, device=self.device)
        self._zero_val = torch.zeros(1, cfg.value_dim, device=self.device)
        lstm = network.lstm
        # One step of nn.LSTM through torch.lstm_cell: several times faster than calling the
        # module on a sequence of length one.
        self._layers = [
            tuple(
                getattr(lstm, f"{w}_l{k}") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            )
            for k in range(lstm.num_layers)
        ]
        zero = torch.zeros(1, cfg.lstm_dim, device=self.device)
        self._zero_state = [(zero, zero)] * lstm.num_layers
        self._interest: dict[str, bool] | None = None if network.interest.everything else {}
        self.stats: ProposalStats = ProposalStats()
        self.begin_trace()

    def begin_trace(self) -> None:
        """Reset the LSTM state: a new execution starts."""
        self._state = self._zero_state
        self._pending: tuple[SiteLayers, Message, torch.Tensor] | None = None

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        state = []
        for (w_ih, w_hh, b_ih, b_hh), hc in zip(self._layers, self._state, strict=True):
            h, c = torch.lstm_cell(x, hc, w_ih, w_hh, b_ih, b_hh)
            state.append((h, c))
            x = h
        self._state = state
        return x

    def _previous(self) -> tuple[torch.Tensor, torch.Tensor]:
        pending = self._pending
        if pending is None:
            return self._zero_val, self._zero_addr
        site, msg, params = pending
        self._pending = None
        value, _ = flat_value(msg.value)
        if len(value) != site.spec.numel:
            return self._zero_val, self._zero_addr
        v = torch.tensor([value], dtype=torch.float32, device=self.device)
        return site.embed_values(v, params), site.address.unsqueeze(0)

    def __call__(self, msg: Message) -> Distribution | None:
        """The proposal for the choice ``msg`` (``None``: use its prior)."""
        interest = self._interest
        if interest is not None:
            wanted = interest.get(msg.address)
            if wanted is None:
                wanted = interest[msg.address] = self.network.interest.matches(
                    msg.name, msg.address
                )
            if not wanted:
                self.stats.nuisance += 1
                return None
        with torch.no_grad():
            prev_val, prev_addr = self._previous()
            site = self.network.site(msg.address)
            dist = msg.distribution
            if site is None or dist is None:
                self._unseen(msg.address)
                return None
            params = _params(dist, list(dist.shape), site, self.device)
            if params is None:
                self._unseen(msg.address, "its prior's parameters differ from training")
                return None
            x = torch.cat([self._obs, prev_val, prev_addr, site.address.unsqueeze(0)], 1)
            out = torch.cat([self._step(x), self._obs], 1)
            self._pending = (site, msg, params)
            q = site.head.proposal(out, params, dist)
            if q is not None and self.defensive:
                weight = self._defensive_at.get(msg.address)
                if weight is None:
                    weight = self._defensive_at[msg.address] = defensive_for(
                        self.defensive, msg.name, site.spec
                    )
                if weight:
                    q = Mixture([q, dist], [1.0 - weight, weight])
        if q is None:
            self.stats.fallbacks += 1
        else:
            self.stats.proposed += 1
        return q

    def _unseen(self, address: str, why: str = "never seen in training") -> None:
        stats = self.stats
        stats.fallbacks += 1
        self._pending = None
        if address in stats.unseen:
            return
        stats.unseen.add(address)
        if len(stats.unseen) <= _MAX_WARNINGS:
            more = (
                "; further such addresses are listed in the result's info.unseen_addresses only"
                if len(stats.unseen) == _MAX_WARNINGS
                else ""
            )
            warnings.warn(
                f"inference network has no proposal for address {address!r} ({why}); "
                f"drawing it from the prior{more}",
                UnseenAddressWarning,
                stacklevel=4,
            )


def _params(
    dist: Distribution, shape: list[int], site: SiteLayers, device: torch.device
) -> torch.Tensor | None:
    flat = flat_params(dist, shape)
    if len(flat) != site.spec.num_params:
        return None
    return torch.tensor([flat], dtype=torch.float32, device=device)


def sample_proposal(
    network: Any,
    observe: Mapping[str, Any],
    num_samples: int,
    seed: int | None = None,
) -> Empirical:
    """Samples of the proposed choices from the network alone (no simulator run).

    Each sample steps the network through the recorded sequence of proposed choices,
    drawing each from its proposal. For a network of the parameters of interest these are
    (approximate) posterior samples of the parameters, at the cost of the network only;
    unlike ``engine="ic"`` they carry no importance weights, so their accuracy is the
    network's. Latents are keyed by site name (the address when unnamed).

    Args:
        network: A trained :class:`~.network.InferenceNetwork`.
        observe: The observations.
        num_samples: Samples to draw.
        seed: Seed.

    Returns:
        An equally weighted ``Empirical`` (``info.engine == "proposal"``; the proposed
        sites in ``info.options["proposed"]``).

    Raises:
        InferenceError: if the network recorded no fixed sequence of proposed choices
            (the reason is in the message).
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    sequence = network.sequence
    if sequence.sites is None:
        raise InferenceError(
            "this network cannot sample without the simulator: its proposed choices have no "
            f"fixed sequence ({sequence.note}); use engine='ic'"
        )
    priors = [site.prior() for site in sequence.sites]
    proposal = NetworkProposal(network, observe)
    rng = RNG(seed)
    builder = EmpiricalBuilder(name=network.model_name or "network")
    with torch.no_grad():
        for _ in range(num_samples):
            proposal.begin_trace()
            latents: dict[str, Any] = {}
            for site, prior in zip(sequence.sites, priors, strict=True):
                base = site.address.rsplit("__", 2)[0]
                msg = Message("sample", site.name, site.address, base, prior)
                q = proposal(msg)
                msg.value = (prior if q is None else q).sample(rng)
                latents[site.label] = msg.value
            builder.append(None, 0.0, latents=latents)
    out = builder.build()
    proposed = [s.label for s in sequence.sites]
    out.info = RunInfo("proposal", {"proposed": proposed}, rng.seed, proposal=proposal.stats)
    return out
