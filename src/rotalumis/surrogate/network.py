"""The surrogate network: an LSTM over the visited sites of a trace.

At step ``t`` the LSTM reads the embedding of the previous site (its address embedding and
the embedding of its value; zeros at the start). Its output ``h_t`` gives

* the distribution of the next address: a softmax over "end of trace", "unknown" and every
  known address (each address owns its logit vector, so the classifier grows as addresses
  appear);
* the distribution of the value at that address: the address's value head (see
  :mod:`._sites`).

Addresses seen fewer than ``min_visits`` times are "unknown" (and so is everything after
them): a surrogate that predicts "unknown" hands the execution to the simulator. The network
also records which addresses (and "end of trace") followed each address in training; a
running surrogate chooses only among those successors (or "unknown"), so it never makes a
transition its simulator was never seen to make.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from rotalumis.core import DatasetError
from rotalumis.core.checks import loads_json
from rotalumis.core.files import atomic_write
from rotalumis.nn.flow_head import check_head_choice

from ._sequence import SiteFilter, Step
from ._sites import SiteLayers, SurrogateSiteSpec, site_spec
from ._skip import history_inputs, skip_size

__all__ = ["END", "UNKNOWN", "SurrogateConfig", "SurrogateNetwork"]

FORMAT = "rotalumis-surrogate"
FORMAT_VERSION = 1
END, UNKNOWN = 0, 1
_SPECIAL = 2
_IGNORE = -100


@dataclass(frozen=True)
class SurrogateConfig:
    """Sizes and choices of a :class:`SurrogateNetwork` (frozen; saved as JSON).

    Attributes:
        lstm_dim: LSTM hidden size.
        lstm_depth: LSTM layers.
        address_dim: Size of address embeddings.
        value_dim: Size of value embeddings.
        mixture_components: Components of continuous value mixtures.
        count_prior_weight: Weight of the reference prior in count (Poisson/Binomial)
            heads (keeps every count reachable).
        heads: Value-head family per kind of address, as ``NetworkConfig.heads``. The
            default, ``{"vector": "flow"}``, gives continuous vector-valued sites a joint
            flow: per-element mixtures would make the elements independent given the
            history, which they are not where nuisance choices are marginalised (a vector
            observation's elements share the simulator's noise). ``{}``: mixtures only.
        min_visits: Visits of an address in training before it is known.
        transitions: ``"argmax"`` (the most likely next address: control flow is then a
            function of the values, as in a simulator whose choices are all recorded, and
            trace densities are exact for MCMC) or ``"sample"`` (drawn from the softmax).
        sites: Names or address patterns of the choices to model (empty: all); the others
            are nuisance, marginalised by the surrogate. Observations are always modelled.
        max_length: Most sites of one surrogate execution (0: four times the longest
            training trace); longer executions fall back to the simulator.
        flow_transforms: Spline transforms of flow heads.
        flow_bins: Spline bins of flow heads.
        flow_hidden: Hidden width of flow heads.
        flow_bound: Half-width of the domain of flow heads' splines, in the standardised
            unconstrained value (see :class:`~rotalumis.nn.FlowHead`); files saved before
            it existed load with 5, the domain they were trained with.
        exact_priors: Draw an address from the simulator's own distribution when its
            parameters were the same at every training visit (a parameter's prior, a fixed
            noise draw): the value then does not depend on the history, so nothing needs
            learning there, and the surrogate is exact at that address. Files saved before
            it existed load with ``False``.
        skip_values: Values of the most recent sites every value head reads directly,
            beside the LSTM state (see :mod:`._skip`): a head can then follow them linearly
            instead of through the saturating state. Files saved before it existed load
            with 0.
        skip_tags: Values of the most recent tags every value head reads directly (an
            observation of a tagged ``mu``). Files saved before it existed load with 0.
        skip_width: Numbers read of each skipped value (a vector's first elements; a scalar
            padded with zeros), each with a presence flag.
    """

    lstm_dim: int = 64
    lstm_depth: int = 1
    address_dim: int = 16
    value_dim: int = 16
    mixture_components: int = 5
    count_prior_weight: float = 1e-3
    heads: dict[str, str] = field(default_factory=lambda: {"vector": "flow"})
    min_visits: int = 1
    transitions: str = "argmax"
    sites: tuple[str, ...] = ()
    max_length: int = 0
    flow_transforms: int = 4
    flow_bins: int = 8
    flow_hidden: int = 64
    flow_bound: float = 5.0
    exact_priors: bool = True
    skip_values: int = 0
    skip_tags: int = 0
    skip_width: int = 1

    def __post_init__(self) -> None:
        check_head_choice(self.heads)
        for name in ("lstm_dim", "lstm_depth", "address_dim", "value_dim", "min_visits"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"SurrogateConfig.{name} must be a positive integer")
        for name in ("skip_values", "skip_tags", "skip_width"):
            value = getattr(self, name)
            least = 1 if name == "skip_width" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"SurrogateConfig.{name} must be an integer >= {least}")
        if self.mixture_components < 1 or self.max_length < 0:
            raise ValueError("SurrogateConfig: mixture_components >= 1, max_length >= 0")
        if not 0.0 < self.count_prior_weight < 1.0:
            raise ValueError("SurrogateConfig.count_prior_weight must be in (0, 1)")
        if self.transitions not in ("argmax", "sample"):
            raise ValueError(
                f"SurrogateConfig.transitions must be 'argmax' or 'sample', "
                f"got {self.transitions!r}"
            )
        if isinstance(self.flow_bound, bool) or not (
            isinstance(self.flow_bound, (int, float)) and 0 < self.flow_bound < math.inf
        ):
            raise ValueError(
                f"SurrogateConfig.flow_bound must be a positive number, got {self.flow_bound!r}"
            )
        SiteFilter(self.sites)
        object.__setattr__(self, "sites", tuple(self.sites))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        d = asdict(self)
        d["sites"] = list(self.sites)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SurrogateConfig:
        """Inverse of :meth:`to_dict`."""
        # files saved before flow_bound existed were trained with zuko's spline domain, 5
        # and before exact_priors existed, every address was learned; before skip inputs
        # existed, heads read the LSTM state alone
        old = {"flow_bound": 5.0, "exact_priors": False, "skip_values": 0, "skip_tags": 0}
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:  # a newer file: say so rather than fail on an unexpected argument
            raise ValueError(
                f"surrogate configuration has unknown settings {sorted(unknown)} "
                "(saved by a newer version of rotalumis?)"
            )
        return cls(**{**old, **d, "sites": tuple(d.get("sites", ()))})


class SurrogateNetwork(nn.Module):
    """Next address and value distributions given the history of a trace.

    Args:
        config: Sizes and choices.
        sites: Address layers to create up front (used when loading).
    """

    def __init__(self, config: SurrogateConfig, sites: Sequence[SurrogateSiteSpec] = ()) -> None:
        super().__init__()
        self.config = config
        width = config.address_dim + config.value_dim
        self.lstm = nn.LSTM(width, config.lstm_dim, config.lstm_depth, batch_first=True)
        self.special = nn.Linear(config.lstm_dim, _SPECIAL)  # end of trace, unknown
        self.sites = nn.ModuleDict()
        self.specs: list[SurrogateSiteSpec] = []
        self._index: dict[str, int] = {}
        self.visits: Counter[str] = Counter()
        self.longest = 0
        #: Address -> the addresses (``""``: end of trace) seen to follow it (``""``: start).
        self.successors: dict[str, set[str]] = {}
        #: Provenance: the name of the model whose traces trained it.
        self.model_name: str | None = None
        #: Simulator executions seen in training.
        self.traces_seen = 0
        #: Address -> its parameters, for the addresses whose parameters have been the same
        #: at every visit so far (drawn from the simulator's distribution: ``exact_priors``).
        self.fixed: dict[str, tuple[float, ...]] = {}
        #: Address not yet known (fewer than ``min_visits`` visits) -> its parameters if
        #: they were the same at every visit so far, else ``None``.
        self.pending: dict[str, tuple[float, ...] | None] = {}
        for spec in sites:
            self._add(spec)

    def _add(self, spec: SurrogateSiteSpec) -> SiteLayers:
        layers = SiteLayers(spec, self.config)
        layers.to(self.special.weight.device)
        self.sites[f"site{len(self.specs)}"] = layers
        self._index[spec.address] = len(self.specs)
        self.specs.append(spec)
        return layers

    def layers(self, i: int) -> SiteLayers:
        """The layers of site ``i`` (class ``i + 2`` of the transition softmax)."""
        out: SiteLayers = self.sites[f"site{i}"]  # type: ignore[assignment]
        return out

    @property
    def addresses(self) -> list[str]:
        """Known addresses, in creation order."""
        return [s.address for s in self.specs]

    def add_sites(self, sequences: Sequence[Sequence[Step]]) -> list[SiteLayers]:
        """Count visits; create layers for addresses that reach ``min_visits``; return them."""
        by_address: dict[str, list[Step]] = {}
        for seq in sequences:
            self.longest = max(self.longest, len(seq))
            for before, after in zip(["", *(s.address for s in seq)], [*seq, None], strict=True):
                self.successors.setdefault(before, set()).add(
                    "" if after is None else after.address
                )
            for s in seq:
                self.visits[s.address] += 1
                if s.address not in self._index:
                    by_address.setdefault(s.address, []).append(s)
                    seen = self.pending.setdefault(s.address, s.params)
                    if seen is not None and seen != s.params:
                        self.pending[s.address] = None
                elif s.address in self.fixed and s.params != self.fixed[s.address]:
                    self._unfix(s.address)
        new = []
        for address, steps in by_address.items():
            if self.visits[address] >= self.config.min_visits:
                layers = self._add(site_spec(steps, self.config.heads))
                new.append(layers)
                # every visit counts, those of earlier batches too (min_visits > 1)
                params = self.pending.pop(address)
                if self.config.exact_priors and params and steps[0].kind != "tag":
                    self.fixed[address] = params
                    layers.exact = True
        return new

    def _unfix(self, address: str) -> None:
        """The parameters of ``address`` changed between visits: its head takes over."""
        del self.fixed[address]
        self.layers(self._index[address]).exact = False

    def _known(self, s: Step) -> int | None:
        i = self._index.get(s.address)
        if i is None or len(s.value) != self.specs[i].site.numel:
            return None
        return i

    # -- training --------------------------------------------------------------------------
    def loss(self, sequences: Sequence[Sequence[Step]]) -> torch.Tensor:
        """Mean over traces of ``-log q(trace)``: addresses (with end of trace) and values."""
        logits, targets, visits = self._scores(sequences)
        loss = F.cross_entropy(logits, targets.to(logits.device), reduction="sum")
        for _, log_q in visits:
            loss = loss - log_q.sum()
        return loss / max(len(sequences), 1)

    def site_log_probs(self, sequences: Sequence[Sequence[Step]]) -> torch.Tensor:
        """``log q(value | history)`` of every site of ``sequences``, ``(b, longest)``, as
        the training loss scores it (NaN past a trace's end or its first unknown site)."""
        with torch.no_grad():
            _, targets, visits = self._scores(sequences)
            out = torch.full((len(targets),), math.nan)
            for p, log_q in visits:
                out[p.cpu()] = log_q.cpu()
        return out.view(len(sequences), -1)[:, :-1]

    def _scores(
        self, sequences: Sequence[Sequence[Step]]
    ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Transition logits and targets of every step, flattened ``(b * t, ...)``, and per
        address the flat positions of its visits with their value log-densities."""
        device = self.special.weight.device
        b = len(sequences)
        t_max = max((len(s) for s in sequences), default=0) + 1
        cfg = self.config
        targets = torch.full((b, t_max), _IGNORE, dtype=torch.long)
        groups: dict[int, tuple[list[int], list[tuple[float, ...]]]] = {}
        for row, seq in enumerate(sequences):
            for t, s in enumerate(seq):
                i = self._known(s)
                if i is None:
                    targets[row, t] = UNKNOWN  # the rest is never generated: not trained
                    break
                targets[row, t] = _SPECIAL + i
                pos, values = groups.setdefault(i, ([], []))
                pos.append(row * t_max + t)
                values.append(s.value)
            else:
                targets[row, len(seq)] = END
        x = torch.zeros(b * t_max, cfg.address_dim + cfg.value_dim, device=device)
        skip = skip_size(cfg)
        if skip:
            features = torch.zeros(b * t_max, cfg.skip_width, device=device)
            present = torch.zeros(b * t_max, dtype=torch.bool, device=device)
            is_tag = torch.zeros_like(present)
        visits = []
        for i, (pos, values) in groups.items():
            site = self.layers(i)
            v = torch.tensor(values, dtype=torch.float32, device=device)
            p = torch.tensor(pos, device=device)
            visits.append((site, p, v))
            nxt = p + 1  # the next step reads this visit; never past the row (END follows)
            x = x.index_copy(0, nxt, site.embed(v))
            if skip:
                features[p] = site.skip_features(v)
                present[p] = True
                is_tag[p] = site.spec.kind == "tag"
        h, _ = self.lstm(x.view(b, t_max, -1))
        h = h.reshape(b * t_max, -1)
        logits = self.transition_logits(h)
        if skip:  # the value heads read the skip inputs beside the state
            shape = (b, t_max)
            inputs = history_inputs(
                features.view(*shape, -1), present.view(shape), is_tag.view(shape), cfg
            )
            h = torch.cat([h, inputs.reshape(b * t_max, -1)], 1)
        scores = [(p, site.log_prob(h.index_select(0, p), v)) for site, p, v in visits]
        return logits, targets.view(-1), scores

    def transition_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, 2 + sites)``: end of trace, unknown, then each known address."""
        special: torch.Tensor = self.special(h)
        if not self.specs:
            return special
        w = torch.stack([self.layers(i).transition for i in range(len(self.specs))])
        out: torch.Tensor = torch.cat([special, h @ w[:, :-1].T + w[:, -1]], 1)
        return out

    # -- persistence -----------------------------------------------------------------------
    def config_json(self) -> str:
        """The JSON configuration (sizes, address layers, provenance)."""
        return json.dumps(
            {
                "surrogate": self.config.to_dict(),
                "sites": [s.to_dict() for s in self.specs],
                "model": self.model_name,
                "visits": dict(self.visits),
                "longest": self.longest,
                "successors": {k: sorted(v) for k, v in self.successors.items()},
                "traces_seen": self.traces_seen,
                "fixed": {k: list(v) for k, v in self.fixed.items()},
                "pending": {k: None if v is None else list(v) for k, v in self.pending.items()},
            }
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save to ``path`` atomically: JSON config plus state dict (no pickled code)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "config": self.config_json(),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }
        with atomic_write(target) as fh:
            torch.save(payload, fh)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SurrogateNetwork:
        """Load a surrogate saved by :meth:`save` (``weights_only=True``).

        Raises:
            DatasetError: naming ``path`` if it is missing, corrupt or not a surrogate.
        """
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise DatasetError(f"surrogate file not found: {path}") from None
        except Exception as exc:  # torch.load raises many kinds on junk (struct.error, ...)
            raise DatasetError(f"cannot read surrogate {path}: {exc}") from exc
        if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
            raise DatasetError(f"{path} is not a rotalumis surrogate")
        if payload.get("version") != FORMAT_VERSION:
            raise DatasetError(f"{path}: surrogate format version {payload.get('version')}")
        try:
            cfg = loads_json(payload.get("config") or "", "the configuration")
            config = SurrogateConfig.from_dict(cfg["surrogate"])
            specs = [SurrogateSiteSpec.from_dict(s) for s in cfg["sites"]]
            net = cls(config, specs)
            net.load_state_dict(payload["state_dict"])
            net.visits = Counter({str(k): int(v) for k, v in cfg["visits"].items()})
            net.longest = int(cfg["longest"])
            net.successors = {str(k): set(map(str, v)) for k, v in cfg["successors"].items()}
            net.traces_seen = int(cfg["traces_seen"])
            net.model_name = cfg["model"]
            for address, params in cfg.get("fixed", {}).items():  # absent in older files
                net.fixed[str(address)] = tuple(float(x) for x in params)
                net.layers(net._index[str(address)]).exact = True
            for address, params in cfg.get("pending", {}).items():  # absent in older files
                net.pending[str(address)] = (
                    None if params is None else tuple(float(x) for x in params)
                )
        except (ValueError, TypeError, KeyError, RuntimeError, AttributeError) as exc:
            raise DatasetError(f"{path} is not a valid surrogate: {exc}") from None
        return net
