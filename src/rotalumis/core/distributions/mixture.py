"""Finite mixtures of distributions: ``p(x) = Σ_k w_k p_k(x)``.

The mixing weights are held by a :class:`~.categorical.Categorical`, so they follow its
representation rules. A mixture whose components are all discrete is discrete
(``is_discrete`` is True on the instance's class, still named ``"Mixture"``); mixing discrete
with continuous components is an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from ..rng import RNG
from ._params import broadcast_shapes, broadcast_tensors, fail, is_number
from .base import Distribution, Value, same_param
from .categorical import Categorical, ProbsLike

__all__ = ["Mixture"]

_NEG_INF = -math.inf


def _components(components: object) -> tuple[Distribution, ...]:
    requirement = "must be a non-empty sequence of Distribution instances"
    if not isinstance(components, (list, tuple)) or not components:
        raise fail("Mixture", "components", requirement, repr(components))
    first = components[0]
    discrete = first.is_discrete if isinstance(first, Distribution) else None
    for c in components:
        if not isinstance(c, Distribution):
            raise fail("Mixture", "components", requirement, f"an item {c!r}")
        if c.is_discrete is not discrete:
            raise fail(
                "Mixture", "components", "must be all discrete or all continuous", list(components)
            )
    return tuple(components)


def _as_tensor(x: Value) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x)


class Mixture(Distribution):
    """A finite mixture of distributions with mixing weights ``probs``.

    Sampling picks a component with probability ``probs[k]`` and draws from it (independently
    per element on the tensor path); ``log_prob`` is ``logsumexp_k(log w_k + log p_k(x))``;
    the mean and variance follow the laws of total expectation and variance.

    Args:
        components: Distributions of one kind of support (all continuous or all discrete)
            whose shapes broadcast together.
        probs: Non-negative mixing weights, one per component (normalised here); a sequence,
            or a tensor whose last dimension indexes components (leading dimensions batch).

    Raises:
        DistributionError: if ``components`` is empty or holds non-distributions or mixed
            supports, ``probs`` is invalid or does not have one weight per component, or the
            shapes do not broadcast.

    Example:
        >>> from rotalumis.core.distributions import Normal
        >>> m = Mixture([Normal(-1.0, 1.0), Normal(1.0, 1.0)], [0.5, 0.5])
        >>> m.mean
        0.0
    """

    __slots__ = ("_components", "_mixing", "_scalar", "_shape")

    name: ClassVar[str] = "Mixture"
    param_names: ClassVar[tuple[str, ...]] = ("components", "probs")
    fixed_support: ClassVar[bool] = False

    def __new__(cls, components: Sequence[Distribution] = (), probs: ProbsLike = ()) -> Mixture:
        # Mixtures of discrete components are discrete; __init__ checks the other components.
        # (The defaults let pickle and copy create the bare instance they then fill in.)
        if cls is Mixture and isinstance(components, (list, tuple)) and components:
            first = components[0]
            if isinstance(first, Distribution) and first.is_discrete:
                return super().__new__(_DiscreteMixture)
        return super().__new__(cls)

    def __init__(self, components: Sequence[Distribution], probs: ProbsLike) -> None:
        self._components = _components(components)
        if isinstance(probs, Distribution):
            raise fail("Mixture", "probs", "must be a sequence or tensor", repr(probs))
        mixing = Categorical(probs)
        k = mixing.num_categories
        if k != len(self._components):
            raise fail(
                "Mixture",
                "probs",
                f"must have one weight per component ({len(self._components)})",
                f"{k} weights",
            )
        self._mixing = mixing
        scalar = mixing.is_scalar
        for c in self._components:
            if not scalar:
                break
            scalar = c.is_scalar
        self._scalar = scalar
        if scalar:
            self._shape = torch.Size()
            return
        try:
            self._shape = broadcast_shapes(mixing.shape, *(c.shape for c in self._components))
        except RuntimeError as exc:
            shapes = [tuple(c.shape) for c in self._components]
            raise fail("Mixture", "components", "must have shapes that broadcast", shapes) from exc

    # -- parameters -----------------------------------------------------------------------
    @property
    def components(self) -> tuple[Distribution, ...]:
        """The component distributions."""
        return self._components

    @property
    def probs(self) -> tuple[float, ...] | torch.Tensor:
        """The normalised mixing weights."""
        return self._mixing.probs

    @property
    def params(self) -> dict[str, Any]:
        return {"components": self._components, "probs": self._mixing.probs}

    @property
    def is_scalar(self) -> bool:
        return self._scalar

    @property
    def shape(self) -> torch.Size:
        return self._shape

    def expand(self, shape: tuple[int, ...] | torch.Size) -> Mixture:
        size = torch.Size(shape)
        p = self._mixing.probs
        t = p if isinstance(p, torch.Tensor) else torch.tensor(p)
        return Mixture([c.expand(size) for c in self._components], t.expand((*size, t.shape[-1])))

    # -- moments ------------------------------------------------------------------------------
    def _weighted(self) -> tuple[list[Value], Value, Value]:
        """``(weights, means, variances)`` (scalars, or tensors stacked on the last dim)."""
        w = self._mixing.probs
        means = [c.mean for c in self._components]
        variances = [c.variance for c in self._components]
        if self._scalar:
            return list(w), means, variances
        shape = self._shape
        w_t = _as_tensor(w).expand((*shape, len(means)))
        m_t = torch.stack([_as_tensor(m).expand(shape) for m in means], -1)
        v_t = torch.stack([_as_tensor(v).expand(shape) for v in variances], -1)
        return [w_t], m_t, v_t

    @property
    def mean(self) -> Value:
        w, m, _ = self._weighted()
        if self._scalar:
            return math.fsum([wk * mk for wk, mk in zip(w, m, strict=True)])
        return (w[0] * m).sum(-1)

    @property
    def variance(self) -> Value:
        w, m, v = self._weighted()
        if self._scalar:
            mu = math.fsum([wk * mk for wk, mk in zip(w, m, strict=True)])
            terms = [wk * (vk + (mk - mu) ** 2) for wk, mk, vk in zip(w, m, v, strict=True)]
            return math.fsum(terms)
        mu = (w[0] * m).sum(-1, keepdim=True)
        return (w[0] * (v + (m - mu).square())).sum(-1)

    # -- sampling -----------------------------------------------------------------------------
    def sample(self, rng: RNG) -> Value:
        if self._scalar:
            k = self._mixing.sample(rng)
            return self._components[k].sample(rng)
        shape = self._shape
        draws = [_as_tensor(self._component_at(c, shape).sample(rng)) for c in self._components]
        dtype = draws[0].dtype
        for d in draws[1:]:
            dtype = torch.promote_types(dtype, d.dtype)
        stacked = torch.stack([d.to(dtype).expand(shape) for d in draws], -1)
        k = self._choose(rng, shape).to(stacked.device)
        return stacked.gather(-1, k.unsqueeze(-1)).squeeze(-1)

    @staticmethod
    def _component_at(c: Distribution, shape: torch.Size) -> Distribution:
        """``c`` as a distribution of ``shape`` with independent elements."""
        return c if (not c.is_scalar and c.shape == shape) else c.expand(shape)

    def _choose(self, rng: RNG, shape: torch.Size) -> torch.Tensor:
        p = _as_tensor(self._mixing.probs).detach()
        k = p.shape[-1]
        flat = p.expand((*shape, k)).reshape(-1, k).cpu()
        if flat.shape[0] == 0:
            return torch.zeros(shape, dtype=torch.long)
        return torch.multinomial(flat, 1, generator=rng.torch).reshape(shape)

    # -- densities ------------------------------------------------------------------------------
    def log_prob(self, value: Value) -> Value:
        log_w = self._mixing.logits
        if self._scalar and (type(value) is float or type(value) is int or is_number(value)):
            terms = [lw + c.log_prob(value) for lw, c in zip(log_w, self._components)]  # noqa: B905
            top = max(terms)
            if top == _NEG_INF or top == math.inf:
                return top
            total = 0.0
            exp = math.exp
            for t in terms:
                total += exp(t - top)
            return top + math.log(total)
        lps = [_as_tensor(c.log_prob(value)) for c in self._components]
        lw = _as_tensor(log_w)
        dtype = lw.dtype if lw.is_floating_point() else torch.get_default_dtype()
        for lp in lps:
            dtype = torch.promote_types(dtype, lp.dtype)
        stacked = torch.stack(broadcast_tensors(*[lp.to(dtype) for lp in lps]), -1)
        return (stacked + lw.to(dtype=dtype, device=stacked.device)).logsumexp(-1)

    def same_support(self, other: Distribution) -> bool:
        """Same support: components of the same supports with the same non-zero weights
        (a conservative test: equal unions of different components count as different)."""
        if type(other) is not type(self):
            return False
        assert isinstance(other, Mixture)
        mine, theirs = self._components, other._components
        return (
            len(mine) == len(theirs)
            and same_param(_nonzero(self._mixing.probs), _nonzero(other._mixing.probs))
            and all(a.same_support(b) for a, b in zip(mine, theirs, strict=True))
        )

    def in_support(self, value: Value) -> bool:
        if self._scalar and not isinstance(value, torch.Tensor):
            w = self._mixing.probs
            return any(
                wk > 0.0 and c.in_support(value) for wk, c in zip(w, self._components, strict=True)
            )
        lp = _as_tensor(self.log_prob(value))
        return bool((lp > _NEG_INF).all())


class _DiscreteMixture(Mixture):
    """A :class:`Mixture` of discrete components (created by ``Mixture(...)`` itself)."""

    __slots__ = ()

    is_discrete: ClassVar[bool] = True


def _nonzero(probs: tuple[float, ...] | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(probs) > 0
