"""Normalizing-flow proposal heads: joint, correlated and multimodal proposals for one address.

A mixture head (:mod:`.heads`) proposes each element of a vector-valued site independently;
a flow head proposes the whole value jointly with a conditional neural spline flow (Durkan et
al. 2019) from `zuko <https://github.com/probabilists/zuko>`_, conditioned on the head input
(the LSTM state and the observation embedding). zuko is pure PyTorch, maintained, and its
flows are ordinary modules whose densities and inverses we can drive with our own random
streams; nflows is unmaintained (last release 2020).

The flow lives on an unconstrained, standardised copy ``u`` of the value, computed from the
prior's location, scale and support at each visit (as the mixture heads do), so one head
serves priors whose parameters change between executions and proposals never leave the
prior's support:

========  ==================================================================================
head      ``u`` (elementwise)
========  ==================================================================================
``real``  ``(x - loc) / scale``
``pos``   ``(log x - loc) / scale`` (``loc``, ``scale`` of ``log x``)
``bound`` ``logit((x - low) / (high - low))`` for a finite interval (or ``probit``, the
          standard normal quantile, with ``interval="probit"``); ``log((x - low) / scale)``
          or ``-log((high - x) / scale)`` for a half-line; ``(x - loc) / scale`` when unbounded
========  ==================================================================================

The map of a finite interval decides the proposal's density at its edges. Under ``logit``
a value near an edge is far out in ``u`` (``y = 0.01`` is ``u = -4.6``), where the flow's
Gaussian base (and splines that saw few values there) make ``q`` fall to zero, while a
posterior that reaches the edge of a uniform prior stays level there: importance weights
``p / q`` blow up near the edges. Under ``probit`` the uniform prior *is* the standard
normal base pushed through the identity flow, so a flow near the identity in its tails
keeps ``q`` level at the edges, as the posterior is (``y = 0.01`` is ``u = -2.3``).

``log q(x) = log q_flow(u) + log |du/dx|``. Training (:meth:`FlowHead.log_prob`) and
inference (:class:`FlowProposal`, a core distribution) evaluate the same function; values
are mapped in float64, the flow runs in the network's precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import torch
from torch import nn

from rotalumis.core import Distribution
from rotalumis.core.rng import RNG

from .heads import SiteSpec, context

__all__ = ["FlowHead", "FlowProposal"]

FLOW_KINDS = ("real", "bound", "pos")
#: Maps of a finite interval onto the real line (see the module docstring).
INTERVAL_MAPS = ("logit", "probit")
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_EDGE = 1e-12  # keeps mapped values strictly inside a finite interval


def _support_map(
    kind: str,
    distribution: str,
    x: torch.Tensor,
    params: torch.Tensor,
    m: int,
    interval: str = "logit",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u, log |du/dx| summed over elements)`` of values ``x`` ``(n, m)``, in float64."""
    x = x.double()
    loc, scale, low, high = (t.double() for t in context(distribution, params.double(), m))
    if kind == "pos":
        lx = torch.log(torch.clamp(x, min=1e-300))
        return (lx - loc) / scale, (-lx - torch.log(scale)).sum(-1)
    if kind == "real":
        return (x - loc) / scale, (-torch.log(scale)).sum(-1)
    lo_ok, hi_ok = torch.isfinite(low), torch.isfinite(high)
    width = torch.where(lo_ok & hi_ok, high - low, torch.ones_like(x))
    y = torch.clamp((x - torch.where(lo_ok, low, 0.0)) / width, _EDGE, 1 - _EDGE)
    below = torch.clamp(x - torch.where(lo_ok, low, 0.0), min=1e-300)
    above = torch.clamp(torch.where(hi_ok, high, 0.0) - x, min=1e-300)
    if interval == "probit":  # u = Phi^-1(y), du/dy = 1 / phi(u)
        inner = torch.special.ndtri(y)
        inner_jac = 0.5 * inner**2 + _HALF_LOG_2PI
    else:  # u = log y - log(1 - y), du/dy = 1 / (y (1 - y))
        inner = torch.log(y) - torch.log1p(-y)
        inner_jac = -torch.log(y) - torch.log1p(-y)
    u = torch.where(
        lo_ok & hi_ok,
        inner,
        torch.where(
            lo_ok,
            torch.log(below / scale),
            torch.where(hi_ok, -torch.log(above / scale), (x - loc) / scale),
        ),
    )
    jac = torch.where(
        lo_ok & hi_ok,
        inner_jac - torch.log(width),
        torch.where(
            lo_ok, -torch.log(below), torch.where(hi_ok, -torch.log(above), -torch.log(scale))
        ),
    )
    return u, jac.sum(-1)


def _inverse_map(
    kind: str,
    distribution: str,
    u: torch.Tensor,
    params: torch.Tensor,
    m: int,
    interval: str = "logit",
) -> torch.Tensor:
    """Values ``x`` ``(n, m)`` (float64) of unconstrained ``u``; inverse of :func:`_support_map`."""
    u = u.double()
    loc, scale, low, high = (t.double() for t in context(distribution, params.double(), m))
    if kind == "pos":
        return torch.exp(loc + scale * u)
    if kind == "real":
        return loc + scale * u
    lo_ok, hi_ok = torch.isfinite(low), torch.isfinite(high)
    y = torch.special.ndtr(u) if interval == "probit" else torch.sigmoid(u)
    y = torch.clamp(y, _EDGE, 1 - _EDGE)
    inside = torch.where(lo_ok, low, 0.0) + y * torch.where(lo_ok & hi_ok, high - low, 0.0)
    return torch.where(
        lo_ok & hi_ok,
        inside,
        torch.where(
            lo_ok,
            torch.where(lo_ok, low, 0.0) + scale * torch.exp(u),
            torch.where(
                hi_ok, torch.where(hi_ok, high, 0.0) - scale * torch.exp(-u), loc + scale * u
            ),
        ),
    )


class FlowHead(nn.Module):
    """A conditional neural spline flow over the (standardised, unconstrained) value.

    Same interface as :class:`~.heads.ProposalHead` (``features``, ``log_prob``,
    ``proposal``), for the continuous head kinds ``real``, ``bound`` and ``pos``.

    Args:
        spec: The address's :class:`~.heads.SiteSpec`.
        inputs: Size of the head input.
        transforms: Autoregressive spline transforms.
        bins: Spline bins per transform.
        hidden: Width of the two hidden layers of each transform's MADE.
        width: Size of the context the flow is conditioned on (a ReLU layer of the input).
        bound: The splines act on ``[-bound, bound]`` of ``u`` and are the identity outside,
            where no transform can move mass: a value there is out of the flow's reach.
            zuko's default, 5, is too narrow for a bounded site whose posterior touches
            an edge of the prior (its ``logit`` reaches 10-13: slcp, two_moons), so
            inference networks default to 10 (:class:`~.network.NetworkConfig`).
        interval: How a finite interval maps onto ``u``: ``"logit"`` or ``"probit"``
            (see the module docstring: ``probit`` keeps the density level at the edges).
    """

    def __init__(
        self,
        spec: SiteSpec,
        inputs: int,
        transforms: int = 5,
        bins: int = 10,
        hidden: int = 64,
        width: int = 64,
        bound: float = 5.0,
        interval: str = "logit",
    ) -> None:
        super().__init__()
        if not bound > 0:
            raise ValueError(f"FlowHead: bound must be positive, got {bound!r}")
        if interval not in INTERVAL_MAPS:
            raise ValueError(f"FlowHead: interval must be one of {INTERVAL_MAPS}, got {interval!r}")
        if spec.head not in FLOW_KINDS:
            raise ValueError(
                f"address {spec.address}: a flow head needs a continuous prior "
                f"({', '.join(FLOW_KINDS)} head kinds), not a {spec.distribution} ({spec.head})"
            )
        # a core dependency, imported here so that `import rotalumis.nn` stays light
        import zuko
        from zuko.transforms import MonotonicRQSTransform

        self.spec = spec
        self.kind = spec.head
        self.interval = interval
        self._block: _Block | None = None  # draws made in advance (FlowProposal.sample)
        #: Values drawn at once per head input (1 where the input changes at every visit,
        #: as in a surrogate, whose head input is the history of the execution).
        self.block = BLOCK
        self.context_net = nn.Sequential(nn.Linear(inputs, width), nn.ReLU())
        # zuko's NSF with the spline domain as an argument (NSF fixes it at 5): the same
        # modules and parameters, so state dicts of either load into the other
        self.flow = zuko.flows.MAF(
            features=spec.numel,
            context=width,
            transforms=transforms,
            univariate=partial(MonotonicRQSTransform, bound=bound, slope=1e-3),
            shapes=[(bins,), (bins,), (bins - 1,)],
            hidden_features=(hidden, hidden),
            # coupling layers (two passes; alternate halves): sampling inverts each transform
            # in two network passes instead of one per element, as sbi's NSF does
            passes=2,
        )

    @property
    def value_features(self) -> int:
        """Width of :meth:`features`."""
        return self.spec.numel

    def features(self, values: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """The standardised unconstrained values (clipped), input of the value embedding."""
        u, _ = self._map(values, params)
        return torch.clamp(u, -10.0, 10.0).to(values.dtype)

    def _map(self, values: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = self.spec
        return _support_map(self.kind, spec.distribution, values, params, spec.numel, self.interval)

    def _flow(self, h: torch.Tensor) -> Any:
        return self.flow(self.context_net(h))

    def log_prob(
        self, h: torch.Tensor, values: torch.Tensor, params: torch.Tensor, log_prior: torch.Tensor
    ) -> torch.Tensor:
        """``log q(values)``, shape ``(n,)``, differentiable in the network outputs.

        Args:
            h: Head inputs, ``(n, inputs)``.
            values: The values, ``(n, numel)``.
            params: Prior parameters, ``(n, num_params)``.
            log_prior: Unused (the interface of :class:`~.heads.ProposalHead`).
        """
        return self.flow_log_prob(self._flow(h), values, params)

    def flow_log_prob(self, flow: Any, values: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``log q(values)`` under ``flow``, the flow conditioned on a head input."""
        u, jac = self._map(values, params)
        lp: torch.Tensor = flow.log_prob(u.to(flow.base.mean.dtype))
        return lp + jac.to(lp.dtype)

    def draw(
        self, flow: Any, z: torch.Tensor, params: torch.Tensor, scalar: bool, dtype: torch.dtype
    ) -> tuple[list[Any], list[float]]:
        """Values (with their log-densities) from base draws ``z`` ``(n, numel)``.

        Args:
            flow: The flow conditioned on ``n`` head inputs, or on one (then shared).
            z: Standard normal draws.
            params: Prior parameters, ``(n, num_params)``.
            scalar: Hand out floats (a scalar prior) instead of tensors of the value shape.
            dtype: The tensors' dtype (the prior's).

        Returns:
            The values and ``log q`` of each (at the value as handed out).
        """
        n = len(z)
        with torch.no_grad():
            u = flow.transform.inv(z.to(params.device))
            x = _inverse_map(
                self.kind, self.spec.distribution, u, params, self.spec.numel, self.interval
            )
            if not scalar:  # the density at the values as handed out, in their dtype
                x = x.to(dtype).double()
            log_q = self.flow_log_prob(flow, x, params).double().cpu().tolist()
        x = x.cpu()
        if scalar:
            values: list[Any] = x[:, 0].tolist()
        else:
            values = list(x.to(dtype).reshape(n, *self.spec.value_shape).unbind(0))
        return values, log_q

    def proposal(self, h: torch.Tensor, params: torch.Tensor, prior: Distribution) -> FlowProposal:
        """The proposal (a core distribution) for one visit, head input ``h`` ``(1, inputs)``."""
        return FlowProposal(self, h, params, prior)


BLOCK = 64  # proposals drawn at once for visits with the same head input (see FlowProposal)


@dataclass
class _Block:
    """Draws made in advance for one head input, from one seeding of one random stream."""

    rng: RNG
    seed: int
    h: torch.Tensor
    params: torch.Tensor
    values: list[Any]
    log_probs: list[float]
    next: int = 0


class FlowProposal(Distribution):
    """The flow of a :class:`FlowHead` at one visit, as a core distribution.

    Draws use the engine's random stream (``rng.torch``); values have the prior's type (a
    float for a scalar prior, else a tensor of its shape and dtype). ``log_prob`` is
    :meth:`FlowHead.log_prob` of the value.

    Inverting a flow for one value costs two network passes per transform, however small
    the batch. Visits whose head input equals the previous visit's (the first address of
    every trace, whose input depends only on the observations) take their values from a
    block of ``head.block`` (default ``BLOCK``) draws made at once from the same stream; a
    block is dropped when the stream is reseeded (importance sampling reseeds it for each
    chunk of 64 traces, so results stay independent of the number of worker processes) or
    the input changes.
    """

    __slots__ = ("_dtype", "_flow", "_h", "_head", "_last", "_params", "_scalar", "_shape")
    name: ClassVar[str] = "Flow"

    def __init__(
        self, head: FlowHead, h: torch.Tensor, params: torch.Tensor, prior: Distribution
    ) -> None:
        self._head, self._h, self._params = head, h, params
        self._scalar = prior.is_scalar
        self._shape = torch.Size(head.spec.value_shape)
        dtypes = [v.dtype for v in prior.params.values() if isinstance(v, torch.Tensor)]
        self._dtype = dtypes[0] if dtypes else torch.get_default_dtype()
        with torch.no_grad():
            self._flow = head._flow(h)
        self._last: tuple[Any, float] | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {}

    @property
    def shape(self) -> torch.Size:
        return self._shape

    @property
    def is_scalar(self) -> bool:
        return self._scalar

    def sample(self, rng: RNG) -> Any:
        block = self._head._block
        if (
            block is None
            or block.next >= len(block.values)
            or block.rng is not rng
            or block.seed != rng.seed
            or not torch.equal(block.h, self._h)
            or not torch.equal(block.params, self._params)
        ):
            block = self._head._block = self._draw(rng)
        value, log_q = block.values[block.next], block.log_probs[block.next]
        block.next += 1
        self._last = (value, log_q)
        return value

    def _draw(self, rng: RNG) -> _Block:
        head = self._head
        n = head.block
        z = torch.randn(n, head.spec.numel, generator=rng.torch, dtype=self._h.dtype)
        params = self._params.expand(n, -1)
        values, log_q = head.draw(self._flow, z, params, self._scalar, self._dtype)
        return _Block(rng, rng.seed, self._h, self._params, values, log_q)

    def log_prob(self, value: Any) -> Any:
        last = self._last
        if last is not None and value is last[0]:  # the value just drawn: scored with it
            return last[1] if self._scalar else torch.tensor(last[1], dtype=torch.float64)
        x = torch.as_tensor(value, dtype=torch.float64).reshape(1, -1).to(self._h.device)
        with torch.no_grad():
            lp = self._head.flow_log_prob(self._flow, x, self._params)
        out = float(lp[0])
        return out if self._scalar else torch.tensor(out, dtype=torch.float64)

    def in_support(self, value: Any) -> bool:
        return math.isfinite(float(self.log_prob(value)))


PROPOSAL_FAMILIES = ("mixture", "flow")
_SHAPE_KEYS = ("vector", "scalar", "*")


def check_head_choice(heads: Any) -> None:
    """Validate ``NetworkConfig.heads`` (selector -> ``"mixture"`` or ``"flow"``).

    Raises:
        ValueError: naming the bad selector or family.
    """
    from .heads import HEAD_KINDS

    if not isinstance(heads, dict):
        raise ValueError(f"NetworkConfig.heads must be a dict, got {type(heads).__name__}")
    known = set(HEAD_KINDS) | set(FLOW_KINDS) | set(_SHAPE_KEYS)
    for key, family in heads.items():
        if key not in known:
            raise ValueError(
                f"NetworkConfig.heads: unknown selector {key!r}; use a head kind "
                f"({', '.join(FLOW_KINDS)}), a distribution name (e.g. 'Uniform'), "
                "'vector', 'scalar' or '*'"
            )
        if family not in PROPOSAL_FAMILIES:
            raise ValueError(
                f"NetworkConfig.heads[{key!r}] must be one of {PROPOSAL_FAMILIES}, got {family!r}"
            )


def selector_keys(distribution: str, kind: str, numel: int) -> tuple[str, ...]:
    """The selectors an address answers to, most specific first: its prior's distribution
    name, its head kind, ``"vector"`` or ``"scalar"`` (more than one element / one), ``"*"``
    (``NetworkConfig.heads`` and IC's ``defensive`` mappings)."""
    return (distribution, kind, "vector" if numel > 1 else "scalar", "*")


def choose_proposal(heads: dict[str, str], distribution: str, kind: str, numel: int) -> str:
    """The proposal family of an address: ``"flow"`` or ``"mixture"``.

    The most specific selector of ``heads`` wins: the distribution name (``"Uniform"``),
    then the head kind (``"bound"``), then ``"vector"`` / ``"scalar"`` (values of more than
    one element / of one), then ``"*"``. Only continuous head kinds can have a flow.
    """
    if kind not in FLOW_KINDS:
        return "mixture"
    for key in selector_keys(distribution, kind, numel):
        if key in heads:
            return heads[key]
    return "mixture"
