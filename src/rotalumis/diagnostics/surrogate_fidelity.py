"""How faithful a surrogate is to its simulator: numbers, plots and a report section.

:func:`compare_surrogate` runs both models from the prior and compares

* the **trace-type frequencies** (a trace type is the sequence of controlled addresses): their
  total variation (TV) distance, beside its Monte Carlo noise floor — the TV between two
  halves of the simulator's own sample, divided by ``sqrt(2)`` (TV between two independent
  samples of ``n`` traces each shrinks like ``1/sqrt(n)``, and the halves hold ``n/2``);
* per address (random choices, observations, tags), the values: the classifier two-sample
  test (:func:`~.c2st.c2st`, 0.5 when a classifier cannot tell them apart), the visit counts
  and histograms;
* how often the surrogate fell back to the simulator.

:meth:`SurrogateFidelity.save` writes ``surrogate_fidelity.json``; a ``rotalumis run``
directory holding it gets a "Surrogate fidelity" section in its HTML report.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rotalumis.core import Model
from rotalumis.core.files import write_text_atomic
from rotalumis.surrogate import Step, SurrogateModel, simulate_steps, trace_type

from . import _html as H
from ._figure import finish, pyplot
from .c2st import c2st

__all__ = ["FIDELITY_FILE", "SurrogateFidelity", "compare_surrogate", "fidelity_section"]

FIDELITY_FILE = "surrogate_fidelity.json"
_BINS = 30


@dataclass
class SurrogateFidelity:
    """The comparison of a surrogate with its simulator (see the module docstring).

    Attributes:
        model: Name of the simulator.
        num_traces: Prior traces of each model compared.
        trace_type_tv: TV distance of the trace-type frequencies.
        trace_type_tv_noise: Its Monte Carlo noise floor.
        fallback_rate: Fraction of surrogate executions that fell back to the simulator.
        trace_types: The most frequent types: ``{"sites", "simulator", "surrogate"}``
            (length of the type and both frequencies).
        sites: Per address: ``address``, ``name``, ``kind``, visits of each model,
            ``c2st`` (``None`` when too few visits), histogram ``edges`` and ``counts``.
    """

    model: str
    num_traces: int
    trace_type_tv: float
    trace_type_tv_noise: float
    fallback_rate: float
    trace_types: list[dict[str, Any]] = field(default_factory=list)
    sites: list[dict[str, Any]] = field(default_factory=list)

    @property
    def max_c2st(self) -> float | None:
        """The largest per-address C2ST accuracy (``None`` if none was computed)."""
        values = [s["c2st"] for s in self.sites if s["c2st"] is not None]
        return max(values) if values else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``DIR/surrogate_fidelity.json`` (atomically); return its path."""
        path = Path(directory) / FIDELITY_FILE
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SurrogateFidelity:
        """Read a file written by :meth:`save`."""
        return cls(**json.loads(Path(path).read_text()))

    def plot_trace_types(self, path: Any = None) -> Any:
        """Bar chart of the most frequent trace types' frequencies in both models."""
        plt = pyplot()
        rows = self.trace_types
        fig, ax = plt.subplots(figsize=(7, 3.2))
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [r["simulator"] for r in rows], 0.4, label="simulator")
        ax.bar(x + 0.2, [r["surrogate"] for r in rows], 0.4, label="surrogate")
        ax.set_xticks(x, [str(r["sites"]) for r in rows])
        ax.set_xlabel("trace type (its number of random choices), most frequent first")
        ax.set_ylabel("frequency")
        ax.legend()
        title = f"trace types: TV {self.trace_type_tv:.4f} (noise {self.trace_type_tv_noise:.4f})"
        return finish(fig, path, title)

    def plot_sites(self, path: Any = None, top: int = 8) -> Any:
        """Histograms of the values at the most visited addresses, both models."""
        plt = pyplot()
        sites = [s for s in self.sites if s["edges"]][:top]
        cols = min(4, max(len(sites), 1))
        rows = max(1, math.ceil(len(sites) / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
        for ax in axes.flat[len(sites) :]:
            ax.axis("off")
        for ax, s in zip(axes.flat, sites, strict=False):
            edges = np.asarray(s["edges"])
            for counts, label in ((s["counts_simulator"], "simulator"),
                                  (s["counts_surrogate"], "surrogate")):  # fmt: skip
                c = np.asarray(counts, dtype=float)
                ax.stairs(c / max(c.sum(), 1.0), edges, label=label)
            score = "–" if s["c2st"] is None else f"{s['c2st']:.3f}"
            ax.set_title(f"{s['name'] or s['address'][-28:]} (C2ST {score})", fontsize=8)
        axes.flat[0].legend(fontsize=7)
        return finish(fig, path, "values per address: simulator vs surrogate")


def _tv(a: Counter[str], b: Counter[str]) -> float:
    na, nb = max(sum(a.values()), 1), max(sum(b.values()), 1)
    return 0.5 * sum(abs(a[k] / na - b[k] / nb) for k in set(a) | set(b))


def _by_address(sequences: Sequence[list[Step]]) -> dict[str, list[Step]]:
    out: dict[str, list[Step]] = {}
    for seq in sequences:
        for s in seq:
            out.setdefault(s.address, []).append(s)
    return out


def _histogram(x: np.ndarray, y: np.ndarray, discrete: bool) -> tuple[list[float], ...]:
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    if discrete and hi - lo <= 60:
        edges = np.arange(lo - 0.5, hi + 1.0)
    else:
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, _BINS + 1)
    cx, _ = np.histogram(x, edges)
    cy, _ = np.histogram(y, edges)
    return edges.tolist(), cx.tolist(), cy.tolist()


def _site_row(
    address: str, sim: list[Step], sur: list[Step], c2st_samples: int, seed: int, run_c2st: bool
) -> dict[str, Any]:
    first = sim[0]
    row: dict[str, Any] = {
        "address": address,
        "name": first.name,
        "kind": first.kind,
        "visits_simulator": len(sim),
        "visits_surrogate": len(sur),
        "c2st": None,
        "edges": [],
        "counts_simulator": [],
        "counts_surrogate": [],
    }
    if not sur or len(first.value) == 0:
        return row
    x = np.asarray([s.value for s in sim[:c2st_samples]], dtype=np.float64)
    y = np.asarray([s.value for s in sur[:c2st_samples] if len(s.value) == x.shape[1]])
    if len(y) == 0:
        return row
    discrete = bool(np.all(x == np.round(x)))
    row["edges"], row["counts_simulator"], row["counts_surrogate"] = _histogram(
        x[:, 0], y[:, 0], discrete
    )
    if run_c2st and min(len(x), len(y)) >= 50:
        n = min(len(x), len(y))
        row["c2st"] = c2st(x[:n], y[:n], seed=seed)
    return row


def compare_surrogate(
    surrogate: SurrogateModel,
    simulator: Model,
    num_traces: int = 10_000,
    seed: int = 0,
    c2st_samples: int = 2_000,
    c2st_sites: int = 20,
    model_args: tuple[Any, ...] = (),
) -> SurrogateFidelity:
    """Compare ``surrogate`` with ``simulator`` on ``num_traces`` prior traces of each.

    Args:
        surrogate: The surrogate model.
        simulator: The model it imitates.
        num_traces: Traces of each model.
        seed: Seed of both runs (different streams) and of the classifiers.
        c2st_samples: Most visits per address fed to the classifier test, per model.
        c2st_sites: The classifier test runs on this many most visited addresses.
        model_args: Arguments of ``forward``.

    Returns:
        A :class:`SurrogateFidelity`.
    """
    sites = surrogate.network.config.sites
    from rotalumis.surrogate import SiteFilter

    keep = SiteFilter(sites)
    before = (surrogate.stats.executions, surrogate.stats.fallbacks)
    sur = simulate_steps(surrogate, num_traces, 2 * seed + 1, keep, model_args)
    runs = surrogate.stats.executions - before[0]
    fallback_rate = (surrogate.stats.fallbacks - before[1]) / max(runs, 1)
    sim = simulate_steps(simulator, num_traces, 2 * seed, keep, model_args)
    types_sim = Counter(trace_type(s) for s in sim)
    types_sur = Counter(trace_type(s) for s in sur)
    half = len(sim) // 2
    noise = _tv(
        Counter(trace_type(s) for s in sim[:half]), Counter(trace_type(s) for s in sim[half:])
    ) / math.sqrt(2)
    lengths = {trace_type(s): sum(x.kind == "sample" and x.control for x in s) for s in sim}
    lengths.update({trace_type(s): sum(x.kind == "sample" and x.control for x in s) for s in sur})
    top = [k for k, _ in (types_sim + types_sur).most_common(15)]
    rows = [
        {
            "sites": lengths[k],
            "simulator": types_sim[k] / len(sim),
            "surrogate": types_sur[k] / len(sur),
        }
        for k in top
    ]
    by_sim, by_sur = _by_address(sim), _by_address(sur)
    order = sorted(by_sim, key=lambda a: -len(by_sim[a]))
    site_rows = [
        _site_row(a, by_sim[a], by_sur.get(a, []), c2st_samples, seed, i < c2st_sites)
        for i, a in enumerate(order)
    ]
    return SurrogateFidelity(
        simulator.name,
        num_traces,
        _tv(types_sim, types_sur),
        noise,
        fallback_rate,
        rows,
        site_rows,
    )


def fidelity_section(directory: Path) -> tuple[str, str, str] | None:
    """``(id, title, html)`` of the report section, or ``None`` without a fidelity file."""
    path = directory / FIDELITY_FILE
    if not path.is_file():
        return None
    f = SurrogateFidelity.load(path)
    info = [
        ("simulator", f.model),
        ("prior traces compared (each model)", f.num_traces),
        ("trace-type TV distance", f.trace_type_tv),
        ("its Monte Carlo noise floor", f.trace_type_tv_noise),
        ("largest per-address C2ST accuracy", f.max_c2st),
        ("fallbacks to the simulator", f.fallback_rate),
    ]
    body = H.table(["", "value"], info, text_cols=(0, 1))
    body += H.img(H.fig_png(f.plot_trace_types), "trace types", "Trace-type frequencies")
    body += H.img(H.fig_png(f.plot_sites), "values per address", "Values per address")
    rows = [
        (s["address"], s["name"] or "", s["kind"], s["visits_simulator"], s["visits_surrogate"],
         s["c2st"])
        for s in f.sites
    ]  # fmt: skip
    headers = ["address", "name", "kind", "visits (simulator)", "visits (surrogate)", "C2ST"]
    body += H.details("Per address", H.table(headers, rows, text_cols=(0, 1, 2), mono_cols=(0,)))
    return ("surrogate", "Surrogate fidelity", body)
