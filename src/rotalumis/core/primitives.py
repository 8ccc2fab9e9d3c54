"""The primitives a model uses: :func:`sample`, :func:`observe`, :func:`tag`, :func:`factor`.

They only build a :class:`~rotalumis.core.runtime.Message` and send it through the handler
stack; what happens to it (drawn from the prior, proposed, replayed, conditioned on data,
recorded) is decided by the handlers the inference engine installed. Outside any handler a
``sample`` simply draws from its distribution.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import torch

from .address import frames_address, remember_address
from .distributions.base import Distribution
from .errors import ObservationError
from .runtime import (
    EMPTY_STACK,
    EXECUTION,
    STACK,
    Message,
    apply_stack,
    current_rng,
    send_sample,
)

__all__ = ["factor", "observe", "sample", "tag"]


def _check_dist(dist: object, primitive: str) -> Distribution:
    if not isinstance(dist, Distribution):
        raise TypeError(
            f"{primitive}() needs a rotalumis Distribution, got {type(dist).__name__}: {dist!r}"
        )
    return dist


def _site(depth: int, address: str | None, kind: str) -> tuple[str, str]:
    ex = EXECUTION.get()
    if address is None:
        address = frames_address(sys._getframe(depth + 1), None if ex is None else ex.entry_code)
    elif not isinstance(address, str) or not address:
        raise ValueError(f"address must be a non-empty string, got {address!r}")
    if ex is None:
        return address, address + "__" + kind + "__1"
    return address, ex.next_address(address, kind)


def sample(
    dist: Distribution,
    name: str | None = None,
    address: str | None = None,
    control: bool = True,
) -> Any:
    """Make a random choice: draw a value from ``dist`` (or let an engine choose it).

    Args:
        dist: The prior distribution of the choice.
        name: An optional name; named choices are reported as posterior latents.
        address: Replaces the call-stack part of the address (see :mod:`.address`).
        control: ``False`` keeps inference engines from proposing or replaying this choice;
            it is always drawn fresh from ``dist``.

    Returns:
        The value: a float/int for scalar distributions, a tensor otherwise.

    Example:
        >>> from rotalumis.core.distributions import Normal
        >>> x = sample(Normal(0.0, 1.0), name="x")
    """
    if not isinstance(dist, Distribution):
        _check_dist(dist, "sample")
    ex = EXECUTION.get()
    if address is None:
        if ex is None:
            if STACK.get() is EMPTY_STACK:
                return dist.sample(current_rng())  # plain call: no handler, no model run
            address = frames_address(sys._getframe(1), None)
        else:
            frame = sys._getframe(1)
            parent = frame.f_back
            hit = ex.sites.get((id(frame.f_code), frame.f_lasti))
            if (
                hit is not None
                and hit[0] is parent
                and hit[1] == parent.f_lasti
                and hit[2] is ex.entry_code
            ):
                address = hit[3]
            else:
                address = frames_address(frame, ex.entry_code)
                if (address, dist.name) in ex.counters:  # a site visited again: remember it
                    remember_address(ex.sites, frame, ex.entry_code, address)
    elif not isinstance(address, str) or not address:
        raise ValueError(f"address must be a non-empty string, got {address!r}")
    return send_sample(ex, dist, address, name, control)


def observe(
    dist: Distribution,
    value: Any = None,
    name: str | None = None,
    address: str | None = None,
) -> Any:
    """Declare that data are drawn from ``dist``.

    The observed value is, in order of precedence: the value an engine conditions on for
    ``name`` (``observe={name: value}``), else ``value``. With neither, the value is drawn
    from ``dist`` (simulating data, e.g. under the prior) and the site does not count as
    evidence.

    Args:
        dist: The likelihood of the data.
        value: The data, if the model itself knows them.
        name: The name by which engines condition on this observation.
        address: Replaces the call-stack part of the address.

    Returns:
        The observed (or simulated) value.

    Raises:
        ObservationError: if ``value`` is not finite.
    """
    if not isinstance(dist, Distribution):
        _check_dist(dist, "observe")
    if value is not None:
        _check_finite(value, name)
    base, full = _site(1, address, dist.name)
    msg = Message("observe", name, full, base, dist, value, True, value is not None)
    return apply_stack(msg).value


def tag(value: Any, name: str, address: str | None = None) -> Any:
    """Record ``value`` in the trace under ``name`` without making a random choice.

    Returns:
        ``value`` unchanged.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"tag() needs a non-empty string name, got {name!r}")
    base, full = _site(1, address, "Tag")
    msg = Message("tag", name, full, base, None, value, False)
    msg.log_prob = 0.0
    return apply_stack(msg).value


def factor(log_weight: Any, name: str | None = None, address: str | None = None) -> None:
    """Add ``log_weight`` to the log-likelihood of the current execution (soft evidence).

    Raises:
        ObservationError: if ``log_weight`` is NaN or +inf.
    """
    lw = log_weight
    bad = (
        bool(torch.isnan(lw).any() or (lw == math.inf).any())
        if isinstance(lw, torch.Tensor)
        else (lw != lw or lw == math.inf)
    )
    if bad:
        raise ObservationError(f"factor {name or ''}: log-weight must not be NaN or +inf, got {lw}")
    base, full = _site(1, address, "Factor")
    msg = Message("factor", name, full, base, None, None, False, True)
    msg.log_prob = lw.sum() if isinstance(lw, torch.Tensor) else float(lw)
    msg.value = msg.log_prob
    apply_stack(msg)


def _check_finite(value: Any, name: str | None) -> None:
    if isinstance(value, torch.Tensor):
        ok = bool(torch.isfinite(value).all()) if value.is_floating_point() else True
    elif isinstance(value, (int, float)):
        ok = math.isfinite(value)
    else:
        try:
            ok = bool(torch.isfinite(torch.as_tensor(value, dtype=torch.float64)).all())
        except (TypeError, ValueError, RuntimeError):
            raise ObservationError(
                f"observation {name!r}: value must be a number or tensor, got {value!r}"
            ) from None
    if not ok:
        raise ObservationError(f"observation {name!r}: value must be finite, got {value}")
