"""Calibration across observations: SBC rank tests and TARP coverage.

The statistical machinery is first checked without a network, on the conjugate normal model
with exact posterior samples (calibrated by construction) and with posteriors 0.6 times
too narrow (not calibrated); then on trained networks for the unknown-mean model: a good
one passes, one trained for observations 2.0 times more precise than they are
(overconfident) fails. Every test is seeded, so each verdict is deterministic; the level
is 0.01 with a Bonferroni correction, so a correct posterior passes with probability at
least 0.99 for any seed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rotalumis.diagnostics import (
    CalibrationResult,
    calibrate,
    plot_coverage,
    plot_rank_histograms,
    write_calibration_report,
    write_report,
)
from rotalumis.diagnostics.calibration import _rank, _tarp_ranks
from rotalumis.models import UnknownMean
from rotalumis.nn import InferenceNetwork, TrainingConfig, train_network

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]


def conjugate_result(width: float, n: int = 300, num_samples: int = 99) -> CalibrationResult:
    """SBC on ``mu ~ N(0, 1)``, ``y ~ N(mu, 1)`` (posterior ``N(y/2, 1/sqrt 2)``) and a
    second independent parameter, with posterior samples ``width`` times too wide."""
    rng = np.random.default_rng(0)
    truths, draws = [], []
    for _ in range(n):
        theta = rng.normal(0.0, 1.0, 2)
        y = theta + rng.normal(0.0, 1.0, 2)
        post = y / 2 + width * rng.normal(0.0, 1.0, (num_samples, 2)) / math.sqrt(2)
        truths.append({"a": theta[0], "b": theta[1]})
        draws.append({"a": post[:, 0], "b": post[:, 1]})
    ranks = np.array(
        [[_rank(t[k], d[k], rng) for k in "ab"] for t, d in zip(truths, draws, strict=True)]
    )
    tarp = _tarp_ranks(truths, draws, ["a", "b"], rng)
    return CalibrationResult(["a", "b"], ranks.astype(float), tarp, num_samples, "proposal")


def test_exact_posteriors_pass_and_narrow_ones_fail() -> None:
    good = conjugate_result(1.0)
    assert good.passed(), good.summary()
    assert good.default_bins() == 20  # 100 ranks in 20 bins of 5, 15 simulations a bin
    narrow = conjugate_result(0.6)
    assert not narrow.passed(), narrow.summary()
    p_joint = narrow.tests()["joint (TARP)"][1]
    assert p_joint < 1e-3  # TARP sees it too
    # too narrow: intervals cover the truth less often than their level says
    cov = narrow.coverage([0.5, 0.9])
    assert (cov["a"] < [0.45, 0.85]).all() and (cov["joint (TARP)"] < [0.45, 0.85]).all()


def test_ties_of_discrete_parameters_are_broken_at_random() -> None:
    # k ~ Bernoulli(0.3) and no data: the posterior is the prior, many exact ties
    rng = np.random.default_rng(1)
    ranks = [_rank(float(rng.random() < 0.3), (rng.random(99) < 0.3).astype(float), rng)
             for _ in range(400)]  # fmt: skip
    result = CalibrationResult(["k"], np.array(ranks, float)[:, None], np.zeros(400), 99, "x")
    assert result.chi2_test(result.ranks[:, 0])[1] > 0.01


def test_save_load_and_report(tmp_path: Path) -> None:
    result = conjugate_result(1.0, n=60)
    loaded = CalibrationResult.load(result.save(tmp_path / "calibration.json"))
    assert loaded.parameters == result.parameters
    assert np.array_equal(loaded.ranks, result.ranks)
    assert loaded.tests() == result.tests()
    assert len(plot_rank_histograms(result).axes) == 3  # a, b and TARP
    assert len(plot_coverage(result).axes[0].lines) == 4  # diagonal, a, b, TARP
    page = write_calibration_report(result, tmp_path / "calibration.html").read_text()
    assert "Rank histograms" not in page and "rank histograms" in page
    assert page.count("data:image/png;base64") == 2


def test_run_report_includes_a_calibration_section(tmp_path: Path, is_result) -> None:
    is_result.save(tmp_path / "empirical.npz")
    conjugate_result(0.6, n=60).save(tmp_path / "calibration.json")
    html = write_report(tmp_path).read_text()
    assert 'id="calibration"' in html and "not calibrated" in html


def _network(likelihood_std: float) -> InferenceNetwork:
    config = TrainingConfig(
        num_traces=8000, batch_size=64, learning_rate=3e-3, valid_size=0, seed=0
    )
    model = UnknownMean(likelihood_std=likelihood_std)
    return train_network(model=model, config=config, network_sizes={"lstm_dim": 32}).network


@pytest.mark.slow
def test_sbc_passes_for_a_good_network_and_fails_for_an_overconfident_one() -> None:
    good = calibrate(UnknownMean(), _network(math.sqrt(2.0)), 200, 99, seed=1)
    assert good.passed(), good.summary()
    overconfident = _network(math.sqrt(2.0) / 2.0)  # trained for twice as precise data
    bad = calibrate(UnknownMean(), overconfident, 200, 99, seed=1)
    assert not bad.passed(), bad.summary()
    assert bad.tests()["mu"][1] < 1e-6
    # the U shape of too narrow posteriors: the outer bins hold far more than their share
    counts = bad.histogram(bad.ranks[:, 0])
    assert counts[0] + counts[-1] > 4 * counts.sum() / len(counts)


@pytest.mark.slow
def test_importance_sampling_calibrates_a_conservative_network() -> None:
    wide = _network(4.0)  # trained for noisier data: wide proposals, heavy enough tails
    result = calibrate(UnknownMean(), wide, 100, 99, method="ic", ic_traces=200, seed=2)
    assert result.passed(), result.summary()
    assert result.ess is not None and float(np.median(result.ess)) > 20


def test_cli_calibrate_writes_results(tmp_path: Path) -> None:
    config = TrainingConfig(num_traces=512, batch_size=64, valid_size=0, seed=0)
    net = train_network(model=UnknownMean(), config=config, network_sizes={"lstm_dim": 8})
    net.network.save(tmp_path / "net.pt")
    out = tmp_path / "cal"
    r = subprocess.run(
        [sys.executable, "-m", "rotalumis.cli", "calibrate",
         f"{ROOT / 'examples' / 'unknown_mean.py'}:model", "--network", str(tmp_path / "net.pt"),
         "-n", "40", "--samples", "19", "--out", str(out), "--seed", "0"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "joint (TARP)" in r.stdout and "calibrated" in r.stdout
    saved = json.loads((out / "calibration.json").read_text())
    assert saved["parameters"] == ["mu"] and len(saved["ranks"]) == 40
    for name in ("calibration_ranks.png", "calibration_coverage.png", "calibration.html"):
        assert (out / name).stat().st_size > 1000
    bad = subprocess.run(
        [sys.executable, "-m", "rotalumis.cli", "calibrate",
         f"{ROOT / 'examples' / 'unknown_mean.py'}:model", "--network", str(tmp_path / "net.pt"),
         "--method", "nope", "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "nope" in bad.stderr
