"""Composition of simulators into one differentiable model: :func:`pipeline`."""

from __future__ import annotations

import inspect
from typing import Any

from rotalumis.core.errors import ModelError
from rotalumis.core.model import FunctionModel, Model

__all__ = ["Pipeline", "pipeline"]


class Pipeline(Model):
    """Simulators run in sequence as one model: each stage's result feeds the next.

    The first stage receives the pipeline's positional arguments; every later stage receives
    the previous stage's result as its first argument. Keyword arguments (typically the
    design parameters) go to every stage whose ``forward`` accepts them by name, so one
    parameter can steer several stages. All stages share the execution: their random
    choices land in one trace with distinct addresses, and gradients flow from the last
    stage's result back through every stage by the chain rule.

    Args:
        *stages: Two or more :class:`~rotalumis.core.model.Model` objects, in order.
        name: The pipeline's name (default: the stage names joined by ``" -> "``).

    Raises:
        TypeError: if fewer than two stages are given or a stage is not a Model.

    Example:
        >>> import torch
        >>> from rotalumis.core import Normal, model, sample
        >>> @model
        ... def source(energy):
        ...     return sample(Normal(energy, 0.1))
        >>> @model
        ... def detector(e, gain):
        ...     return sample(Normal(gain * e, 0.01))
        >>> chain = pipeline(source, detector)
        >>> chain.name
        'source -> detector'
    """

    def __init__(self, *stages: Model, name: str | None = None) -> None:
        if len(stages) < 2:
            raise TypeError(f"a pipeline needs at least two stages, got {len(stages)}")
        for i, stage in enumerate(stages):
            if not isinstance(stage, Model):
                raise TypeError(
                    f"pipeline stage {i} must be a rotalumis Model, got {type(stage).__name__}; "
                    "wrap a function with rotalumis.model"
                )
        super().__init__(name or " -> ".join(s.name for s in stages))
        self.stages: tuple[Model, ...] = tuple(stages)
        self._accepts = tuple(_keyword_names(s, skip_first=i > 0) for i, s in enumerate(stages))

    def forward(self, *args: Any, **params: Any) -> Any:
        """Run the stages in order; returns the last stage's result."""
        unused = [k for k in params if not any(a is None or k in a for a in self._accepts)]
        if unused:
            raise ModelError(
                f"pipeline {self.name!r}: no stage takes the keyword argument(s) "
                f"{', '.join(map(repr, unused))}; stages take: {self._describe()}"
            )
        x: Any = None
        for i, (stage, accepts) in enumerate(zip(self.stages, self._accepts, strict=True)):
            kw = params if accepts is None else {k: v for k, v in params.items() if k in accepts}
            x = stage.forward(*args, **kw) if i == 0 else stage.forward(x, **kw)
        return x

    def _describe(self) -> str:
        return "; ".join(
            f"{s.name}: {'any' if a is None else ', '.join(sorted(a)) or 'none'}"
            for s, a in zip(self.stages, self._accepts, strict=True)
        )

    def __repr__(self) -> str:
        return f"Pipeline({', '.join(repr(s) for s in self.stages)})"


def pipeline(first: Model, second: Model, *more: Model, name: str | None = None) -> Pipeline:
    """Compose simulators so the result of each feeds the next (see :class:`Pipeline`).

    Args:
        first: The first simulator (e.g. a generator).
        second: The next simulator (e.g. a detector), called with ``first``'s result.
        *more: Further stages.
        name: Name of the composed model.

    Returns:
        A :class:`Pipeline`, itself a Model: optimize it, trace it, or run inference on it.
    """
    return Pipeline(first, second, *more, name=name)


def _keyword_names(stage: Model, skip_first: bool) -> frozenset[str] | None:
    """Names ``stage.forward`` accepts by keyword; ``None`` when it takes ``**kwargs``.

    ``skip_first`` leaves out the first positional parameter (it receives the previous
    stage's result).
    """
    fn = stage.fn if isinstance(stage, FunctionModel) else stage.forward
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    names = set()
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            return None
        if skip_first and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL):
            skip_first = False
            continue
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.add(p.name)
    return frozenset(names)
