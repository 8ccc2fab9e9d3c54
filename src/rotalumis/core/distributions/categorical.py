"""The Categorical distribution over indices ``{0, ..., K-1}``.

Representations (the choice documented here is relied upon by engines and the PPX codec):

* **scalar** — ``probs`` (or ``logits``) is a Python list/tuple of numbers, a 1-D NumPy array
  or a 1-D tensor that does not need a gradient. :attr:`Categorical.probs` is then a tuple
  of floats (the normalised weights), values are Python ``int`` drawn with ``rng.py`` and
  ``log_prob`` returns a ``float``. A single number (or 0-d tensor) is one category: PPX
  sends a one-element ``probs`` tensor as a number.
* **1-D tensor with gradient** — a 1-D ``probs``/``logits`` tensor that requires grad (while
  grad mode is on), e.g. a proposal network's output. Values are still Python ``int`` drawn
  with ``rng.py`` (the same type the scalar prior gives, so proposals and priors agree), but
  ``log_prob`` returns a 0-d tensor differentiable with respect to the parameters.
* **batched** — a tensor with two or more dimensions: the last dimension indexes categories,
  the others are the batch shape. Values are ``torch.long`` tensors of the batch shape drawn
  with ``rng.torch``; ``log_prob`` broadcasts the value against the batch shape.

The mean and variance are those of the index.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from ..errors import DistributionError
from ..rng import RNG
from ._params import as_tensors, broadcast_shapes, fail, is_number, scalar_integer
from .base import Distribution, Value

__all__ = ["Categorical"]

_INF = math.inf
_NEG_INF = -math.inf

ProbsLike = Sequence[float] | torch.Tensor


def _weights(name: str, values: Sequence[Any]) -> tuple[tuple[float, ...], float] | None:
    """Validated non-negative weights and their sum (scalar path).

    Returns ``None`` when the elements are tensors (they go to the tensor path).
    """
    try:
        total = sum(values)
        low = min(values)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise fail("Categorical", name, "must be a non-empty sequence of numbers", values) from exc
    if isinstance(total, torch.Tensor):
        return None
    if not (0.0 < total < _INF and low >= 0.0):
        bad = next((w for w in values if not 0.0 <= w < _INF), None)
        if bad is not None:
            raise fail("Categorical", name, "must be finite and >= 0", bad)
        raise fail("Categorical", name, "must have a positive finite sum", total)
    return tuple([float(w) for w in values]), float(total)


def _softmax(values: Sequence[Any]) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Normalised ``(probs, log_probs)`` from logits (scalar path; ``None`` for tensors)."""
    if any(isinstance(x, torch.Tensor) for x in values):
        return None
    try:
        logits = [float(x) for x in values]
        top = max(logits)
    except (TypeError, ValueError) as exc:
        raise fail(
            "Categorical", "logits", "must be a non-empty sequence of numbers", values
        ) from exc
    if not all(-_INF < x < _INF for x in logits):
        raise fail("Categorical", "logits", "must be finite", values)
    log_total = top + math.log(math.fsum([math.exp(x - top) for x in logits]))
    log_probs = tuple([x - log_total for x in logits])
    return tuple([math.exp(x) for x in log_probs]), log_probs


def _check_tensor(name: str, t: torch.Tensor) -> torch.Tensor:
    if t.shape[-1] == 0:
        raise fail("Categorical", name, "must have a non-empty last dimension", tuple(t.shape))
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    d = t.detach()
    if not bool(torch.isfinite(d).all()):
        raise fail("Categorical", name, "must be finite", d)
    if name == "probs":
        if not bool((d >= 0).all()):
            raise fail("Categorical", name, "must be >= 0", d[d < 0].flatten()[0].item())
        if not bool((d.sum(-1) > 0).all()):
            raise fail("Categorical", name, "must have a positive sum", d)
    return t


class Categorical(Distribution):
    """Categorical distribution over ``{0, ..., K-1}`` given weights or logits.

    Args:
        probs: Non-negative weights (normalised here), a sequence or tensor whose last
            dimension indexes the ``K`` categories.
        logits: Alternatively, unnormalised log-probabilities (keyword only).

    Raises:
        DistributionError: if neither or both of ``probs``/``logits`` are given, a weight is
            negative or not finite, or the weights sum to zero.

    Example:
        >>> Categorical([1.0, 3.0]).probs
        (0.25, 0.75)
    """

    # Scalar path: ``_weights`` (raw weights) and ``_total``; ``_probs``, ``_log_probs`` and
    # ``_cum`` (cumulative weights for sampling) are derived lazily. Tensor path: ``_weights``
    # is None and ``_probs`` (and, from logits, ``_log_probs``) are normalised tensors.
    __slots__ = ("_cum", "_log_probs", "_probs", "_total", "_weights")

    name: ClassVar[str] = "Categorical"
    is_discrete: ClassVar[bool] = True
    param_names: ClassVar[tuple[str, ...]] = ("probs",)
    fixed_support: ClassVar[bool] = False

    def __init__(self, probs: ProbsLike | None = None, *, logits: ProbsLike | None = None) -> None:
        self._cum: list[float] | None = None
        self._log_probs: tuple[float, ...] | torch.Tensor | None = None
        self._probs: tuple[float, ...] | torch.Tensor | None = None
        if logits is None and (type(probs) is list or type(probs) is tuple):
            # Fast path: a list of non-negative numbers with a positive finite sum.
            try:
                total = sum(probs)
            except TypeError:
                total = None
            if (
                (type(total) is float or type(total) is int)
                and 0.0 < total < _INF
                and min(probs) >= 0.0
            ):
                self._weights: tuple[float, ...] | None = tuple(probs)
                self._total = float(total)
                return
        if (probs is None) == (logits is None):
            raise DistributionError("Categorical: give exactly one of 'probs' and 'logits'")
        name = "probs" if logits is None else "logits"
        raw = probs if logits is None else logits
        if type(raw) is list or type(raw) is tuple:
            if self._init_scalar(name, raw):
                return
            # A sequence of tensors (e.g. 0-d tensors carrying gradients): stack them.
            raw = torch.stack([torch.as_tensor(x) for x in raw])
        as_list = self._from_array(name, raw)
        if as_list is not None:
            self._init_scalar(name, as_list)

    def _init_scalar(self, name: str, raw: Sequence[Any]) -> bool:
        """Set up the scalar path; ``False`` if the elements turn out to be tensors."""
        if name == "probs":
            checked = _weights(name, raw)
            if checked is None:
                return False
            self._weights, self._total = checked
            return True
        soft = _softmax(raw)
        if soft is None:
            return False
        self._weights, self._log_probs = soft
        self._probs = self._weights
        self._total = 1.0
        return True

    def _from_array(self, name: str, raw: object) -> list[Any] | None:
        """Tensor (or array) parameters: set up the tensor path, or return the weights as a
        list when they belong on the scalar path (1-D, no gradient needed)."""
        if isinstance(raw, torch.Tensor):
            t = raw
        else:
            try:
                t = torch.as_tensor(raw)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise fail("Categorical", name, "must be a sequence or tensor", raw) from exc
        if t.dim() == 0:  # one category: PPX sends a 1-element probs tensor as a number
            t = t.reshape(1)
        if t.dim() == 1 and not (t.requires_grad and torch.is_grad_enabled()):
            return list(t.tolist())
        t = _check_tensor(name, t)
        self._weights = None
        self._total = 1.0
        if name == "probs":
            self._probs = t / t.sum(-1, keepdim=True)
        else:
            self._log_probs = t - t.logsumexp(-1, keepdim=True)
            self._probs = self._log_probs.exp()
        return None

    # -- parameters -----------------------------------------------------------------------
    @property
    def probs(self) -> tuple[float, ...] | torch.Tensor:
        """Normalised probabilities: a tuple of floats (scalar path) or a tensor."""
        p = self._probs
        if p is None:
            w, total = self._weights, self._total
            assert w is not None
            p = self._probs = tuple([x / total for x in w])
        return p

    @property
    def logits(self) -> tuple[float, ...] | torch.Tensor:
        """Normalised log-probabilities (``-inf`` for zero-probability categories)."""
        lp = self._log_probs
        if lp is None:
            p = self.probs
            if isinstance(p, torch.Tensor):
                return torch.where(p > 0, p, 1.0).log().masked_fill(p == 0, _NEG_INF)
            lp = self._log_probs = tuple([math.log(x) if x > 0.0 else _NEG_INF for x in p])
        return lp

    @property
    def params(self) -> dict[str, tuple[float, ...] | torch.Tensor]:
        return {"probs": self.probs}

    @property
    def is_scalar(self) -> bool:
        return self._weights is not None

    @property
    def num_categories(self) -> int:
        """``K``, the number of categories."""
        w = self._weights
        if w is not None:
            return len(w)
        p = self._probs
        assert isinstance(p, torch.Tensor)
        return p.shape[-1]

    @property
    def shape(self) -> torch.Size:
        p = self._probs
        if isinstance(p, torch.Tensor) and p.dim() > 1:
            return p.shape[:-1]
        return torch.Size()

    def expand(self, shape: tuple[int, ...] | torch.Size) -> Categorical:
        """Batched copy with batch shape ``shape`` (``shape == ()`` keeps a single choice)."""
        size = torch.Size(shape)
        p = self.probs
        t = p if isinstance(p, torch.Tensor) else torch.tensor(p, dtype=torch.get_default_dtype())
        return Categorical(t.expand((*size, t.shape[-1])))

    @property
    def mean(self) -> Value:
        p = self.probs
        if isinstance(p, torch.Tensor):
            return (p * torch.arange(p.shape[-1], dtype=p.dtype, device=p.device)).sum(-1)
        return math.fsum([i * x for i, x in enumerate(p)])

    @property
    def variance(self) -> Value:
        p = self.probs
        if isinstance(p, torch.Tensor):
            k = torch.arange(p.shape[-1], dtype=p.dtype, device=p.device)
            m_t = (p * k).sum(-1, keepdim=True)
            return (p * (k - m_t).square()).sum(-1)
        m = math.fsum([i * x for i, x in enumerate(p)])
        return math.fsum([(i - m) * (i - m) * x for i, x in enumerate(p)])

    # -- sampling -----------------------------------------------------------------------------
    def sample(self, rng: RNG) -> Value:
        cum = self._cum
        if cum is None:
            weights: Sequence[float] | None = self._weights
            if weights is None:
                p = self._probs
                assert isinstance(p, torch.Tensor)
                if p.dim() > 1:
                    flat = p.detach().reshape(-1, p.shape[-1]).cpu()
                    idx = torch.multinomial(flat, 1, generator=rng.torch)
                    return idx.reshape(p.shape[:-1]).to(p.device)
                weights = p.detach().tolist()
            cum = self._cum = list(itertools.accumulate(weights))
        total = cum[-1]
        k = bisect.bisect_right(cum, rng.py.random() * total)
        if k >= len(cum):  # u * total rounded up to total: take the last non-empty category
            k = bisect.bisect_left(cum, total)
        return k

    # -- densities ----------------------------------------------------------------------------
    def log_prob(self, value: Value) -> Value:
        w = self._weights
        if w is not None and (type(value) is int or is_number(value)):
            if type(value) is not int:
                if not scalar_integer(value):
                    return _NEG_INF
                value = int(value)
            if not 0 <= value < len(w):
                return _NEG_INF
            lp = self._log_probs
            if lp is not None:
                return lp[value]
            x = w[value]
            return math.log(x / self._total) if x > 0.0 else _NEG_INF
        logits = self.logits
        if not isinstance(logits, torch.Tensor):
            logits = torch.tensor(logits, dtype=torch.get_default_dtype())
        (v,) = as_tensors(value)
        v = v.to(logits.device)
        k = logits.shape[-1]
        valid = torch.isfinite(v) & (v == v.floor()) & (v >= 0) & (v < k)
        idx = torch.where(valid, v, 0.0).long()
        batch = broadcast_shapes(logits.shape[:-1], idx.shape)
        lp_t = logits.expand((*batch, k)).gather(-1, idx.expand(batch).unsqueeze(-1)).squeeze(-1)
        return torch.where(valid, lp_t, _NEG_INF)

    def _support_params(self) -> tuple[int]:
        return (self.num_categories,)

    def in_support(self, value: Value) -> bool:
        k = self.num_categories
        if is_number(value):
            return scalar_integer(value) and bool(0 <= value < k)
        (v,) = as_tensors(value)
        return bool((torch.isfinite(v) & (v == v.floor()) & (v >= 0) & (v < k)).all())
