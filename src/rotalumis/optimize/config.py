"""The frozen, self-validating configuration of an optimization run."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import torch

from ._checks import choice, in_range, positive_int

__all__ = ["BASELINES", "GRADIENT_MODES", "OptimizeConfig"]

BASELINES = ("leave_one_out", "moving_average", "none")
GRADIENT_MODES = ("auto", "score")

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}


@dataclass(frozen=True)
class OptimizeConfig:
    """How to optimize: budget, gradient estimator and optimizer. Validated on creation.

    Args:
        steps: Optimizer steps.
        batch_size: Simulator executions per gradient estimate.
        lr: Initial learning rate.
        optimizer: ``"adam"`` (default), ``"adamw"``, ``"sgd"``, ``"rmsprop"``,
            ``"adagrad"``, or any :class:`torch.optim.Optimizer` subclass.
        optimizer_options: Extra keyword arguments for the optimizer (e.g. ``betas``).
        final_lr_factor: The learning rate follows a cosine schedule from ``lr`` down to
            ``lr * final_lr_factor``; ``1.0`` keeps it constant.
        baseline: Control variate of the score-function term: ``"leave_one_out"`` (the
            mean loss of the other executions of the batch; needs ``batch_size >= 2``),
            ``"moving_average"`` (of earlier batches' mean losses) or ``"none"``.
        baseline_decay: Decay of the moving average, in ``[0, 1)``.
        gradient: ``"auto"``: pathwise (reparameterized) gradients through continuous
            choices that support it, score-function gradients for the others; ``"score"``:
            score-function gradients for every choice (for simulators whose code is not
            differentiable in its random numbers).
        progress: ``True``/``False`` to force the progress bar; ``None`` shows it only when
            stderr is a terminal.

    Raises:
        ValueError: naming the offending field.

    Example:
        >>> OptimizeConfig(steps=200, batch_size=32, lr=0.05).optimizer_class.__name__
        'Adam'
    """

    steps: int = 500
    batch_size: int = 16
    lr: float = 0.01
    optimizer: str | type[torch.optim.Optimizer] = "adam"
    optimizer_options: Mapping[str, Any] = field(default_factory=dict)
    final_lr_factor: float = 1.0
    baseline: Literal["leave_one_out", "moving_average", "none"] = "leave_one_out"
    baseline_decay: float = 0.9
    gradient: Literal["auto", "score"] = "auto"
    progress: bool | None = None

    def __post_init__(self) -> None:
        positive_int("steps", self.steps)
        positive_int("batch_size", self.batch_size)
        in_range("lr", self.lr, 0.0, math.inf, low_open=True)
        in_range("final_lr_factor", self.final_lr_factor, 0.0, 1.0)
        in_range("baseline_decay", self.baseline_decay, 0.0, 1.0, high_open=True)
        choice("baseline", self.baseline, BASELINES)
        choice("gradient", self.gradient, GRADIENT_MODES)
        if self.baseline == "leave_one_out" and self.batch_size < 2:
            raise ValueError(
                "OptimizeConfig: baseline='leave_one_out' needs batch_size >= 2 "
                f"(got batch_size={self.batch_size}); use baseline='moving_average'"
            )
        if self.progress is not None and not isinstance(self.progress, bool):
            raise ValueError(
                f"OptimizeConfig: progress must be True, False or None, got {self.progress!r}"
            )
        if not isinstance(self.optimizer_options, Mapping):
            raise ValueError(
                "OptimizeConfig: optimizer_options must be a mapping, "
                f"got {type(self.optimizer_options).__name__}"
            )
        if "lr" in self.optimizer_options:
            raise ValueError(
                "OptimizeConfig: give the learning rate as lr=, not in optimizer_options"
            )
        # a read-only copy: the config is frozen all the way down
        object.__setattr__(
            self, "optimizer_options", MappingProxyType(dict(self.optimizer_options))
        )
        self.optimizer_class  # noqa: B018  (validates the optimizer)

    @property
    def optimizer_class(self) -> type[torch.optim.Optimizer]:
        """The :class:`torch.optim.Optimizer` subclass to use."""
        opt = self.optimizer
        if isinstance(opt, str):
            try:
                return _OPTIMIZERS[opt.lower()]
            except KeyError:
                raise ValueError(
                    f"OptimizeConfig: unknown optimizer {opt!r}; give one of "
                    f"{', '.join(sorted(_OPTIMIZERS))} or a torch.optim.Optimizer subclass"
                ) from None
        if isinstance(opt, type) and issubclass(opt, torch.optim.Optimizer):
            return opt
        raise ValueError(
            "OptimizeConfig: optimizer must be a name or a torch.optim.Optimizer subclass, "
            f"got {opt!r}"
        )

    def make_optimizer(self, params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
        """A fresh optimizer over ``params`` with this configuration's settings."""
        cls: Any = self.optimizer_class  # subclasses take lr; the base class does not
        opt: torch.optim.Optimizer = cls(list(params), lr=self.lr, **self.optimizer_options)
        return opt
