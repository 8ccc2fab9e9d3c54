"""Plots checked by content: axes, labels, number and data of artists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import synthetic_chains

from rotalumis.diagnostics import (
    plot_autocorrelation,
    plot_log_prob,
    plot_pair,
    plot_posterior,
    plot_rhat_evolution,
    plot_traces,
    plot_training,
    rhat_evolution,
)
from rotalumis.models import GaussianMixture


def not_blank(path: Path) -> bool:
    from PIL import Image

    with Image.open(path) as im:
        return float(np.asarray(im.convert("L"), dtype=float).std()) > 5


def visible(fig: Any) -> list[Any]:
    return [ax for ax in fig.axes if ax.axison]


def test_posterior_histogram_density_and_truth(rmh_chains: Any, tmp_path: Path) -> None:
    fig = plot_posterior(rmh_chains, tmp_path / "p.png", title="T", truth={"mu": 7.25})
    axes = visible(fig)
    assert len(axes) == 1  # result == mu is drawn once
    ax = axes[0]
    assert ax.get_xlabel() == "mu" and ax.get_ylabel() == "posterior density"
    assert len(ax.patches) == 50  # histogram bars
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {"density", "truth"}
    assert lines["truth"].get_xdata()[0] == 7.25
    # the density integrates to ~1 over the plotted range (99.8% of the mass)
    x, y = lines["density"].get_data()
    assert np.trapezoid(y, x) == pytest.approx(1.0, abs=0.05)
    assert fig._suptitle.get_text() == "T"
    assert not_blank(tmp_path / "p.png")


def test_posterior_discrete_panel() -> None:
    emp = GaussianMixture().posterior(500, engine="is", observe={"obs": 0.5}, seed=0)
    fig = plot_posterior(emp, None)
    labels = [ax.get_xlabel() for ax in visible(fig)]
    assert labels == ["k", "x"]
    k_ax = visible(fig)[0]
    assert k_ax.get_ylabel() == "posterior probability" and not k_ax.lines  # no density
    heights = sum(p.get_height() for p in k_ax.patches)
    assert heights == pytest.approx(1.0)


def test_trace_plot(tmp_path: Path) -> None:
    emp = synthetic_chains([0, 0, 1], 200, seed=0)
    fig = plot_traces(emp, tmp_path / "t.png")
    axes = fig.axes
    assert len(axes) == 4  # (mu, nu) x (trace, histogram); result repeats mu
    assert [axes[0].get_xlabel(), axes[0].get_ylabel()] == ["iteration", "mu"]
    assert axes[2].get_ylabel() == "nu"
    assert len(axes[0].lines) == 3  # one per chain
    np.testing.assert_array_equal(axes[0].lines[2].get_ydata(), emp.get("mu").to_numpy()[400:])
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == [
        "chain 0", "chain 1", "chain 2",
    ]  # fmt: skip
    assert len(axes[1].patches) == 3 * 30
    assert not_blank(tmp_path / "t.png")


def test_log_prob_plot(rmh_chains: Any) -> None:
    fig = plot_log_prob(rmh_chains, None)
    (ax,) = fig.axes
    assert ax.get_ylabel() == "log p(x, y)" and ax.get_xlabel() == "iteration"
    assert len(ax.lines) == 4
    lp = np.asarray(rmh_chains.info.log_prob).reshape(4, -1)
    for c in range(4):
        np.testing.assert_allclose(ax.lines[c].get_ydata(), lp[c])
    from rotalumis.data import Empirical

    with pytest.raises(ValueError, match="no log density"):
        plot_log_prob(Empirical([1.0, 2.0]), None)


def test_autocorrelation_plot(rmh_chains: Any) -> None:
    fig = plot_autocorrelation(rmh_chains, None, max_lag=20)
    axes = visible(fig)
    assert len(axes) == 1 and axes[0].get_ylabel() == "autocorrelation of mu"
    chain_lines = [line for line in axes[0].lines if line.get_label().startswith("chain")]
    assert len(chain_lines) == 4
    assert all(line.get_ydata()[0] == pytest.approx(1.0) for line in chain_lines)
    assert len(chain_lines[0].get_xdata()) == 21


def test_rhat_evolution_plot() -> None:
    emp = synthetic_chains([0, 0, 3], 300, seed=1)
    fig = plot_rhat_evolution(emp, None)
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {"mu", "nu", "R-hat = 1.01"}
    _ks, rhat = rhat_evolution(emp, "mu")
    np.testing.assert_allclose(lines["mu"].get_ydata(), rhat)
    assert lines["mu"].get_ydata()[-1] > 1.1  # the stuck chain shows
    assert ax.get_xlabel() == "draws per chain" and ax.get_ylabel() == "R-hat"


def test_pair_plot(tmp_path: Path) -> None:
    emp = synthetic_chains([0, 0], 300, seed=2)
    fig = plot_pair(emp, tmp_path / "pair.png")
    assert len(fig.axes) == 4
    diag, lower, upper = fig.axes[0], fig.axes[2], fig.axes[1]
    assert len(diag.patches) == 30 and not upper.axison
    assert len(lower.collections) == 1  # the 2-D histogram
    assert (lower.get_xlabel(), lower.get_ylabel()) == ("mu", "nu")
    assert not_blank(tmp_path / "pair.png")
    with pytest.raises(ValueError, match="two scalar variables"):
        plot_pair(synthetic_chains([0], 10, 0).get("mu"), None)


def test_training_curve(tmp_path: Path) -> None:
    import torch

    from rotalumis.nn import TrainingConfig, train_network

    torch.set_num_threads(1)
    config = TrainingConfig(num_traces=1600, batch_size=16, valid_size=64, valid_every=400)
    result = train_network(model=GaussianMixture(), config=config, network_sizes={"lstm_dim": 16})
    fig = plot_training(result, tmp_path / "loss.png")
    assert not_blank(tmp_path / "loss.png")
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == [
        "training (each step)",
        "training (mean of 2 steps)",  # 100 steps: a window of 100 // 50
        "validation",
    ]
    assert list(lines[0].get_xdata()) == [t for t, _ in result.loss]
    assert len(result.loss) == 100
    assert list(lines[2].get_xdata()) == [t for t, _ in result.valid_loss]
    with pytest.raises(ValueError, match="no loss history"):
        plot_training(loss=[], valid_loss=[])
