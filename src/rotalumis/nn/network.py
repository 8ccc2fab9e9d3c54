"""The inference-compilation network: observation embedding, LSTM core, per-address layers.

At step ``t`` of a trace the LSTM reads ``[observation embedding, embedding of the previous
value, previous address embedding, current address embedding]``; its output and, again, the
observation embedding feed the proposal head of the current address (the skip connection
lets each address read the observations directly, and lets proposals follow observations
into the tails, where the bounded LSTM output saturates). Each address owns an embedding
vector, a value embedding and a proposal head (:mod:`.heads`), created the first time the
address is seen — also in the middle of training.

A training batch holds traces of any structure: traces are padded to the longest one (the
LSTM is causal, so padding never changes real steps) and each address's layers run once
over all its visits in the batch.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rotalumis.core import DatasetError, ParametersOfInterest
from rotalumis.core.checks import loads_json
from rotalumis.core.files import atomic_write
from rotalumis.data import SiteGroup, TraceBatch

from ._saved import AllocationBudget, check_config, check_state_dict, count_sites, state_size
from .embeddings import ObservationEncoder, ObservationSpec
from .flow_head import INTERVAL_MAPS, FlowHead, check_head_choice, choose_proposal
from .heads import ProposalHead, SiteSpec, head_kind
from .interest import SiteSequence, restrict_batch

__all__ = ["InferenceNetwork", "NetworkConfig", "SiteLayers"]

log = logging.getLogger(__name__)

FORMAT = "rotalumis-ic-network"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of an :class:`InferenceNetwork` (frozen; saved as JSON with the weights).

    Attributes:
        observations: How each observation is embedded.
        observation_dim: Size of the combined observation embedding.
        lstm_dim: LSTM hidden size.
        lstm_depth: LSTM layers.
        address_dim: Size of address embeddings.
        value_dim: Size of value embeddings.
        mixture_components: Components of continuous proposal mixtures.
        count_prior_weight: Weight of the prior inside count (Poisson/Binomial) proposals.
        interest_names: Parameters of interest by site name; with ``interest_addresses``
            (address fragments), the network proposes only the choices these select and
            leaves all others to the simulator's prior (see :mod:`.interest`). Neither
            given: every choice is proposed.
        interest_addresses: Parameters of interest by address fragment.
        heads: Proposal family per kind of address: selector -> ``"mixture"`` or ``"flow"``;
            selectors are distribution names (``"Uniform"``), head kinds (``"real"``,
            ``"bound"``, ``"pos"``), ``"vector"``, ``"scalar"`` or ``"*"`` (see
            :func:`~.flow_head.choose_proposal`). Default: mixtures everywhere.
        flow_transforms: Spline transforms of flow heads.
        flow_bins: Spline bins of flow heads.
        flow_hidden: Hidden width of flow heads.
        flow_bound: Half-width of the domain of flow heads' splines, in the standardised
            unconstrained value (see :class:`~.flow_head.FlowHead`). Files saved before
            this field existed load with zuko's 5.
        flow_interval: How flow heads map a finite interval (a uniform prior's) onto the
            real line: ``"logit"`` (files saved before this field existed) or ``"probit"``,
            under which a flow near the identity is the uniform prior and keeps the
            proposal's density level at the interval's edges (see :mod:`.flow_head`).
    """

    observations: tuple[ObservationSpec, ...] = field(default_factory=tuple)
    observation_dim: int = 128
    lstm_dim: int = 128
    lstm_depth: int = 1
    address_dim: int = 32
    value_dim: int = 16
    mixture_components: int = 5
    count_prior_weight: float = 0.02
    interest_names: tuple[str, ...] = ()
    interest_addresses: tuple[str, ...] = ()
    heads: dict[str, str] = field(default_factory=dict)
    flow_transforms: int = 5
    flow_bins: int = 10
    flow_hidden: int = 64
    flow_bound: float = 10.0
    flow_interval: str = "logit"

    def __post_init__(self) -> None:
        poi = ParametersOfInterest(self.interest_names, self.interest_addresses)  # validates
        object.__setattr__(self, "interest_names", poi.names)  # JSON lists back to tuples
        object.__setattr__(self, "interest_addresses", poi.addresses)
        check_head_choice(self.heads)
        if min(self.flow_transforms, self.flow_bins - 1, self.flow_hidden) < 1:
            raise ValueError("NetworkConfig: flow_transforms, flow_hidden >= 1, flow_bins >= 2")
        if not self.flow_bound > 0:
            raise ValueError(f"NetworkConfig.flow_bound must be positive, got {self.flow_bound!r}")
        if self.flow_interval not in INTERVAL_MAPS:
            raise ValueError(
                f"NetworkConfig.flow_interval must be one of {INTERVAL_MAPS}, "
                f"got {self.flow_interval!r}"
            )
        for name in ("observation_dim", "lstm_dim", "lstm_depth", "address_dim", "value_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"NetworkConfig.{name} must be positive")
        if self.mixture_components < 1:
            raise ValueError("NetworkConfig.mixture_components must be positive")
        if not 0.0 < self.count_prior_weight < 1.0:
            raise ValueError("NetworkConfig.count_prior_weight must be in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        d = asdict(self)
        d["observations"] = [{**asdict(o), "shape": list(o.shape)} for o in self.observations]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NetworkConfig:
        """Inverse of :meth:`to_dict`."""
        obs = tuple(ObservationSpec(**{**o, "shape": tuple(o["shape"])}) for o in d["observations"])
        # files saved before flow_bound existed were trained with zuko's spline domain
        return cls(**{"flow_bound": 5.0, **d, "observations": obs})


class SiteLayers(nn.Module):
    """The layers of one address: its embedding, its value embedding and its proposal head."""

    def __init__(self, spec: SiteSpec, config: NetworkConfig) -> None:
        super().__init__()
        self.spec = spec
        self.address = nn.Parameter(torch.randn(config.address_dim) * 0.1)
        self.head: ProposalHead | FlowHead
        if spec.proposal == "flow":
            self.head = FlowHead(
                spec,
                config.lstm_dim + config.observation_dim,
                config.flow_transforms,
                config.flow_bins,
                config.flow_hidden,
                width=config.flow_hidden,
                bound=config.flow_bound,
                interval=config.flow_interval,
            )
        else:
            self.head = ProposalHead(
                spec,
                config.lstm_dim + config.observation_dim,
                config.mixture_components,
                config.count_prior_weight,
                width=config.lstm_dim,
                bounded_inputs=config.lstm_dim,
            )
        self.value_embedding = nn.Sequential(
            nn.Linear(self.head.value_features, config.value_dim), nn.Tanh()
        )

    def embed_values(self, values: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Value embeddings ``(n, value_dim)`` of ``values`` ``(n, numel)``."""
        out: torch.Tensor = self.value_embedding(self.head.features(values, params))
        return out


class InferenceNetwork(nn.Module):
    """Proposes every random choice of a model given its observations.

    Args:
        config: The sizes and observation embeddings.
        sites: Address layers to create up front (used when loading).

    Example:
        >>> net = InferenceNetwork(NetworkConfig(observations=(ObservationSpec("obs0"),)))
        >>> # train with rotalumis.nn.train_network, use with engine="ic"
    """

    def __init__(self, config: NetworkConfig, sites: tuple[SiteSpec, ...] = ()) -> None:
        super().__init__()
        self.config = config
        self.observation_encoder = ObservationEncoder(config.observations, config.observation_dim)
        width = config.observation_dim + config.value_dim + 2 * config.address_dim
        self.lstm = nn.LSTM(width, config.lstm_dim, config.lstm_depth, batch_first=True)
        self.sites = nn.ModuleDict()
        self.specs: list[SiteSpec] = []
        self._index: dict[str, int] = {}
        self._mismatch_reported: set[tuple[str, int, int]] = set()
        # provenance: the name of the model whose traces trained it (None: not recorded);
        # for traces of a stand-in (a surrogate), the model it imitates, and its own name in
        # ``trained_on``
        self.model_name: str | None = None
        self.trained_on: str | None = None
        self.interest = ParametersOfInterest(config.interest_names, config.interest_addresses)
        #: the proposed choices' fixed sequence, if any (for :func:`.proposal.sample_proposal`)
        self.sequence = SiteSequence()
        for spec in sites:
            self._add_site(spec)

    @classmethod
    def for_batch(
        cls,
        batch: TraceBatch,
        embeddings: Mapping[str, str | Mapping[str, Any]] | None = None,
        **sizes: Any,
    ) -> InferenceNetwork:
        """A new network for the observations present in ``batch``.

        Args:
            batch: A batch of traces (its observation names and shapes are used).
            embeddings: Observation name -> embedding kind (``"ff"``, ``"cnn2d"``,
                ``"cnn3d"``) or a dict of :class:`ObservationSpec` fields; names left out
                get a feed-forward embedding. Observations not in the batch raise.
            **sizes: Other :class:`NetworkConfig` fields.
        """
        embeddings = dict(embeddings or {})
        unknown = set(embeddings) - set(batch.observations)
        if unknown:
            raise KeyError(
                f"no observation named {', '.join(sorted(unknown))} in the traces "
                f"(they observe: {', '.join(sorted(batch.observations)) or 'nothing'})"
            )
        specs = []
        for name in sorted(batch.observations):
            opts = embeddings.get(name, {})
            opts = {"embedding": opts} if isinstance(opts, str) else dict(opts)
            shape = tuple(batch.observations[name].shape[1:])
            specs.append(ObservationSpec(name=name, shape=shape, **opts))
        net = cls(NetworkConfig(observations=tuple(specs), **sizes))
        net.observation_encoder.fit(batch.observations)
        return net

    # -- address layers --------------------------------------------------------------------
    def _add_site(self, spec: SiteSpec) -> SiteLayers:
        layers = SiteLayers(spec, self.config)
        layers.to(self.observation_encoder.device)
        self.sites[f"site{len(self.specs)}"] = layers
        self._index[spec.address] = len(self.specs)
        self.specs.append(spec)
        if spec.head == "prior":
            log.info(
                "address %s (%s): no proposal head, uses its prior", spec.address, spec.distribution
            )
        return layers

    def site(self, address: str) -> SiteLayers | None:
        """The layers of ``address``, or ``None`` if it was never seen."""
        i = self._index.get(address)
        return None if i is None else self.sites[f"site{i}"]  # type: ignore[return-value]

    @property
    def addresses(self) -> list[str]:
        """Addresses the network has layers for, in creation order."""
        return [s.address for s in self.specs]

    def restrict(self, batch: TraceBatch) -> TraceBatch:
        """``batch`` reduced to the choices this network proposes (all, unless it has
        parameters of interest)."""
        if self.interest.everything:
            return batch
        return restrict_batch(batch, lambda g: self.interest.matches(g.name, g.address))

    def add_sites(self, batch: TraceBatch) -> list[SiteLayers]:
        """Create layers for the proposed addresses of ``batch`` not seen before; return
        them. Also checks the batch against the recorded sequence of proposed choices."""
        batch = self.restrict(batch)
        self.sequence.update(batch)
        new = []
        for g in batch.groups:
            if g.address not in self._index:
                numel = g.values.shape[1]
                kind, cats = head_kind(g.distribution, numel, g.params.shape[1])
                if kind == "count":
                    cats = _count_support(g)
                family = choose_proposal(self.config.heads, g.distribution, kind, numel)
                spec = SiteSpec(
                    g.address,
                    g.distribution,
                    kind,
                    numel,
                    g.value_shape,
                    g.params.shape[1],
                    cats,
                    family,
                )
                new.append(self._add_site(spec))
        return new

    def _compatible(self, g: SiteGroup, spec: SiteSpec) -> bool:
        ok = g.values.shape[1] == spec.numel and g.params.shape[1] == spec.num_params
        key = (g.address, g.values.shape[1], g.params.shape[1])
        if not ok and key not in self._mismatch_reported:
            self._mismatch_reported.add(key)
            log.warning(
                "address %s: values of %d elements / %d parameters differ from the %d / %d "
                "its layers were built for; these visits are not trained",
                g.address, key[1], key[2], spec.numel, spec.num_params,
            )  # fmt: skip
        return bool(ok)

    # -- training --------------------------------------------------------------------------
    def loss(self, batch: TraceBatch, weights: Any = None) -> torch.Tensor:
        """Mean over traces of ``-sum_t log q(x_t | x_<t, y)`` (the IC training objective).

        With ``weights`` (one per trace, e.g. importance weights of traces simulated from a
        proposal instead of the prior), the weighted mean ``-sum_i w_i log q_i / sum_i w_i``.
        Addresses without layers are skipped: call :meth:`add_sites` first. With parameters
        of interest, the sum runs over those choices only (the LSTM steps over them alone).
        """
        log_q, _ = self.trace_log_probs(batch)
        if weights is None:
            loss: torch.Tensor = -log_q.sum() / batch.size
            return loss
        w = torch.as_tensor(weights, dtype=log_q.dtype, device=log_q.device)
        return -(w * log_q).sum() / w.sum()

    def trace_log_probs(self, batch: TraceBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Per trace, ``sum_t log q(x_t | x_<t, y)`` and ``sum_t log p(x_t)``, each ``(b,)``.

        Both sums run over the visits the network has layers for (elsewhere the proposal
        is the prior, whose ratio to itself is 1), so ``log q - log p`` is the log ratio of
        the network's proposal to the prior for the whole trace. With parameters of
        interest, over those choices only.
        """
        batch = self.restrict(batch)
        device = self.observation_encoder.device
        b, t = batch.size, max(batch.max_length, 1)
        cfg = self.config
        obs = self.observation_encoder(batch.observations, b)
        used = []
        idx_parts, addr_parts, val_parts = [], [], []
        for g in batch.groups:
            i = self._index.get(g.address)
            if i is None or not self._compatible(g, self.specs[i]):
                continue
            site: SiteLayers = self.sites[f"site{i}"]  # type: ignore[assignment]
            pos = torch.as_tensor(g.rows * t + g.steps, device=device)
            values = torch.as_tensor(g.values, dtype=torch.float32, device=device)
            params = torch.as_tensor(g.params, dtype=torch.float32, device=device)
            idx_parts.append(pos)
            addr_parts.append(site.address.expand(len(g), -1))
            val_parts.append(site.embed_values(values, params))
            used.append((site, pos, values, params, g.log_prior))
        if not used:
            zero: torch.Tensor = obs.sum(1) * 0.0
            return zero, zero.detach()
        idx = torch.cat(idx_parts)
        cur_addr = obs.new_zeros(b * t, cfg.address_dim).index_copy(0, idx, torch.cat(addr_parts))
        val = obs.new_zeros(b * t, cfg.value_dim).index_copy(0, idx, torch.cat(val_parts))
        cur_addr = cur_addr.view(b, t, -1)
        val = val.view(b, t, -1)
        prev_addr = torch.cat([cur_addr.new_zeros(b, 1, cfg.address_dim), cur_addr[:, :-1]], 1)
        prev_val = torch.cat([val.new_zeros(b, 1, cfg.value_dim), val[:, :-1]], 1)
        x = torch.cat([obs.unsqueeze(1).expand(b, t, -1), prev_val, prev_addr, cur_addr], 2)
        h, _ = self.lstm(x)
        h = h.reshape(b * t, -1)
        log_q, log_p = obs.new_zeros(b), obs.new_zeros(b)
        for site, pos, values, params, log_prior in used:
            lp_prior = torch.as_tensor(log_prior, dtype=torch.float32, device=device)
            x = torch.cat([h.index_select(0, pos), obs.index_select(0, pos // t)], 1)
            rows = pos // t
            log_q = log_q.index_add(0, rows, site.head.log_prob(x, values, params, lp_prior))
            log_p = log_p.index_add(0, rows, lp_prior)
        return log_q, log_p

    # -- persistence -----------------------------------------------------------------------
    def config_json(self) -> str:
        """The JSON configuration (sizes, observation embeddings, address layers)."""
        return json.dumps(
            {
                "network": self.config.to_dict(),
                "sites": [s.to_dict() for s in self.specs],
                "model": self.model_name,
                "trained_on": self.trained_on,
                "sequence": self.sequence.to_dict(),
            }
        )

    def payload(self) -> dict[str, Any]:
        """What :meth:`save` writes: format tags, the JSON config and the state dict."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "config": self.config_json(),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save to ``path`` (written atomically): weights plus JSON config, no pickled code."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(target) as fh:
            torch.save(self.payload(), fh)
        return target

    @classmethod
    def from_payload(
        cls, payload: Mapping[str, Any], source: str = "<payload>"
    ) -> InferenceNetwork:
        """Rebuild a network from :meth:`payload` output.

        The configuration is checked field by field; the network it describes is built within
        an allocation budget of the size of the state dict (a crafted configuration cannot
        make it allocate more than the file holds), and the state dict is checked against it.

        Raises:
            DatasetError: naming ``source`` if the payload is not a valid network.
        """
        if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
            raise DatasetError(f"{source} is not a rotalumis inference network")
        if payload.get("version") != FORMAT_VERSION:
            raise DatasetError(
                f"{source}: network format version {payload.get('version')} unsupported"
            )
        try:
            text = payload.get("config")
            if not isinstance(text, str | bytes):
                raise ValueError("its configuration is missing (no JSON text)")
            cfg = loads_json(text, "the configuration")
            network, site_dicts, model = check_config(cfg)
            state = payload.get("state_dict")
            if isinstance(state, Mapping) and count_sites(state) != len(site_dicts):
                raise ValueError(
                    f"the configuration lists {len(site_dicts)} addresses, the state dict "
                    f"holds layers for {count_sites(state)}"
                )
            config = NetworkConfig.from_dict(network)
            sites = tuple(SiteSpec.from_dict(s) for s in site_dicts)
            with AllocationBudget(state_size(state)):
                net = cls(config, sites)
            check_state_dict(state, {k: v.shape for k, v in net.state_dict().items()})
            net.load_state_dict(state)  # type: ignore[arg-type]
            net.sequence = SiteSequence.from_dict(cfg.get("sequence"))
        except (ValueError, TypeError, RuntimeError, KeyError, AttributeError) as exc:
            raise DatasetError(f"{source} is not a valid inference network: {exc}") from None
        net.model_name = model  # absent in files of earlier versions
        trained_on = cfg.get("trained_on")
        net.trained_on = trained_on if isinstance(trained_on, str) else None
        return net

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], device: str | torch.device | None = None
    ) -> InferenceNetwork:
        """Load a network saved by :meth:`save` (``weights_only=True``: no code is unpickled).

        Raises:
            DatasetError: if the file is missing, corrupt or not a network.
        """
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise DatasetError(f"inference network file not found: {path}") from None
        except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
            raise DatasetError(f"cannot read inference network {path}: {exc}") from exc
        net = cls.from_payload(payload, str(path))
        return net.to(device) if device is not None else net


def _count_support(g: SiteGroup) -> int:
    """``M`` of a count head: the support ``0 .. M-1`` its softmax covers."""
    if g.distribution == "Binomial":
        return int(np.max(g.params[:, 0])) + 1
    rate = float(np.max(g.params[:, 0]))
    return int(np.ceil(rate + 8.0 * np.sqrt(rate) + 10.0))
