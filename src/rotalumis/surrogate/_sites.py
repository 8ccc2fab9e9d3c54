"""The layers of one address of a surrogate, and the distributions they emit.

Each address owns an input embedding (read by the LSTM at the next step), a transition
vector (its logit as the next address), a value embedding and a value head — the
:class:`~rotalumis.nn.ProposalHead` (mixtures for continuous values, softmax for discrete
ones) or :class:`~rotalumis.nn.FlowHead` of the inference network, here predicting the
value from the history instead of proposing it from observations.

The simulator's prior parameters at a visit are not known when the surrogate runs on its
own, so a head reads fixed *reference parameters* of its address, computed once from the
visits of the training batch in which the address first appears (their mean; the widest
support for ``Uniform``/``TruncatedNormal`` bounds; for ``Normal`` the mean and standard
deviation of the values themselves, whose location often varies between visits, as an
observation's does with the latents). The reference distribution (the simulator's kind
with those parameters) also fixes the support.

What the emitted :class:`LearnedDistribution` reports as its parameters is the *prior* of the
address: the simulator's parameters averaged over those visits (exact where they are
the same at every visit, as a parameter's prior usually is). It differs from the reference
only for ``Normal`` sites, where standardising by the values' spread is right for the heads
but reporting it would be wrong: an inference network reads the prior's parameters, and one
trained on a surrogate's traces must see what the simulator reports.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import rotalumis.core as rc
from rotalumis.core import Distribution
from rotalumis.nn import FlowHead, ProposalHead, SiteSpec
from rotalumis.nn.heads import head_kind

from ._sequence import Step, stack_values
from ._skip import skip_size

__all__ = [
    "LearnedDistribution",
    "SiteLayers",
    "SurrogateSiteSpec",
    "prior_params",
    "reference_params",
]

_COUNT_KINDS = ("Poisson", "Binomial")


@dataclass(frozen=True)
class SurrogateSiteSpec:
    """What the layers of one address were built for (saved in the surrogate's JSON config).

    Attributes:
        site: Head kind, sizes and shapes (the inference network's :class:`SiteSpec`).
        kind: ``"sample"``, ``"observe"`` or ``"tag"``.
        name: The user's name of the site (``None`` if unnamed).
        control: Whether the choice is controlled by engines.
        reference: Reference parameters of the address (flattened): what the heads read.
        prior: The simulator's parameters averaged over the visits (flattened): what the
            emitted distributions report. Empty in files saved before it existed, which
            then report the reference.
    """

    site: SiteSpec
    kind: str
    name: str | None
    control: bool
    reference: tuple[float, ...]
    prior: tuple[float, ...] = ()

    @property
    def address(self) -> str:
        """The full address."""
        return self.site.address

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        d = asdict(self)
        d["site"] = self.site.to_dict()
        d["reference"] = list(self.reference)
        d["prior"] = list(self.prior)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SurrogateSiteSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            SiteSpec.from_dict(d["site"]),
            str(d["kind"]),
            d["name"],
            bool(d["control"]),
            tuple(float(x) for x in d["reference"]),
            tuple(float(x) for x in d.get("prior", ())),
        )


def prior_params(steps: list[Step]) -> tuple[float, ...]:
    """The simulator's parameters of an address averaged over visits of it (the widest
    support for ``Uniform``/``TruncatedNormal`` bounds, the largest ``Binomial`` count)."""
    return tuple(float(x) for x in _params(steps, values_spread=False))


def reference_params(steps: list[Step]) -> tuple[float, ...]:
    """Reference parameters of an address from visits of it (see the module docstring)."""
    return tuple(float(x) for x in _params(steps, values_spread=True))


def _params(steps: list[Step], values_spread: bool) -> np.ndarray:
    first = steps[0]
    values = stack_values(steps)
    m = values.shape[1]
    if not first.params:  # tags and dataset observations: a location and a scale
        std = values.std(0) if len(values) > 1 else np.ones(m)
        return np.concatenate([values.mean(0), np.maximum(std, 1e-3)]).astype(np.float64)
    params = np.asarray([s.params for s in steps], dtype=np.float64)
    ref = params.mean(0)
    d = first.distribution
    if d == "Uniform":
        ref[:m], ref[m : 2 * m] = params[:, :m].min(0), params[:, m : 2 * m].max(0)
    elif d == "TruncatedNormal":
        ref[2 * m : 3 * m], ref[3 * m :] = (
            params[:, 2 * m : 3 * m].min(0),
            params[:, 3 * m :].max(0),
        )
    elif d == "Binomial":
        ref[:m] = params[:, :m].max(0)
    elif d == "Normal" and values_spread:  # its location often varies between visits
        ref[:m] = values.mean(0)
        ref[m : 2 * m] = np.maximum(values.std(0) if len(values) > 1 else ref[m : 2 * m], 1e-3)
    return np.asarray(ref, dtype=np.float64)


def reference_distribution(
    spec: SurrogateSiteSpec, params: tuple[float, ...] | None = None
) -> Distribution:
    """The simulator's kind of distribution with the reference parameters (or ``params``).

    Tags, dataset observations and kinds that cannot be built from flat parameters get a
    ``Normal`` of the reference location and scale.
    """
    site, ref = spec.site, list(spec.reference if params is None else params)
    shape, m = site.value_shape, site.numel
    cls = getattr(rc, site.distribution, None)
    names = getattr(cls, "param_names", ())
    if isinstance(cls, type) and issubclass(cls, Distribution) and names and cls is not rc.Mixture:
        if site.distribution == "Categorical":
            return rc.Categorical(ref)
        if len(ref) == len(names) * m:
            chunks = [ref[i * m : (i + 1) * m] for i in range(len(names))]
            args = [c[0] if not shape else torch.tensor(c).reshape(shape) for c in chunks]
            return cls(*args)
    half = len(ref) // 2
    if not shape:
        return rc.Normal(ref[0], max(ref[half], 1e-3))
    loc = torch.tensor(ref[:half]).reshape(shape)
    return rc.Normal(loc, torch.tensor(ref[half:]).reshape(shape).clamp(min=1e-3))


class LearnedDistribution(Distribution):
    """A surrogate's distribution at one address, reporting the simulator's kind.

    Its name (hence the address it is drawn at), parameters and support are those of
    ``reference``, a distribution of the simulator's kind with the address's prior
    parameters; values are drawn and scored by the learned distribution ``inner``.
    """

    __slots__ = ("inner", "reference")
    kinds: ClassVar[dict[str, type[LearnedDistribution]]] = {}

    def __init__(self, inner: Distribution, reference: Distribution) -> None:
        self.inner = inner
        self.reference = reference

    @staticmethod
    def of(kind: str, inner: Distribution, reference: Distribution) -> LearnedDistribution:
        """A learned distribution named ``kind`` (one subclass per kind)."""
        cls = LearnedDistribution.kinds.get(kind)
        if cls is None:
            attrs = {"__slots__": (), "name": kind, "is_discrete": reference.is_discrete}
            cls = type(f"Learned{kind}", (LearnedDistribution,), attrs)
            LearnedDistribution.kinds[kind] = cls
        return cls(inner, reference)

    @property
    def params(self) -> dict[str, Any]:
        """The reference parameters."""
        return self.reference.params

    def sample(self, rng: rc.RNG) -> Any:
        """Draw from the learned distribution."""
        return self.inner.sample(rng)

    def log_prob(self, value: Any) -> Any:
        """Learned log-density."""
        return self.inner.log_prob(value)

    def log_prob_sum(self, value: Any) -> float | torch.Tensor:
        """Learned log-density, summed over elements."""
        return self.inner.log_prob_sum(value)

    def in_support(self, value: Any) -> bool:
        """Whether ``value`` is in the simulator's support at this address."""
        return self.reference.in_support(value)

    @property
    def mean(self) -> Any:
        """Mean of the learned distribution."""
        return self.inner.mean

    @property
    def variance(self) -> Any:
        """Variance of the learned distribution."""
        return self.inner.variance

    def __repr__(self) -> str:
        return f"Learned{self.name}({self.inner!r})"


def count_support(steps: list[Step], reference: tuple[float, ...]) -> int:
    """``M`` of a count head: its softmax covers ``0 .. M-1``."""
    top = float(stack_values(steps).max()) + 1
    if steps[0].distribution == "Binomial":
        return int(max(top, reference[0] + 1))
    rate = reference[0]
    return int(max(top + 5, math.ceil(rate + 8.0 * math.sqrt(rate) + 10.0)))


def site_spec(steps: list[Step], heads: dict[str, str]) -> SurrogateSiteSpec:
    """The spec of an address from (some of) its visits."""
    from rotalumis.nn.flow_head import choose_proposal

    first = steps[0]
    reference = reference_params(steps)
    numel = len(first.value)
    dist = first.distribution
    kind, cats = head_kind(dist, numel, len(reference))
    if kind == "prior":
        raise ValueError(
            f"surrogate: address {first.address} draws {dist} values of shape "
            f"{list(first.shape)}; no learned head models them (leave it out with sites=)"
        )
    if kind == "count":
        cats = count_support(steps, reference)
    family = choose_proposal(heads, dist, kind, numel)
    site = SiteSpec(first.address, dist, kind, numel, first.shape, len(reference), cats, family)
    prior = prior_params(steps)
    return SurrogateSiteSpec(site, first.kind, first.name, first.control, reference, prior)


class SiteLayers(nn.Module):
    """Input embedding, transition vector, value embedding and value head of one address."""

    def __init__(self, spec: SurrogateSiteSpec, sizes: Any) -> None:
        super().__init__()
        self.spec = spec
        site = spec.site
        self.embedding = nn.Parameter(torch.randn(sizes.address_dim) * 0.1)
        self.transition = nn.Parameter(torch.zeros(sizes.lstm_dim + 1))
        self.head: ProposalHead | FlowHead
        inputs = sizes.lstm_dim + skip_size(sizes)  # the LSTM state and the skip inputs
        self._skip_width = sizes.skip_width
        if site.proposal == "flow":
            self.head = FlowHead(
                site,
                inputs,
                sizes.flow_transforms,
                sizes.flow_bins,
                sizes.flow_hidden,
                width=sizes.flow_hidden,
                bound=sizes.flow_bound,
            )
            self.head.block = 1  # the history, hence the head input, changes at every visit
        else:
            self.head = ProposalHead(
                site,
                inputs,
                sizes.mixture_components,
                sizes.count_prior_weight,
                width=sizes.lstm_dim,
            )
        # counts are also read one-hot: the next address often depends on the exact count
        self._one_hot = site.categories if site.head == "count" else 0
        self.value_embedding = nn.Sequential(
            nn.Linear(self.head.value_features + self._one_hot, sizes.value_dim), nn.Tanh()
        )
        self.params: torch.Tensor
        self.register_buffer("params", torch.tensor([spec.reference], dtype=torch.float32))
        #: Drawn from the simulator's distribution (``SurrogateConfig.exact_priors``): its
        #: parameters were the same at every training visit. Set by the network.
        self.exact = False

    @functools.cached_property
    def reference(self) -> Distribution:
        """The reference distribution (see :func:`reference_distribution`)."""
        return reference_distribution(self.spec)

    @functools.cached_property
    def reported(self) -> Distribution:
        """What the emitted distributions report: the prior (see the module docstring)."""
        return reference_distribution(self.spec, self.spec.prior or None)

    def embed(self, values: torch.Tensor) -> torch.Tensor:
        """Input embedding ``(n, address_dim + value_dim)`` of visits with ``values``."""
        params = self.params.expand(len(values), -1)
        features = self.head.features(values, params)
        if self._one_hot:
            idx = values[:, 0].long().clamp(0, self._one_hot - 1)
            features = torch.cat([features, F.one_hot(idx, self._one_hot).to(values.dtype)], 1)
        emb = self.value_embedding(features)
        out: torch.Tensor = torch.cat([self.embedding.expand(len(values), -1), emb], 1)
        return out

    def skip_features(self, values: torch.Tensor) -> torch.Tensor:
        """What heads read of visits with ``values`` as skip inputs, ``(n, skip_width)``
        (see :mod:`._skip`)."""
        if self.spec.site.head == "cat":
            out = values[:, :1] / max(self.spec.site.categories - 1, 1)
        else:
            params = self.params.expand(len(values), -1)
            out = self.head.features(values, params).clamp(-10.0, 10.0).to(values.dtype)
        w = self._skip_width
        if out.shape[1] >= w:
            return out[:, :w]
        return F.pad(out, (0, w - out.shape[1]))

    def log_prob(self, h: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``log q(value | history)`` of visits, ``(n,)``: ``h`` is the head input (the
        LSTM output, then the skip inputs)."""
        params = self.params.expand(len(values), -1)
        if self.spec.site.head == "count":
            ref = self.reference
            args = [torch.as_tensor(p, dtype=values.dtype) for p in ref.params.values()]
            log_prior = type(ref)(*args).log_prob(values[:, 0])
        else:
            log_prior = values.new_zeros(len(values))
        out: torch.Tensor = self.head.log_prob(h, values, params, log_prior)
        return out

    def distribution(self, h: torch.Tensor) -> LearnedDistribution:
        """The learned distribution of the value given the head input ``h`` (the history
        state ``(1, lstm_dim)``, then any skip inputs; the simulator's, where :attr:`exact`)."""
        if self.exact:
            return LearnedDistribution.of(self.spec.site.distribution, self.reported, self.reported)
        ref = self.reference
        inner = self.head.proposal(h, self.params, ref)
        assert inner is not None  # "prior" heads are refused by site_spec
        return LearnedDistribution.of(self.spec.site.distribution, inner, self.reported)
