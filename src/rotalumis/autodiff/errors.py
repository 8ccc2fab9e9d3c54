"""Errors of :mod:`rotalumis.autodiff` and the translation of torch's cryptic ones.

=================================  ======================================================
exception                          raised when
=================================  ======================================================
``AutodiffError``                  base of both below (a :class:`RotalumisError`)
``AutodiffArgumentError``          an argument has the wrong type, dtype or shape, or ``f``
                                   returns the wrong shape (also a ``ValueError``)
``DifferentiationTrapError``       ``f`` does something the transforms cannot differentiate
                                   (also a ``RuntimeError``): converting a differentiated
                                   tensor to a Python number, mutating its input in place,
                                   drawing random numbers under a vectorized transform, or
                                   branching on a batched value
=================================  ======================================================
"""

from __future__ import annotations

from rotalumis.core.errors import RotalumisError

__all__ = [
    "AutodiffArgumentError",
    "AutodiffError",
    "DifferentiationTrapError",
    "translate_runtime_error",
]


class AutodiffError(RotalumisError):
    """Base class of the errors raised by :mod:`rotalumis.autodiff`."""


class AutodiffArgumentError(AutodiffError, ValueError):
    """An argument (or the output of ``f``) has the wrong type, dtype or shape; names it."""


class DifferentiationTrapError(AutodiffError, RuntimeError):
    """``f`` uses an operation that the differentiation transforms cannot follow.

    The message explains the trap and how to rewrite ``f``; the original torch error, when
    there is one, is chained as ``__cause__``.
    """


CONVERSION_HELP = (
    "f converts a tensor that depends on x to a Python number ({how}). The derivative cannot "
    "flow through a Python number, so the result would silently miss that dependency (or torch "
    "fails). Keep the computation in tensors (e.g. torch.where(c, a, b) instead of "
    "`a if float(c) else b`, torch.clamp instead of min(float(...))). If the value really must "
    "be treated as a constant, detach it first: x.detach().item()."
)
INPLACE_HELP = (
    "f modifies a tensor in place ({how}). The transforms need the input (and tensors captured "
    "from outside f) unchanged. Use out-of-place operations "
    "(y = x * 2 instead of x.mul_(2), y = x.clone(); y[0] = 0 instead of x[0] = 0)."
)
RANDOM_HELP = (
    "f draws random numbers while being vectorized with vmap (which {op} uses internally to "
    "push many directions through f at once, or which you applied around it). Draw the random "
    "numbers outside f and close over them, e.g. eps = torch.randn(n); "
    "f = lambda x: simulator(x, eps): this differentiates one fixed realization (common random "
    "numbers), which is what a pathwise derivative means. For your own batching use "
    "torch.func.vmap(..., randomness='different')."
)
CONTROL_FLOW_HELP = (
    "f branches in Python (if/while/and/or) on a tensor that is batched by vmap. Select "
    "elementwise with torch.where(condition, a, b) instead of an if statement."
)

# Substrings of torch's RuntimeError messages (torch 2.x) mapped to our explanation.
_PATTERNS: tuple[tuple[str, str, str], ...] = (
    ("calling .item() on a Tensor", CONVERSION_HELP, ".item(), float() or int() under vmap"),
    (
        "Cannot access data pointer of Tensor that doesn't have storage",
        CONVERSION_HELP,
        ".numpy(), .tolist() or similar on a transformed tensor",
    ),
    ("Can't call numpy() on Tensor that requires grad", CONVERSION_HELP, ".numpy()"),
    (
        "leaf Variable that requires grad is being used in an in-place operation",
        INPLACE_HELP,
        "the input x",
    ),
    ("would mutate a captured Tensor", INPLACE_HELP, "a tensor captured from outside f"),
    ("vmap: inplace arithmetic", INPLACE_HELP, "an in-place op under vmap"),
    ("random operation while in randomness error mode", RANDOM_HELP, ""),
    ("data-dependent control flow", CONTROL_FLOW_HELP, ""),
)


def translate_runtime_error(err: RuntimeError, op: str) -> DifferentiationTrapError | None:
    """Map a known torch ``RuntimeError`` raised inside ``op`` to a clear error.

    Args:
        err: the error torch raised while transforming the user's function.
        op: the public name of the rotalumis operation (used in the message).

    Returns:
        The :class:`DifferentiationTrapError` to raise instead (chain it with ``from err``), or
        ``None`` when the error is not one of the known traps and must propagate unchanged.
    """
    text = str(err)
    for needle, template, how in _PATTERNS:
        if needle in text:
            detail = template.format(how=how, op=op)
            return DifferentiationTrapError(f"rotalumis.autodiff.{op}: {detail}")
    return None
