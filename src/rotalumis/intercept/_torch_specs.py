"""How torch's random functions map to rotalumis distributions.

Each spec takes the arguments of the torch function it describes (a ``Tensor`` method's
spec gets the tensor first) and returns ``(distribution, convert, shape)``: the site's prior,
the function that turns the value chosen by the engine into what torch would have returned
(a tensor of torch's dtype, device and shape; the tensor itself, filled, for in-place
methods), and the shape that goes into the site's label. A draw of one element is a scalar
site (the fast path); a larger one is one vector-valued site. ``None`` means "no mapping for
these arguments": the caller runs torch's own implementation on a substitute generator
seeded by a recorded seed. Invalid parameters make the distribution's constructor raise,
which also ends in that fallback (where torch raises its usual error, or copes).

Values chosen by the engine are constants: an intercepted draw has no gradient with respect
to its parameters, except ``torch.normal``, whose result keeps the reparameterisation
gradient (``mean + std * eps``) when a parameter requires one. ``torch.distributions`` draws
its reparameterised samples from parameter-free noise (``Tensor.normal_``, ``torch.rand``)
and so keeps its gradients.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import torch

from rotalumis.core import (
    Bernoulli,
    Categorical,
    Distribution,
    Exponential,
    Gamma,
    LogNormal,
    Normal,
    Poisson,
    Uniform,
)

from ._numpy_specs import TABLE_LIMIT
from ._random_patch import CATEGORICAL_LIMIT, uniform_int
from ._torch_sites import (
    STRIDED,
    Maker,
    Site,
    filled,
    float_dtype,
    make_site,
    out_tensor,
    shape_of,
)

__all__ = ["FUNCTION_SPECS", "METHOD_SPECS", "Site"]

Spec = Callable[..., Site | None]

_F64 = torch.float64


# -- factories: torch.rand, torch.randn, torch.randint and their *_like ------------------------
def _standard(make: Maker) -> Spec:
    """The spec of ``torch.rand``/``torch.randn``: ``make(0, 1)`` of the given size."""

    def spec(
        *size: Any,
        generator: Any = None,
        out: Any = None,
        dtype: Any = None,
        layout: Any = None,
        device: Any = None,
        requires_grad: bool = False,
        pin_memory: bool = False,
        **extra: Any,
    ) -> Site | None:
        if "size" in extra and not size:
            size = (extra.pop("size"),)
        if extra or out is not None or pin_memory or layout not in STRIDED:
            return None
        shape, dt = shape_of(size), float_dtype(dtype)
        if shape is None or dt is None:
            return None
        return make_site(make, (0.0, 1.0), shape, dt, device, requires_grad)

    return spec


def _like(make: Maker) -> Spec:
    """The spec of ``torch.rand_like``/``torch.randn_like``."""

    def spec(
        input: Any, *, generator: Any = None, dtype: Any = None, device: Any = None, **kw: Any
    ) -> Site | None:
        if not isinstance(input, torch.Tensor) or input.layout is not torch.strided:
            return None
        if kw.get("layout") not in STRIDED:
            return None
        dt = float_dtype(input.dtype if dtype is None else dtype)
        if dt is None:
            return None
        dev = input.device if device is None else device
        grad = bool(kw.get("requires_grad"))
        return make_site(make, (0.0, 1.0), tuple(input.shape), dt, dev, grad)

    return spec


rand, randn = _standard(Uniform), _standard(Normal)
rand_like, randn_like = _like(Uniform), _like(Normal)


def _integers(
    low: Any, high: Any, shape: tuple[int, ...] | None, dtype: Any, device: Any, grad: bool
) -> Site | None:
    if shape is None:
        return None
    lo, hi = operator.index(low), operator.index(high)
    n, numel = hi - lo, math.prod(shape)
    if not 1 <= n <= CATEGORICAL_LIMIT or numel == 0 or numel * n > TABLE_LIMIT:
        return None
    if numel == 1:
        dist: Distribution = uniform_int(n)
    else:
        dist = Categorical(torch.full((n,), 1.0 / n, dtype=_F64).expand(*shape, n))

    def convert(index: Any) -> torch.Tensor:
        out = out_tensor(index, shape, torch.int64, device) + lo
        out = out.to(dtype) if dtype is not None else out
        return out.requires_grad_() if grad else out

    return dist, convert, shape


def randint(
    *args: Any,
    size: Any = None,
    low: Any = None,
    high: Any = None,
    generator: Any = None,
    out: Any = None,
    dtype: Any = None,
    layout: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    pin_memory: bool = False,
) -> Site | None:
    rest = list(args)
    if size is None and rest:
        size = rest.pop()
    bounds = [*rest, *([] if low is None else [low]), *([] if high is None else [high])]
    if len(bounds) == 1 and low is None:
        bounds = [0, *bounds]
    if len(bounds) != 2 or size is None or out is not None or pin_memory:
        return None
    if layout not in STRIDED:
        return None
    return _integers(bounds[0], bounds[1], shape_of((size,)), dtype, device, requires_grad)


def randint_like(
    input: Any, *args: Any, generator: Any = None, dtype: Any = None, device: Any = None, **kw: Any
) -> Any:
    if not isinstance(input, torch.Tensor) or kw.get("layout") not in STRIDED:
        return None
    bounds = list(args) + [kw[k] for k in ("low", "high") if k in kw]
    if len(bounds) == 1:
        bounds = [0, *bounds]
    if len(bounds) != 2:
        return None
    dt = input.dtype if dtype is None else dtype
    dev = input.device if device is None else device
    grad = bool(kw.get("requires_grad"))
    return _integers(bounds[0], bounds[1], tuple(input.shape), dt, dev, grad)


# -- torch.normal, torch.bernoulli, torch.poisson, torch.multinomial, torch._standard_gamma ----
def _broadcast(*xs: Any) -> tuple[tuple[int, ...], torch.Tensor]:
    """The broadcast shape of the tensor arguments and the first tensor (dtype, device)."""
    tensors = [x for x in xs if isinstance(x, torch.Tensor)]
    shapes = {t.shape for t in tensors}
    if len(shapes) == 1:  # the common case; torch.broadcast_shapes is slow
        return tuple(tensors[0].shape), tensors[0]
    shape = torch.broadcast_shapes(*shapes)  # type: ignore[no-untyped-call]
    return tuple(shape), tensors[0]


def normal(
    *args: Any,
    mean: Any = None,
    std: Any = None,
    size: Any = None,
    generator: Any = None,
    out: Any = None,
    dtype: Any = None,
    layout: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    pin_memory: bool = False,
) -> Site | None:
    rest = list(args)
    if mean is None and rest:
        mean = rest.pop(0)
    if std is None:
        std = rest.pop(0) if rest else 1.0
    if size is None and rest:
        size = rest.pop(0)
    if rest or mean is None or out is not None or pin_memory or layout not in STRIDED:
        return None
    if not isinstance(mean, torch.Tensor) and not isinstance(std, torch.Tensor):
        shape, dt = shape_of((size,)) if size is not None else None, float_dtype(dtype)
        if shape is None or dt is None:
            return None
        return make_site(Normal, (mean, std), shape, dt, device, requires_grad)
    if size is not None:
        return None
    shape, first = _broadcast(mean, std)
    site = make_site(Normal, (mean, std), shape, first.dtype, first.device)
    if site is None or not torch.is_grad_enabled():
        return site
    if not any(isinstance(p, torch.Tensor) and p.requires_grad for p in (mean, std)):
        return site
    dist, convert, _ = site

    def reparameterised(value: Any) -> torch.Tensor:
        # mean + std * eps with eps a constant: torch.normal's own gradients; the value
        # equals the engine's up to rounding.
        x = convert(value)
        m = mean.detach() if isinstance(mean, torch.Tensor) else mean
        s = std.detach() if isinstance(std, torch.Tensor) else std
        result: torch.Tensor = mean + std * ((x - m) / s)
        return result

    return dist, reparameterised, shape


def bernoulli(input: Any, p: Any = None, *, generator: Any = None, out: Any = None) -> Site | None:
    if not isinstance(input, torch.Tensor) or out is not None:
        return None
    shape = tuple(input.shape)
    probs = input if p is None else p
    if isinstance(probs, torch.Tensor) and probs.shape != input.shape:
        return None
    if not input.dtype.is_floating_point and p is None:
        return None
    return make_site(Bernoulli, (probs,), shape, input.dtype, input.device)


def poisson(input: Any, generator: Any = None) -> Site | None:
    if not isinstance(input, torch.Tensor) or not input.dtype.is_floating_point:
        return None
    return make_site(Poisson, (input,), tuple(input.shape), input.dtype, input.device)


def standard_gamma(alpha: Any, generator: Any = None) -> Site | None:
    if not isinstance(alpha, torch.Tensor) or not alpha.dtype.is_floating_point:
        return None
    return make_site(Gamma, (alpha, 1.0), tuple(alpha.shape), alpha.dtype, alpha.device)


def multinomial(
    input: Any,
    num_samples: Any,
    replacement: bool = False,
    *,
    generator: Any = None,
    out: Any = None,
) -> Site | None:
    """Draws with replacement (or a single draw) are independent categorical choices."""
    if not isinstance(input, torch.Tensor) or out is not None or input.ndim not in (1, 2):
        return None
    k = operator.index(num_samples)
    if k < 1 or (k > 1 and not replacement) or not input.dtype.is_floating_point:
        return None
    weights = input.detach().to("cpu", _F64)
    if not bool((weights >= 0).all()) or not bool((weights.sum(-1) > 0).all()):
        return None
    n = weights.shape[-1]
    shape = (k,) if input.ndim == 1 else (weights.shape[0], k)
    if math.prod(shape) * n > TABLE_LIMIT:
        return None
    probs = weights / weights.sum(-1, keepdim=True)
    if shape == (1,):
        dist = Categorical(probs.tolist())
    else:
        dist = Categorical(probs.unsqueeze(-2).expand(*shape, n))
    device = input.device
    return dist, lambda idx: out_tensor(idx, shape, torch.int64, device), shape


# -- Tensor methods that fill the tensor in place ---------------------------------------------
def normal_(self: Any, mean: Any = 0.0, std: Any = 1.0, *, generator: Any = None) -> Any:
    return filled(Normal, (mean, std), self) if self.dtype.is_floating_point else None


def uniform_(self: Any, *args: Any, generator: Any = None, **bounds: Any) -> Any:
    low = args[0] if args else bounds.pop("from", 0.0)
    high = args[1] if len(args) > 1 else bounds.pop("to", 1.0)
    if bounds or len(args) > 2 or not self.dtype.is_floating_point:
        return None
    return filled(Uniform, (low, high), self)


def exponential_(self: Any, lambd: Any = 1.0, *, generator: Any = None) -> Any:
    return filled(Exponential, (lambd,), self) if self.dtype.is_floating_point else None


def log_normal_(self: Any, mean: Any = 1.0, std: Any = 2.0, *, generator: Any = None) -> Any:
    return filled(LogNormal, (mean, std), self) if self.dtype.is_floating_point else None


def bernoulli_(self: Any, p: Any = 0.5, *, generator: Any = None) -> Any:
    if isinstance(p, torch.Tensor) and p.shape != self.shape:
        return None
    return filled(Bernoulli, (p,), self)


def bernoulli_method(self: Any, *args: Any, generator: Any = None) -> Any:
    return bernoulli(self, *args)


def multinomial_method(self: Any, num_samples: Any, replacement: bool = False, **kw: Any) -> Any:
    return multinomial(self, num_samples, replacement, **kw)


FUNCTION_SPECS: dict[str, Spec | None] = {
    "rand": rand,
    "randn": randn,
    "rand_like": rand_like,
    "randn_like": randn_like,
    "randint": randint,
    "randint_like": randint_like,
    "normal": normal,
    "bernoulli": bernoulli,
    "poisson": poisson,
    "multinomial": multinomial,
    "_standard_gamma": standard_gamma,
    # no mapping: run on a substitute generator seeded by one recorded seed
    "randperm": None,
    "binomial": None,
    "_sample_dirichlet": None,
}
"""The module functions of :mod:`torch` that are intercepted."""

METHOD_SPECS: dict[str, Spec | None] = {
    "normal_": normal_,
    "uniform_": uniform_,
    "exponential_": exponential_,
    "log_normal_": log_normal_,
    "bernoulli_": bernoulli_,
    "bernoulli": bernoulli_method,
    "multinomial": multinomial_method,
    "random_": None,
    "cauchy_": None,
    "geometric_": None,
}
"""The :class:`torch.Tensor` methods that are intercepted."""
