"""Proposal heads: one per address, chosen by the distribution kind of its prior.

=================================================  =========  ======================================
prior                                              head       proposal
=================================================  =========  ======================================
Normal, Mixture (continuous), unknown continuous   ``real``   mixture of K normals
Uniform, Beta, TruncatedNormal                     ``bound``  mixture of K normals truncated to the
                                                              prior's support
LogNormal, Exponential, Gamma, Weibull             ``pos``    mixture of K log-normals
Categorical, Bernoulli                             ``cat``    categorical (softmax) over the support
Poisson, Binomial                                  ``count``  softmax over ``0 .. M-1`` mixed with
                                                              the prior (weight ``eps``) so every
                                                              value of the support stays reachable
anything else (e.g. a tensor-valued Categorical)   ``prior``  the prior itself (no proposal)
=================================================  =========  ======================================

Mixture locations and scales are expressed relative to a location and scale read from the
prior's parameters (its mean and standard deviation, or the centre and half-width of its
support), so one network serves priors whose parameters differ between traces. A head
scores values with the differentiable log-densities of :mod:`._math` during training and
builds the matching core distribution (e.g. a ``Mixture`` of ``TruncatedNormal``) at
inference, whose ``sample``/``log_prob`` importance sampling then uses.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from rotalumis.core import (
    Bernoulli,
    Categorical,
    Distribution,
    LogNormal,
    Mixture,
    Normal,
    TruncatedNormal,
)

from ._math import normal_mixture_log_prob, truncated_normal_mixture_log_prob

__all__ = ["HEAD_KINDS", "ProposalHead", "SiteSpec", "head_kind"]

HEAD_KINDS = {
    "Normal": "real",
    "Mixture": "real",
    "Uniform": "bound",
    "Beta": "bound",
    "TruncatedNormal": "bound",
    "LogNormal": "pos",
    "Exponential": "pos",
    "Gamma": "pos",
    "Weibull": "pos",
    "Categorical": "cat",
    "Bernoulli": "cat",
    "Poisson": "count",
    "Binomial": "count",
}
_MIN_SCALE = 1e-6
_EULER = 0.5772156649015329


@dataclass(frozen=True)
class SiteSpec:
    """What the layers of one address were built for (saved in the network's JSON config).

    Attributes:
        address: The address.
        distribution: Distribution kind of its prior.
        head: Head kind (see the module table).
        numel: Elements in one value.
        value_shape: Shape of one value.
        num_params: Length of the flattened prior parameters.
        categories: Support size of ``cat`` heads, ``M`` of ``count`` heads, else 0.
        proposal: ``"mixture"`` (the heads of this module) or ``"flow"``
            (:class:`~.flow_head.FlowHead`).
    """

    address: str
    distribution: str
    head: str
    numel: int
    value_shape: tuple[int, ...]
    num_params: int
    categories: int = 0
    proposal: str = "mixture"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        d = asdict(self)
        d["value_shape"] = list(self.value_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SiteSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**d, "value_shape": tuple(d["value_shape"])})


def head_kind(distribution: str, numel: int, num_params: int) -> tuple[str, int]:
    """The head kind for a prior, and its ``categories`` (0 when unused)."""
    kind = HEAD_KINDS.get(distribution)
    if kind in ("cat", "count") and numel != 1:
        return "prior", 0
    if kind == "cat":
        return kind, 2 if distribution == "Bernoulli" else num_params
    if kind is None:
        return ("real", 0) if num_params == 2 * numel else ("prior", 0)
    return kind, 0


def context(distribution: str, params: torch.Tensor, m: int) -> tuple[torch.Tensor, ...]:
    """``(loc, scale, low, high)``, each ``(n, m)``, from flattened prior parameters.

    For ``pos`` heads the location and scale are those of ``log(value)``.
    """
    n = params.shape[0]
    inf = torch.full((n, m), math.inf, dtype=params.dtype, device=params.device)

    def col(i: int) -> torch.Tensor:
        return params[:, i * m : (i + 1) * m]

    d = distribution
    if d == "TruncatedNormal":
        loc, scale, low, high = col(0), col(1), col(2), col(3)
    elif d == "Uniform":
        low, high = col(0), col(1)
        loc, scale = (low + high) / 2, (high - low) / 2
    elif d == "Beta":
        a, b = col(0), col(1)
        loc = a / (a + b)
        scale = torch.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        low, high = torch.zeros_like(a), torch.ones_like(a)
    elif d == "LogNormal":
        loc, scale, low, high = col(0), col(1), -inf, inf
    elif d == "Exponential":
        loc, scale = -torch.log(col(0)) - _EULER, torch.full_like(col(0), math.pi / math.sqrt(6))
        low, high = -inf, inf
    elif d == "Gamma":
        conc, rate = col(0), col(1)
        loc, scale = torch.digamma(conc) - torch.log(rate), torch.sqrt(torch.polygamma(1, conc))
        low, high = -inf, inf
    elif d == "Weibull":
        lam, k = col(0), col(1)
        loc, scale = torch.log(lam) - _EULER / k, math.pi / (math.sqrt(6) * k)
        low, high = -inf, inf
    elif d == "Poisson":
        loc = col(0)
        scale, low, high = torch.sqrt(loc) + 1, -inf, inf
    elif d == "Binomial":
        nt, p = col(0), col(1)
        loc, scale, low, high = nt * p, torch.sqrt(nt * p * (1 - p)) + 1, -inf, inf
    else:  # Normal, Mixture moments, unknown two-parameter location-scale families
        loc, scale, low, high = col(0), col(1), -inf, inf
    return loc, torch.clamp(scale, min=_MIN_SCALE), low, high


class ProposalHead(nn.Module):
    """Maps the LSTM output at an address to a proposal distribution for its value.

    Args:
        spec: The address's :class:`SiteSpec`.
        inputs: Size of the head's input (LSTM output and observation embedding).
        components: Mixture components of continuous heads.
        prior_weight: ``eps`` of ``count`` heads.
        width: Hidden layer size (default: ``inputs``).
    """

    def __init__(
        self,
        spec: SiteSpec,
        inputs: int,
        components: int = 5,
        prior_weight: float = 0.02,
        width: int | None = None,
        bounded_inputs: int | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.kind = spec.head
        self.components = components
        self.prior_weight = prior_weight
        m, k = spec.numel, components
        outputs = {"cat": spec.categories, "count": spec.categories, "prior": 1}.get(
            self.kind, 3 * k * m
        )
        width = width or inputs
        continuous = self.kind in ("real", "bound", "pos")
        self.bounded_inputs = bounded_inputs if continuous else None
        if self.bounded_inputs is not None:
            outputs = k * m  # the means; scales and weights come from shape_net
            self.shape_net: nn.Module | None = nn.Sequential(
                nn.Linear(self.bounded_inputs, width), nn.ReLU(), nn.Linear(width, 2 * k * m)
            )
        else:
            self.shape_net = None
        self.net = nn.Sequential(nn.Linear(inputs, width), nn.ReLU(), nn.Linear(width, outputs))
        final = self.net[2]
        assert isinstance(final, nn.Linear)
        with torch.no_grad():
            final.weight.mul_(0.1)
            if continuous:
                spread = torch.linspace(-1.5, 1.5, k) if k > 1 else torch.zeros(1)
                if self.shape_net is None:
                    bias = final.bias.view(m, 3, k)
                    bias[:, 0] = spread
                    bias[:, 1] = 0.5413  # softplus(0.5413) = 1: unit relative scale
                    bias[:, 2] = 0.0
                else:
                    final.bias.view(m, k)[:] = spread
                    shape_final = self.shape_net[2]
                    assert isinstance(shape_final, nn.Linear)
                    shape_final.weight.mul_(0.1)
                    shape_bias = shape_final.bias.view(m, 2, k)
                    shape_bias[:, 0] = 0.5413
                    shape_bias[:, 1] = 0.0

    @property
    def value_features(self) -> int:
        """Width of :meth:`features`."""
        return self.spec.categories if self.kind == "cat" else self.spec.numel

    def features(self, values: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Normalised values (one-hot for ``cat``), input of the value embedding."""
        if self.kind == "cat":
            idx = values[:, 0].long().clamp(0, self.spec.categories - 1)
            return F.one_hot(idx, self.spec.categories).to(values.dtype)
        if self.kind == "prior":
            return values
        loc, scale, _, _ = context(self.spec.distribution, params, self.spec.numel)
        x = torch.log(torch.clamp(values, min=1e-300)) if self.kind == "pos" else values
        return (x - loc) / scale

    def _mixture(self, h: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m, k = self.spec.numel, self.components
        if self.shape_net is None:
            out = self.net(h).view(-1, m, 3, k)
        else:
            # Locations follow the observations (also linearly into the tails); scales and
            # weights see only the bounded LSTM state, so they cannot drift off there.
            shape = self.shape_net(h[:, : self.bounded_inputs]).view(-1, m, 2, k)
            out = torch.cat([self.net(h).view(-1, m, 1, k), shape], 2)
        loc, scale, low, high = context(self.spec.distribution, params, m)
        means = loc.unsqueeze(-1) + scale.unsqueeze(-1) * out[:, :, 0]
        stds = scale.unsqueeze(-1) * (F.softplus(out[:, :, 1]) + 1e-3)
        return means, stds, out[:, :, 2], low, high

    def _count_logits(self, h: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        logits = self.net(h)
        if self.spec.distribution == "Binomial":  # no mass above total_count
            support = torch.arange(self.spec.categories, device=h.device)
            logits = logits.masked_fill(support > params[:, :1], -math.inf)
        out: torch.Tensor = logits
        return out

    def log_prob(
        self, h: torch.Tensor, values: torch.Tensor, params: torch.Tensor, log_prior: torch.Tensor
    ) -> torch.Tensor:
        """``log q(values)``, shape ``(n,)``, differentiable in the network outputs.

        Args:
            h: Head inputs at the visits, ``(n, inputs)``.
            values: The values, ``(n, numel)``.
            params: Prior parameters, ``(n, num_params)``.
            log_prior: ``log p(values)`` under the prior, ``(n,)`` (used by ``count``).
        """
        kind = self.kind
        if kind == "prior":
            return log_prior
        if kind == "cat":
            logp = torch.log_softmax(self.net(h), dim=-1)
            return logp.gather(1, values[:, :1].long()).squeeze(1)
        if kind == "count":
            logp = torch.log_softmax(self._count_logits(h, params), dim=-1)
            x = values[:, :1].long()
            inside = x < self.spec.categories
            net_lp = logp.gather(1, torch.clamp(x, max=self.spec.categories - 1)).squeeze(1)
            net_lp = torch.where(inside.squeeze(1), net_lp, torch.full_like(net_lp, -math.inf))
            eps = self.prior_weight
            return torch.logaddexp(net_lp + math.log1p(-eps), log_prior + math.log(eps))
        means, stds, logits, low, high = self._mixture(h, params)
        if kind == "bound":
            lp = truncated_normal_mixture_log_prob(values, means, stds, logits, low, high)
        elif kind == "pos":
            x = torch.log(torch.clamp(values, min=1e-300))
            lp = normal_mixture_log_prob(x, means, stds, logits) - x
        else:
            lp = normal_mixture_log_prob(values, means, stds, logits)
        return lp.sum(dim=-1)

    def proposal(self, h: torch.Tensor, params: torch.Tensor, prior: Distribution) -> Any:
        """The proposal distribution (a core distribution) for one visit.

        Args:
            h: The head input, ``(1, inputs)``.
            params: The prior's flattened parameters, ``(1, num_params)``.
            prior: The prior at this visit (its value type is matched).

        Returns:
            A distribution, or ``None`` to sample from the prior.
        """
        kind = self.kind
        if kind == "prior":
            return None
        if kind == "cat":
            probs = torch.softmax(self.net(h)[0].double(), dim=-1).tolist()
            if self.spec.distribution == "Bernoulli":
                return Bernoulli(probs[1])
            return Categorical(probs)
        if kind == "count":
            probs = torch.softmax(self._count_logits(h, params)[0].double(), dim=-1).tolist()
            eps = self.prior_weight
            return Mixture([Categorical(probs), prior], [1.0 - eps, eps])
        means, stds, logits, low, high = self._mixture(h, params)
        # Proposals live on the CPU whatever the network's device: their values are drawn with
        # the engine's CPU generator and scored against CPU priors.
        weights = torch.softmax(logits[0].double(), dim=-1).cpu()  # (m, K)
        if self.spec.numel == 1 and prior.is_scalar:
            mu, sd = means[0, 0].tolist(), stds[0, 0].tolist()
            w = weights[0].tolist()
            if kind == "bound":
                lo, hi = float(low[0, 0]), float(high[0, 0])
                comps: list[Distribution] = [
                    TruncatedNormal(a, b, lo, hi) for a, b in zip(mu, sd, strict=True)
                ]
            elif kind == "pos":
                comps = [LogNormal(a, b) for a, b in zip(mu, sd, strict=True)]
            else:
                comps = [Normal(a, b) for a, b in zip(mu, sd, strict=True)]
            return Mixture(comps, w)
        shape = self.spec.value_shape
        mu_t, sd_t = means[0].double().cpu(), stds[0].double().cpu()
        cols = range(self.components)
        if kind == "bound":
            lo_t = low[0].double().cpu().reshape(shape)
            hi_t = high[0].double().cpu().reshape(shape)
            comps = [
                TruncatedNormal(mu_t[:, c].reshape(shape), sd_t[:, c].reshape(shape), lo_t, hi_t)
                for c in cols
            ]
        elif kind == "pos":
            comps = [LogNormal(mu_t[:, c].reshape(shape), sd_t[:, c].reshape(shape)) for c in cols]
        else:
            comps = [Normal(mu_t[:, c].reshape(shape), sd_t[:, c].reshape(shape)) for c in cols]
        return Mixture(comps, weights.reshape(*shape, self.components))
