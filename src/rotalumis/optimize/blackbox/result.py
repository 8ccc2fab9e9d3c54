"""What :func:`~rotalumis.optimize.optimize_blackbox` returns: the answer, the history, a plot."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch

from rotalumis.core.files import write_text_atomic

__all__ = ["RESULT_FILE", "BlackBoxResult", "History"]

RESULT_FILE = "optimization.json"
_FORMAT = 1


class History:
    """Collects one record per step while a method runs."""

    def __init__(self) -> None:
        self.psi: list[torch.Tensor] = []
        self.objective: list[float] = []
        self.calls: list[int] = []

    def record(self, psi: torch.Tensor, objective: float, calls: int) -> None:
        """Step ``t``: its answer ``psi`` (before the step), the mean objective of its calls
        and the calls made so far (including this step's)."""
        self.psi.append(psi.detach().clone().reshape(-1))
        self.objective.append(float(objective))
        self.calls.append(int(calls))

    def __len__(self) -> int:
        return len(self.calls)


@dataclass(frozen=True)
class BlackBoxResult:
    """The outcome of a black-box optimization run.

    Attributes:
        psi: The final answer (for gradient methods the last iterate, for CMA-ES the mean
            of the search distribution, for Bayesian optimization the evaluated point of
            lowest posterior mean).
        method: The method's name.
        history_psi: The answer at the start of each step, shape ``(steps, dim)``.
        history_objective: Mean objective of each step's successful calls (a noisy
            estimate of ``E[R]`` near that step's answer; NaN if all its calls failed).
        history_calls: Simulator calls made by the end of each step.
        calls: Simulator calls made in all (never more than the budget).
        failed_calls: Calls that failed and were skipped (``on_error="skip"``).
        budget: The budget of calls.
        seed: The run's seed (the same seed and settings give the same run).
        names: Parameter names when ``psi0`` was given as a mapping.
        config: The method's settings, as a dict.
    """

    psi: torch.Tensor
    method: str
    history_psi: torch.Tensor
    history_objective: torch.Tensor
    history_calls: torch.Tensor
    calls: int
    failed_calls: int
    budget: int
    seed: int
    names: tuple[str, ...] | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """Number of steps taken."""
        return int(self.history_calls.shape[0])

    @property
    def params(self) -> dict[str, float]:
        """The final answer by parameter name (names ``psi[i]`` when none were given)."""
        names = self.names or tuple(f"psi[{i}]" for i in range(self.psi.numel()))
        return {n: float(v) for n, v in zip(names, self.psi.tolist(), strict=True)}

    def answers(self) -> list[tuple[int, torch.Tensor]]:
        """``(calls, psi)``: the answer the method held after each number of calls, from
        ``(0, psi0)`` to ``(calls, psi)`` (what a benchmark evaluates)."""
        out: list[tuple[int, torch.Tensor]] = []
        starts = [0, *self.history_calls.tolist()[:-1]]
        for t, calls in enumerate(starts):
            out.append((int(calls), self.history_psi[t]))
        out.append((self.calls, self.psi))
        return out

    def plot(
        self,
        path: str | os.PathLike[str] | IO[bytes],
        title: str | None = None,
        reference: float | None = None,
        exact: Any = None,
    ) -> str | os.PathLike[str] | IO[bytes]:
        """Write a PNG: the objective against simulator calls and the parameter trajectories.

        Args:
            path: A file path (parent folders are created) or a binary file object.
            title: Figure title.
            reference: A known optimal objective value, drawn as a dashed line.
            exact: ``exact(psi) -> float``, the exact objective; when given, it is drawn at
                each answer (a benchmark with a known objective).

        Returns:
            ``path``.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if isinstance(path, (str, os.PathLike)):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        dim = self.psi.numel()
        fig = Figure(figsize=(10.0, 3.8), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 2, 1)
        calls = self.history_calls.tolist()
        ax.plot(calls, self.history_objective.tolist(), ".", color="tab:blue", alpha=0.5,
                ms=4, label="mean objective of the step's calls")  # fmt: skip
        if exact is not None:
            pts = self.answers()
            ax.plot([c for c, _ in pts], [float(exact(p)) for _, p in pts], color="tab:red",
                    lw=1.6, label="exact objective of the answer")  # fmt: skip
        if reference is not None:
            ax.axhline(reference, color="k", ls="--", lw=1, label="optimum")
        ax.set_xlabel("simulator calls")
        ax.set_ylabel("objective")
        ax.legend(frameon=False, fontsize=8)
        ax2 = fig.add_subplot(1, 2, 2)
        pts = self.answers()
        xs = [c for c, _ in pts]
        psis = torch.stack([p for _, p in pts])
        if dim <= 8:
            for i, name in enumerate(self.params):
                ax2.plot(xs, psis[:, i].tolist(), color=f"C{i % 10}", label=name)
            ax2.set_ylabel("parameter value")
            ax2.legend(frameon=False, fontsize=8)
        else:
            ax2.plot(xs, (psis - psis[0]).norm(dim=1).tolist(), color="tab:green")
            ax2.set_ylabel(f"distance from psi0 ({dim} parameters)")
        ax2.set_xlabel("simulator calls")
        fig.suptitle(title or f"{self.method}: {self.calls} of {self.budget} calls")
        fig.savefig(path, dpi=110, format="png")
        return path

    # -- saving (what the HTML report reads) -----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the result."""
        return {
            "format": _FORMAT,
            "method": self.method,
            "psi": self.psi.tolist(),
            "names": list(self.names) if self.names is not None else None,
            "history_psi": self.history_psi.tolist(),
            "history_objective": [_finite_or_none(v) for v in self.history_objective.tolist()],
            "history_calls": self.history_calls.tolist(),
            "calls": self.calls,
            "failed_calls": self.failed_calls,
            "budget": self.budget,
            "seed": self.seed,
            "config": {k: _jsonable(v) for k, v in self.config.items()},
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``DIR/optimization.json`` (atomically), which ``write_report`` shows."""
        target = Path(directory) / RESULT_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, json.dumps(self.to_dict(), indent=1))
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BlackBoxResult:
        """Read a result written by :meth:`save` (a file, or the directory holding it).

        Raises:
            ValueError: if the file is not a saved result.
        """
        p = Path(path)
        if p.is_dir():
            p = p / RESULT_FILE
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            if data.get("format") != _FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            dim = len(data["psi"])
            return cls(
                psi=torch.tensor(data["psi"]),
                method=str(data["method"]),
                history_psi=torch.tensor(data["history_psi"]).reshape(-1, dim),
                history_objective=torch.tensor(
                    [math.nan if v is None else v for v in data["history_objective"]]
                ),
                history_calls=torch.tensor(data["history_calls"], dtype=torch.long),
                calls=int(data["calls"]),
                failed_calls=int(data["failed_calls"]),
                budget=int(data["budget"]),
                seed=int(data["seed"]),
                names=tuple(data["names"]) if data["names"] is not None else None,
                config=dict(data["config"]),
            )
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"{p} is not a saved black-box optimization result: {exc}") from exc

    def __repr__(self) -> str:
        shown = self.psi.tolist() if self.psi.numel() <= 4 else f"<{self.psi.numel()} values>"
        last = self.history_objective[-1].item() if self.steps else math.nan
        return (
            f"BlackBoxResult(method={self.method!r}, psi={shown}, steps={self.steps}, "
            f"calls={self.calls}/{self.budget}, last step's objective={last:.4g})"
        )


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    return repr(v)
