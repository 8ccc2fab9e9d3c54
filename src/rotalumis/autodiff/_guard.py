"""Runtime guards around every public operation: clear errors instead of torch's.

Each public function of :mod:`rotalumis.autodiff` runs inside :func:`guarded`, which

* translates the known cryptic ``RuntimeError``\\ s of ``torch.func`` into
  :class:`~rotalumis.autodiff.errors.DifferentiationTrapError` (see ``errors.py``);
* while trap checks are on (the default, see :func:`trap_checks`), installs a
  :class:`torch.overrides.TorchFunctionMode` that raises as soon as ``f`` converts a
  differentiated tensor to a Python number (under ``grad``/``jvp`` torch accepts that silently
  and returns a derivative that misses the dependency: the costly trap) or modifies its input
  in place (under ``jvp``/``vmap`` torch accepts that and the caller's ``x`` and ``v`` change).

``checked_function`` also compares the input's version counter before and after ``f`` as a
fallback for in-place changes the mode cannot see (e.g. through a view, or with checks off).

State lives in :class:`contextvars.ContextVar`\\ s, never in module globals, so nested and
concurrent calls are independent.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor
from torch.overrides import TorchFunctionMode

from rotalumis.autodiff.errors import (
    CONVERSION_HELP,
    INPLACE_HELP,
    AutodiffArgumentError,
    AutodiffError,
    DifferentiationTrapError,
    translate_runtime_error,
)

__all__ = ["checked_function", "guarded", "trap_checks"]

P = ParamSpec("P")
R = TypeVar("R")

_CHECKS_ENABLED: ContextVar[bool] = ContextVar("rotalumis_autodiff_checks", default=True)
_GUARD_INSTALLED: ContextVar[bool] = ContextVar("rotalumis_autodiff_guard", default=False)
_CURRENT_OP: ContextVar[str] = ContextVar("rotalumis_autodiff_op", default="?")
_INPUTS: ContextVar[tuple[Tensor, ...]] = ContextVar("rotalumis_autodiff_inputs", default=())
_AUGMENTED_OPS = ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "and", "or")
_AUGMENTED_ASSIGNMENTS = frozenset(f"__i{op}__" for op in _AUGMENTED_OPS) | {"__setitem__"}

_CONVERSIONS: dict[Any, str] = {
    Tensor.item: ".item()",
    Tensor.tolist: ".tolist()",
    Tensor.numpy: ".numpy()",
    Tensor.__float__: "float(tensor)",
    Tensor.__int__: "int(tensor)",
    Tensor.__complex__: "complex(tensor)",
}


def _is_differentiated(t: Tensor) -> bool:
    """Whether ``t`` carries a derivative at the innermost transform level."""
    if not torch._C._functorch.is_functorch_wrapped_tensor(t):
        return False  # a tensor captured from outside every transform: a constant
    unpack: Any = fwAD.unpack_dual
    return bool(t.requires_grad) or unpack(t).tangent is not None


def _in_place_description(func: Any) -> str | None:
    """How ``func`` modifies its first argument (``x.add_``, ``x[i] = ``...), or ``None``."""
    try:
        return _describe_in_place(func)
    except TypeError:  # an unhashable callable: not one of torch's in-place methods
        return None


@functools.cache
def _describe_in_place(func: Any) -> str | None:
    name = getattr(func, "__name__", "")
    if name == "__setitem__":
        return "item assignment x[...] = ..."
    if name in _AUGMENTED_ASSIGNMENTS:
        return f"augmented assignment ({name})"
    if name.endswith("_") and not name.startswith("_"):
        return f"x.{name}(...)"
    return None


def _is_input(t: Tensor) -> bool:
    return any(t is x or t._base is x for x in _INPUTS.get())


class _TrapGuard(TorchFunctionMode):
    """Raises when ``f`` turns a differentiated tensor into a number or mutates its input."""

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if args and isinstance(args[0], Tensor):
            how = _CONVERSIONS.get(func)
            if how is not None and _is_differentiated(args[0]):
                raise DifferentiationTrapError(
                    f"rotalumis.autodiff.{_CURRENT_OP.get()}: " + CONVERSION_HELP.format(how=how)
                )
            change = _in_place_description(func)
            if change is not None and _is_input(args[0]):
                how = f"{change} on its input x"
                raise DifferentiationTrapError(
                    f"rotalumis.autodiff.{_CURRENT_OP.get()}: " + INPLACE_HELP.format(how=how)
                )
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def trap_checks(enabled: bool = True) -> Iterator[None]:
    """Turn the trap checks on ``f``'s operations on or off inside a block.

    On by default, the checks raise :class:`DifferentiationTrapError` before ``f`` converts a
    differentiated tensor to a Python number (``.item()``, ``float()``, ``.tolist()``,
    ``.numpy()``: otherwise ``grad``/``jvp`` silently drop that dependency) or modifies its input
    in place (otherwise forward mode and ``vmap`` change the caller's tensors). They cost about
    a microsecond of Python per torch operation executed by ``f`` (see
    ``benchmarks/bench_autodiff.py``); turn them off for small, hot functions you know are
    clean. Translation of torch's own errors and the after-the-fact in-place check stay on.

    Args:
        enabled: whether operations started inside the block check ``f``.

    Example:
        >>> import torch
        >>> from rotalumis.autodiff import grad, trap_checks
        >>> with trap_checks(False):
        ...     g = grad(lambda x: (x**2).sum(), torch.ones(3))
        >>> g
        tensor([2., 2., 2.])
    """
    token = _CHECKS_ENABLED.set(enabled)
    try:
        yield
    finally:
        _CHECKS_ENABLED.reset(token)


@functools.cache
def _load_forward_mode_rules() -> None:
    """Load torch's forward-mode decompositions once, without its deprecation warning.

    torch loads them lazily on the first ``jvp`` and, in torch 2.13, that emits a
    ``DeprecationWarning`` about its own use of ``torch.jit.script``: nothing the user can act
    on, and an error under ``-W error``. Loading them here under a narrow filter avoids it.
    """
    load = getattr(fwAD, "_maybe_load_decompositions", None)
    if load is None:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*torch.jit.script.* is deprecated", category=DeprecationWarning
        )
        load()


@contextlib.contextmanager
def _guard_scope(op: str) -> Iterator[None]:
    _load_forward_mode_rules()
    op_token = _CURRENT_OP.set(op)
    try:
        if _CHECKS_ENABLED.get() and not _GUARD_INSTALLED.get():
            installed = _GUARD_INSTALLED.set(True)
            try:
                with _TrapGuard():
                    yield
            finally:
                _GUARD_INSTALLED.reset(installed)
        else:
            yield
    except AutodiffError:
        raise  # already clear (maybe from a nested operation): keep its attribution
    except RuntimeError as err:
        clear = translate_runtime_error(err, op)
        if clear is None:
            raise
        raise clear from err
    finally:
        _CURRENT_OP.reset(op_token)


def guarded(op: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a public operation named ``op`` to run inside the guards."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with _guard_scope(op):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


def checked_function(f: Callable[[Tensor], Any], op: str) -> Callable[[Tensor], Tensor]:
    """Wrap the user's ``f``: it must return a tensor and must not mutate its input.

    The in-place check compares the input's version counter before and after the call; it
    catches in-place ops on ``x`` and on views of it under forward mode and ``vmap``, where
    torch itself would not complain.
    """
    if not callable(f):
        raise AutodiffArgumentError(
            f"rotalumis.autodiff.{op}: f must be callable, got {type(f).__name__}"
        )

    def call(x: Tensor) -> Tensor:
        version = x._version
        token = _INPUTS.set((*_INPUTS.get(), x))
        try:
            out = f(x)
        finally:
            _INPUTS.reset(token)
        if x._version != version:
            raise DifferentiationTrapError(
                f"rotalumis.autodiff.{op}: "
                + INPLACE_HELP.format(
                    how="its input x, perhaps through a view; x and the direction v may have "
                    "been modified already"
                )
            )
        if not isinstance(out, Tensor):
            raise AutodiffArgumentError(
                f"rotalumis.autodiff.{op}: f must return a torch.Tensor, got "
                f"{type(out).__name__} (build the result with torch operations, not math/numpy)"
            )
        return out

    return call
