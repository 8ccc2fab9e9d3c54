"""The :class:`Distribution` interface every rotalumis distribution implements.

Two representations share one class per distribution kind:

* **scalar** — every parameter is a Python number. Sampling uses ``rng.py``
  (:class:`random.Random`) and ``log_prob`` uses :mod:`math`; values are Python ``float``
  (continuous) or ``int`` (discrete). This is the hot path of simulators with scalar
  random choices and costs well under a microsecond per call: no tensors, no broadcasting,
  no ``torch.distributions`` validation.
* **tensor** — at least one parameter is a :class:`torch.Tensor`. Parameters broadcast
  against each other, values are tensors of that broadcast shape, sampling uses
  ``rng.torch`` (:class:`torch.Generator`) and continuous reparameterizable kinds offer
  :meth:`Distribution.rsample` so gradients flow to the parameters.

A random choice made from a tensor distribution is *one* random choice whose value is the
whole tensor; its log-probability in a trace is :meth:`Distribution.log_prob_sum`, the sum
over all elements.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar

import torch

from ..errors import DistributionError
from ..rng import RNG

__all__ = ["Distribution", "Value", "as_param", "is_scalar_value", "same_param"]

Value = Any  # float | int | torch.Tensor; kept loose for user code
Param = float | torch.Tensor

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def is_scalar_value(x: object) -> bool:
    """Whether ``x`` is a plain Python/NumPy real number (not a tensor, not a bool array)."""
    return isinstance(x, numbers.Real)


def same_param(a: object, b: object) -> bool:
    """Whether two parameters are equal: numbers by value, tensors elementwise after
    broadcasting (``False`` if they do not broadcast)."""
    ta, tb = type(a), type(b)
    if (ta is float or ta is int) and (tb is float or tb is int):
        return a == b
    x = torch.as_tensor(a).detach().to(torch.float64)
    y = torch.as_tensor(b).detach().to(torch.float64)
    try:
        x, y = torch.broadcast_tensors(x, y)  # type: ignore[no-untyped-call]
    except RuntimeError:
        return False
    return bool(torch.equal(x, y))


def as_param(dist: str, name: str, value: object) -> Param:
    """Normalise one parameter: numbers become ``float``, array-likes become tensors.

    Raises:
        DistributionError: if the value is not a number or tensor, or is not finite
            (``nan``/``inf``); the message names ``dist`` and ``name``.
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        f = float(value)
        if not math.isfinite(f):
            raise DistributionError(f"{dist}: parameter '{name}' must be finite, got {f}")
        return f
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, torch.Tensor):
        t = value if value.is_floating_point() else value.to(torch.get_default_dtype())
    else:
        try:
            t = torch.as_tensor(value, dtype=torch.get_default_dtype())
        except (TypeError, ValueError, RuntimeError) as exc:
            raise DistributionError(
                f"{dist}: parameter '{name}' must be a number or tensor, got {type(value).__name__}"
            ) from exc
    if not bool(torch.isfinite(t.detach()).all()):
        raise DistributionError(f"{dist}: parameter '{name}' must be finite, got {t}")
    return t


class Distribution:
    """Base class: a probability distribution over one random choice.

    Subclasses set :attr:`name` (the PPX / address name, e.g. ``"Normal"``),
    :attr:`is_discrete`, :attr:`param_names` (in PPX field order) and implement
    ``sample``, ``log_prob``, ``mean``, ``variance`` and ``in_support``.
    """

    __slots__ = ()

    name: ClassVar[str] = "Distribution"
    is_discrete: ClassVar[bool] = False
    has_rsample: ClassVar[bool] = False
    param_names: ClassVar[tuple[str, ...]] = ()
    #: Whether the support is the same whatever the parameters (``Normal``, ``Poisson``...);
    #: kinds whose support moves with them (``Uniform``, ``Categorical``...) set ``False``
    #: and override :meth:`same_support`.
    fixed_support: ClassVar[bool] = True

    # -- parameters ------------------------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        """The parameters by name, in PPX field order."""
        return {n: getattr(self, n) for n in self.param_names}

    @property
    def is_scalar(self) -> bool:
        """True when every parameter is a Python number (the fast scalar path)."""
        return all(not isinstance(v, torch.Tensor) for v in self.params.values())

    @property
    def shape(self) -> torch.Size:
        """Shape of one value (``torch.Size([])`` for scalar distributions)."""
        shapes = [v.shape for v in self.params.values() if isinstance(v, torch.Tensor)]
        if not shapes:
            return torch.Size()
        out: torch.Size = torch.broadcast_shapes(*shapes)  # type: ignore[no-untyped-call]
        return out

    # -- the interface -------------------------------------------------------------------
    def sample(self, rng: RNG) -> Value:
        """Draw one value using ``rng`` (``rng.py`` for scalars, ``rng.torch`` for tensors)."""
        raise NotImplementedError

    def rsample(self, rng: RNG) -> torch.Tensor:
        """Draw a reparameterized tensor value through which gradients reach the parameters.

        Raises:
            NotImplementedError: for kinds without a reparameterization (discrete ones).
        """
        raise NotImplementedError(f"{self.name} has no reparameterized sampler")

    def log_prob(self, value: Value) -> Value:
        """Elementwise log-density (or log-mass); ``-inf`` outside the support."""
        raise NotImplementedError

    def log_prob_sum(self, value: Value) -> float | torch.Tensor:
        """Total log-probability of ``value``: a float, or a 0-d tensor on the tensor path."""
        lp = self.log_prob(value)
        if type(lp) is float:  # the scalar path: skip the (slow) tensor isinstance check
            return lp
        if isinstance(lp, torch.Tensor):
            return lp.sum()
        return float(lp)

    def in_support(self, value: Value) -> bool:
        """Whether every element of ``value`` lies in the support."""
        raise NotImplementedError

    def same_support(self, other: Distribution) -> bool:
        """Whether ``other``, a distribution of the same kind, has the same support.

        MCMC uses it to tell when a replayed choice's support changed with an earlier
        choice. It is symmetric; kinds with :attr:`fixed_support` always answer ``True``.
        """
        if type(other) is not type(self):
            return False
        if self.fixed_support:
            return True
        mine, theirs = self._support_params(), other._support_params()
        return len(mine) == len(theirs) and all(
            same_param(a, b) for a, b in zip(mine, theirs, strict=True)
        )

    def _support_params(self) -> tuple[Any, ...]:
        """What the support depends on, compared by :meth:`same_support` (``()`` if fixed)."""
        return ()

    def has_value_shape(self, value: Value) -> bool:
        """Whether ``value`` has the shape of one draw (a number or 0-d tensor when scalar).

        Log-densities broadcast, so a value of another shape would be scored without error:
        a value *reused* for a new draw, as replay and MCMC do, and an observed value
        (conditioning checks it) must have exactly the shape of one draw.
        """
        t = type(value)
        if t is float or t is int or t is bool:
            return self.is_scalar or len(self.shape) == 0  # is_scalar: fast in the hot kinds
        return tuple(getattr(value, "shape", ())) == tuple(self.shape)

    @property
    def mean(self) -> Value:
        """The mean (elementwise on the tensor path)."""
        raise NotImplementedError

    @property
    def variance(self) -> Value:
        """The variance (elementwise on the tensor path)."""
        raise NotImplementedError

    @property
    def stddev(self) -> Value:
        """The standard deviation (elementwise on the tensor path)."""
        v = self.variance
        return v.sqrt() if isinstance(v, torch.Tensor) else math.sqrt(v)

    def expand(self, shape: tuple[int, ...] | torch.Size) -> Distribution:
        """The same kind on the tensor path with every parameter broadcast to ``shape``.

        Each element of a value of the result is an independent draw; parameters that carry
        gradients keep them. Kinds whose parameters are not all elementwise (e.g.
        ``Categorical``, ``Mixture``) override this.

        Raises:
            RuntimeError: if a parameter does not broadcast to ``shape``.
        """
        size = torch.Size(shape)
        new = {n: _expand_param(v, size) for n, v in self.params.items()}
        return type(self)(**new)

    # -- niceties --------------------------------------------------------------------------
    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={_short(v)}" for k, v in self.params.items())
        return f"{self.name}({inner})"


def _expand_param(v: object, shape: torch.Size) -> torch.Tensor:
    t = v if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=torch.get_default_dtype())
    return t.expand(shape)


def _short(v: object) -> str:
    if isinstance(v, torch.Tensor):
        return f"tensor{tuple(v.shape)}" if v.numel() > 4 else repr(v.tolist())
    return repr(v)
