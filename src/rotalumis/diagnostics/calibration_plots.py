"""Plots and the HTML report of a :class:`~.calibration.CalibrationResult`.

* :func:`plot_rank_histograms`: one SBC rank histogram per parameter (and the TARP ranks),
  with the band a uniform histogram stays in 99% of the time, bin by bin (binomial
  quantiles, as Talts et al. draw it).
* :func:`plot_coverage`: empirical coverage of central credible intervals of each
  parameter, and of TARP balls for all parameters jointly, against the credibility level;
  the diagonal is calibration, above it too wide (conservative), below too narrow
  (overconfident). The grey band is the pointwise 99% range of a calibrated posterior.
* :func:`calibration_section` / :func:`write_calibration_report`: the tests and both plots
  as an HTML section (``rotalumis report`` adds it when a run directory holds
  ``calibration.json``) or a page of their own.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import _html as H
from ._figure import CHAIN_COLORS, finish, pyplot
from .calibration import CalibrationResult

__all__ = [
    "CALIBRATION_REPORT",
    "calibration_section",
    "plot_coverage",
    "plot_rank_histograms",
    "write_calibration_report",
]

CALIBRATION_REPORT = "calibration.html"
_MAX_PANELS = 12


def _columns(result: CalibrationResult) -> list[tuple[str, np.ndarray]]:
    cols = [(p, result.ranks[:, i]) for i, p in enumerate(result.parameters)]
    return [*cols[: _MAX_PANELS - 1], ("joint (TARP)", result.tarp_ranks.astype(float))]


def plot_rank_histograms(
    result: CalibrationResult,
    path: str | os.PathLike[str] | Any | None = None,
    *,
    bins: int | None = None,
    title: str | None = None,
) -> Any:
    """SBC rank histograms (one panel per parameter, the first 11, and the TARP ranks).

    Returns:
        The matplotlib figure (closed).
    """
    from scipy import stats

    plt = pyplot()
    cols = _columns(result)
    ncol = min(len(cols), 4)
    nrow = math.ceil(len(cols) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False)
    tests = result.tests(bins)
    for ax, (label, column) in zip(axes.ravel(), cols, strict=False):
        counts = result.histogram(column, bins)
        n, b = int(counts.sum()), len(counts)
        lo, hi = stats.binom.ppf([0.005, 0.995], n, 1.0 / b)
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.axhline(n / b, color="0.5", lw=0.8)
        ax.bar(np.arange(b), counts, width=0.9, color=CHAIN_COLORS[0], zorder=1)
        p = tests[label][1]
        ax.set_title(f"{label}\np = {p:.2g}", fontsize=9)
        ax.set_xticks([])
    for ax in axes.ravel()[len(cols) :]:
        ax.axis("off")
    default = f"SBC rank histograms ({result.num_simulations} simulations, {result.method})"
    return finish(fig, path, title or default)


def plot_coverage(
    result: CalibrationResult,
    path: str | os.PathLike[str] | Any | None = None,
    *,
    title: str | None = None,
) -> Any:
    """Expected coverage against credibility: each parameter and TARP (joint).

    Returns:
        The matplotlib figure (closed).
    """
    from scipy import stats

    plt = pyplot()
    levels = np.linspace(0.0, 1.0, 51)
    curves = result.coverage(levels)
    n = result.num_simulations
    lo = stats.binom.ppf(0.005, n, levels) / n
    hi = stats.binom.ppf(0.995, n, levels) / n
    fig, ax = plt.subplots(figsize=(5.0, 4.6))
    ax.fill_between(levels, lo, hi, color="0.85", label="99% band if calibrated")
    ax.plot([0, 1], [0, 1], color="0.4", lw=0.8, ls="--")
    for k, (label, cov) in enumerate(list(curves.items())[-_MAX_PANELS:]):
        joint = label == "joint (TARP)"
        ax.plot(
            levels, cov, lw=2.2 if joint else 1.2, color="k" if joint else CHAIN_COLORS[k % 7],
            label=label,
        )  # fmt: skip
    ax.set_xlabel("credibility level")
    ax.set_ylabel("expected coverage")
    ax.legend(fontsize=8, loc="upper left")
    default = f"Coverage ({n} simulations, {result.method})"
    return finish(fig, path, title or default)


def calibration_section(result: CalibrationResult, level: float = 0.01) -> str:
    """HTML: the verdict, the table of tests, and both plots."""
    tests = result.tests()
    ok = result.passed(level)
    rows = [
        (label, chi2, p, "rejects uniform" if p * len(tests) < level else "ok")
        for label, (chi2, p) in tests.items()
    ]
    verdict = (
        f"Ranks uniform for every parameter and jointly (chi-square tests, level {level}, "
        "Bonferroni): the posteriors are calibrated across observations."
    )
    problem = (
        f"At least one test rejects uniform ranks (level {level}, Bonferroni): the "
        "posteriors are not calibrated; see the histograms (U shape: too narrow, hump: too "
        "wide, slope: biased)."
    )
    intro = (
        f"<p>{result.num_simulations} prior simulations of {H.esc(result.model)}, "
        f"{result.num_samples} posterior samples each, from "
        + ("the network alone" if result.method == "proposal" else "IC importance sampling")
        + ".</p>"
    )
    if result.ess is not None and len(result.ess):
        intro += f"<p>Median ESS per simulation: {float(np.median(result.ess)):.1f}.</p>"
    body = intro + H.warnings_box([] if ok else [problem], verdict)
    body += H.table(["test", "chi-square", "p-value", "verdict"], rows, text_cols=(0, 3))
    body += H.img(H.fig_png(plot_rank_histograms, result), "rank histograms",
                  "SBC rank histograms with the 99% band of a uniform histogram")  # fmt: skip
    body += H.img(H.fig_png(plot_coverage, result), "coverage",
                  "Expected coverage of credible intervals and TARP balls")  # fmt: skip
    return body


def write_calibration_report(
    result: CalibrationResult, path: str | os.PathLike[str], level: float = 0.01
) -> Path:
    """Write a self-contained HTML page with :func:`calibration_section`."""
    html = H.page(
        f"rotalumis calibration: {result.model}",
        f"{result.method} · {result.num_simulations} simulations",
        [("calibration", "Calibration", calibration_section(result, level))],
    )
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)
    return target
