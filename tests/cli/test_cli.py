"""The ``rotalumis`` command, run as a user would (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "unknown_mean.py")


def rotalumis(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rotalumis.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_run_prints_summary_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "res"
    r = rotalumis(
        "run", f"{EXAMPLE}:model", "-e", "is", "-n", "5000", "-o", "obs0=8", "-o", "obs1=9",
        "--seed", "0", "--out", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "mu" in r.stdout and "ESS" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    # 5 Monte Carlo standard errors: posterior sd sqrt(5/6) over sqrt(ESS)
    tol = 5 * (5 / 6) ** 0.5 / summary["ess"] ** 0.5
    assert summary["summary"]["mu"]["mean"] == pytest.approx(7.25, abs=tol)
    assert (out / "posterior.png").stat().st_size > 10_000
    assert (out / "empirical.npz").is_file()
    # not a TTY: no progress bar escape codes on stderr
    assert "\x1b[" not in r.stderr


@pytest.mark.parametrize("engine", ["lmh", "rmh", "prior"])
def test_run_other_engines(engine: str) -> None:
    r = rotalumis(
        "run", f"{EXAMPLE}:model", "-e", engine, "-n", "2000", "-o", "obs0=8", "-o", "obs1=9",
        "--seed", "1", "--quiet",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "posterior of UnknownMean" in r.stdout


def test_mcmc_ess_is_the_same_from_the_shell_and_from_python(tmp_path: Path) -> None:
    """Chains know they are chains: the CLI summary, the saved result and the Python API
    report the same autocorrelation-aware ESS (issue 11)."""
    from rotalumis.cli.loading import load_model
    from rotalumis.data import Empirical

    out = tmp_path / "lmh"
    r = rotalumis(
        "run", f"{EXAMPLE}:model", "-e", "lmh", "-n", "4000", "--chains", "2", "-o", "obs0=8",
        "-o", "obs1=9", "--seed", "5", "-q", "--out", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    saved = Empirical.load(out / "empirical.npz")
    direct = load_model(f"{EXAMPLE}:model").posterior(
        4000, engine="lmh", observe={"obs0": 8.0, "obs1": 9.0}, seed=5, burn_in=0, thin=1,
        num_chains=2, progress=False,
    )  # fmt: skip
    assert saved.chains == direct.chains == (4000, 4000)
    assert summary["ess"] == pytest.approx(saved.ess) and saved.ess == pytest.approx(direct.ess)
    assert summary["ess"] < 2000  # LMH on this model: far fewer than 8,000
    assert summary["summary"]["mu"]["ess"] == pytest.approx(direct.summary()["mu"]["ess"])
    assert f"ESS {direct.ess:.1f}" in r.stdout


def test_run_pseudo_marginal_mh_on_named_parameters() -> None:
    r = rotalumis(
        "run", f"{EXAMPLE}:model", "-e", "pmmh", "--param", "mu", "--particles", "2",
        "--proposal", "random_walk", "--scale", "0.3", "-n", "1000", "-o", "obs0=8",
        "-o", "obs1=9", "--seed", "1", "-q",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "pmmh posterior of UnknownMean" in r.stdout


@pytest.mark.parametrize("engine", ["is", "rmh"])
def test_run_in_worker_processes_gives_the_same_result(engine: str, tmp_path: Path) -> None:
    summaries = []
    for workers in ("0", "2"):
        out = tmp_path / workers
        chains = ["--chains", "2"] if engine == "rmh" else []  # an MCMC option
        r = rotalumis(
            "run", f"{EXAMPLE}:model", "-e", engine, "-n", "3000", *chains,
            "-o", "obs0=8", "-o", "obs1=9", "--seed", "3", "--workers", workers, "-q",
            "--out", str(out),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        summaries.append(json.loads((out / "summary.json").read_text())["summary"])
    assert summaries[0] == summaries[1]


@pytest.mark.slow
def test_run_on_a_local_dask_cluster_gives_the_same_result(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    summaries = []
    for where in (["--workers", "0"], ["--cluster", "local:2"]):
        out = tmp_path / where[1]
        r = rotalumis(
            "run", f"{EXAMPLE}:model", "-n", "1000", "-o", "obs0=8", "-o", "obs1=9",
            "--seed", "3", *where, "-q", "--out", str(out),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        summaries.append(json.loads((out / "summary.json").read_text())["summary"])
    assert summaries[0] == summaries[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.py:model"], "model file not found: missing.py"),
        (["run", f"{EXAMPLE}:nope"], "has no model named 'nope'"),
        (["run", f"{EXAMPLE}:model", "-o", "bogus=1"], "never observes bogus"),
        (["run", f"{EXAMPLE}:model", "-o", "obs0"], "NAME=VALUE"),
        (["run", f"{EXAMPLE}:model", "-o", "obs0=abc"], "not a number"),
        (["run", f"{EXAMPLE}:model", "-e", "magic"], "unknown engine 'magic'"),
        (["run", EXAMPLE], "expected FILE.py:MODEL"),
        (["run", f"{EXAMPLE}:model", "-e", "pmmh"], "-e pmmh needs --param NAME"),
        (["run", f"{EXAMPLE}:model", "--particles", "3"], "--particles only applies to -e pmmh"),
        (["run", f"{EXAMPLE}:model", "-e", "lmh", "--param-probability", "0.5"], "needs --param"),
        (["run", f"{EXAMPLE}:model", "-e", "pmmh", "-p", "nu"], "'nu' match no random choice"),
        (
            ["run", f"{EXAMPLE}:model", "-e", "rmh", "-p", "mu", "--param-probability", "2"],
            "must be in (0, 1)",
        ),
    ],
)
def test_errors_are_one_clear_line(args: list[str], message: str) -> None:
    r = rotalumis(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
