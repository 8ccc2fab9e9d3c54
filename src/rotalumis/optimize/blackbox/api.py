"""The entry point: :func:`optimize_blackbox`."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from rotalumis.core.progress import ProgressBar
from rotalumis.core.rng import RNG

from ._common import make_bounds
from .config import (
    BayesOptConfig,
    CMAESConfig,
    FiniteDifferenceConfig,
    LGSOConfig,
    MethodConfig,
    ScoreFunctionConfig,
    describe,
)
from .result import BlackBoxResult, History
from .runner import Objective, SimulatorRunner

__all__ = ["METHODS", "optimize_blackbox"]

logger = logging.getLogger(__name__)

METHODS: dict[str, type] = {
    "lgso": LGSOConfig,
    "fd": FiniteDifferenceConfig,
    "score": ScoreFunctionConfig,
    "cmaes": CMAESConfig,
    "bo": BayesOptConfig,
}
"""Method name -> its configuration class."""


def optimize_blackbox(
    simulator: Any,
    psi0: Sequence[float] | torch.Tensor | Mapping[str, float],
    objective: Objective,
    method: str = "lgso",
    *,
    budget: int,
    bounds: tuple[Any, Any] | None = None,
    config: MethodConfig | None = None,
    seed: int | None = None,
    workers: int = 0,
    cluster: Any = None,
    on_error: str = "raise",
    pass_as: str = "arguments",
    progress: bool | None = None,
) -> BlackBoxResult:
    """Minimize ``E[objective(y)]`` over ``psi`` for a simulator that cannot be differentiated.

    Methods: ``"lgso"`` (local generative surrogates, see :mod:`.lgso`), and the baselines
    ``"fd"`` (central finite differences + Adam), ``"score"`` (REINFORCE over a Gaussian
    search distribution + Adam), ``"cmaes"`` (CMA-ES, the ``cma`` package) and ``"bo"``
    (Bayesian optimization, BoTorch). ``lgso``, ``cmaes`` and ``bo`` need the optional
    extra ``rotalumis[optimize]``.

    Args:
        simulator: A rotalumis :class:`~rotalumis.core.Model` (local, an
            :class:`~rotalumis.intercept.InterceptedModel`, or a PPX
            :class:`~rotalumis.remote.RemoteModel` with ``pass_as="sites"``), or any
            callable, run under :mod:`rotalumis.intercept` so that its ``random`` and
            ``numpy.random`` draws are seeded. It maps ``psi`` to a stochastic output
            (a number, array or tensor of fixed shape).
        psi0: The starting point: a sequence or 1-D tensor (the simulator then receives
            ``psi`` as one 1-D tensor), or a mapping ``{name: value}`` (the simulator
            receives keyword arguments, or with ``pass_as="sites"`` its sample sites of
            those names take the values).
        objective: Maps a batch of outputs, a tensor of shape ``(n, *output_shape)``, to
            ``n`` values (``R(y)``, minimized in expectation). For ``"lgso"`` it must be
            written with torch operations: it is differentiated through the surrogate.
        method: ``"lgso"``, ``"fd"``, ``"score"``, ``"cmaes"`` or ``"bo"``.
        budget: Most simulator calls to make; every method stops before exceeding it.
        bounds: ``(low, high)``, scalars or one value per parameter; every call and the
            answer stay inside. Required by ``"bo"``.
        config: The method's settings (:class:`LGSOConfig`, ...); default settings if
            ``None``.
        seed: Seed of the run (``None`` picks one; it is in the result). Call ``k`` of the
            run is seeded by ``(seed, k)``: the same for any ``workers``.
        workers: Processes running simulator calls (0: in this process).
        cluster: Run the simulator calls on a Dask cluster instead (a ``Client``, a
            scheduler address, ``"local"`` / ``"local:N"``); the same result.
        on_error: ``"raise"``: a call that raises or gives a non-finite output or
            objective stops the run with :class:`SimulatorCallError` naming the call and
            its ``psi``; ``"skip"``: such calls count against the budget, are recorded in
            ``result.failed_calls`` and are left out of every estimate.
        pass_as: ``"arguments"`` or ``"sites"`` (see ``psi0``).
        progress: Show a progress bar (``None``: only on a terminal).

    Returns:
        A :class:`BlackBoxResult`: the answer, the history per step, ``plot()`` and
        ``save()`` (which the HTML report shows).

    Raises:
        ValueError: for a bad argument (named).
        OptimizationError: when a step cannot be taken (too small a budget, every call of
            a step failed, a non-finite gradient).
        SimulatorCallError: a failed call under ``on_error="raise"``.

    Example:
        >>> import torch
        >>> def noisy_square(psi):  # an unmodified simulator: y = (psi - 1)^2 + noise
        ...     import numpy as np
        ...     return float(((psi - 1.0) ** 2).sum()) + np.random.normal(0.0, 0.1)
        >>> res = optimize_blackbox(noisy_square, [3.0, -1.0], lambda y: y, method="fd",
        ...                         budget=800, config=FiniteDifferenceConfig(lr=0.2), seed=0)
        >>> bool((res.psi - 1.0).abs().max() < 0.2)
        True
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    cfg: Any = config if config is not None else METHODS[method]()
    if not isinstance(cfg, METHODS[method]):
        raise TypeError(
            f"method={method!r} takes a {METHODS[method].__name__}, got {type(cfg).__name__}"
        )
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive number of simulator calls, got {budget!r}")
    names, start = _start(psi0)
    box = make_bounds(bounds, start.numel())
    outside = ((start < box.low) | (start > box.high)).nonzero().flatten()
    if len(outside):
        i = int(outside[0])
        raise ValueError(
            f"psi0[{i}] = {start[i].item()} is outside the bounds "
            f"[{box.low[i].item()}, {box.high[i].item()}]"
        )
    run_seed = RNG(seed).seed
    history = History()
    with ProgressBar(budget, "optimize", progress) as bar:
        runner = SimulatorRunner(
            simulator,
            objective,
            names,
            budget,
            run_seed,
            workers,
            on_error,
            pass_as,
            progress=lambda calls: bar.update(calls, f"{method}: {calls} calls"),
            cluster=cluster,
        )
        try:
            final = _run_method(method, runner, start, box, cfg, history, run_seed)
        finally:
            runner.close()
    logger.info("optimize_blackbox(%s): %d calls, %d steps", method, runner.calls, len(history))
    return BlackBoxResult(
        psi=final.detach().clone(),
        method=method,
        history_psi=torch.stack(history.psi) if len(history) else torch.empty(0, start.numel()),
        history_objective=torch.tensor(history.objective),
        history_calls=torch.tensor(history.calls, dtype=torch.long),
        calls=runner.calls,
        failed_calls=runner.failed,
        budget=budget,
        seed=run_seed,
        names=names,
        config=describe(cfg),
    )


def _run_method(
    method: str,
    runner: SimulatorRunner,
    start: torch.Tensor,
    box: Any,
    cfg: Any,
    history: History,
    seed: int,
) -> torch.Tensor:
    _require_extra(method)
    if method == "fd":
        from .local_gradients import finite_differences

        return finite_differences(runner, start, box, cfg, history)
    if method == "score":
        from .local_gradients import score_function

        return score_function(runner, start, box, cfg, history, seed)
    if method == "lgso":
        from .lgso import lgso

        return lgso(runner, start, box, cfg, history, seed)
    if method == "cmaes":
        from .cmaes import cmaes

        return cmaes(runner, start, box, cfg, history, seed)
    from .bayesopt import bayesopt

    return bayesopt(runner, start, box, cfg, history, seed)


_EXTRA_MODULES = {"lgso": "zuko", "cmaes": "cma", "bo": "botorch"}


def _require_extra(method: str) -> None:
    """A clear error when the optional dependency of ``method`` is not installed."""
    module = _EXTRA_MODULES.get(method)
    if module is not None and importlib.util.find_spec(module) is None:
        raise ImportError(
            f"method={method!r} needs the package {module!r}: install the optional extra "
            "with pip install 'rotalumis[optimize]'"
        )


def _start(psi0: Any) -> tuple[tuple[str, ...] | None, torch.Tensor]:
    names: tuple[str, ...] | None = None
    if isinstance(psi0, Mapping):
        if not psi0:
            raise ValueError("psi0 must not be empty")
        for name in psi0:
            if not isinstance(name, str) or not name:
                raise ValueError(f"parameter names must be non-empty strings, got {name!r}")
        names = tuple(psi0)
        values: Any = [psi0[n] for n in names]
    else:
        values = psi0
    try:
        start = torch.as_tensor(
            values.detach() if isinstance(values, torch.Tensor) else values,
            dtype=torch.get_default_dtype(),
        ).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"psi0 must be numbers, got {psi0!r}") from exc
    if start.numel() == 0:
        raise ValueError("psi0 must not be empty")
    if not bool(torch.isfinite(start).all()):
        raise ValueError(f"psi0 must be finite, got {start.tolist()}")
    if isinstance(psi0, Mapping) and start.numel() != len(psi0):
        raise ValueError("with psi0 as a mapping, each parameter must be one number")
    return names, start.clone()
