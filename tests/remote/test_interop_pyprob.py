"""Interop with a real third-party peer: pyprob 1.5.0 (PyPI) drives ``rotalumis serve``.

pyprob runs in ``.venv-pyprob`` (it pins ``flatbuffers==2.0``) through the scripts in
``peers/``. Statistical checks use Z = 5 Monte Carlo standard errors (see ``ppx_helpers``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ppx_helpers import PEERS, Z, ipc_address, is_stderr, served, tcp_address
from sim_models import ALL_SITES, AllDistributions, exact_moments

from rotalumis.models import UnknownMean

pytestmark = pytest.mark.interop


def run_pyprob(
    python: Path, tmp_path: Path, address: str, mode: str, n: int, observe: dict | None = None
) -> dict[str, Any]:
    """Run pyprob's RemoteModel against ``address``; return what it recorded."""
    out = tmp_path / f"pyprob-{mode}-{n}.json"
    cmd = [str(python), str(PEERS / "pyprob_engine.py"), "--address", address, "--mode", mode]
    cmd += ["--num-traces", str(n), "--observe", json.dumps(observe or {}), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def column(result: dict[str, Any], name: str) -> np.ndarray:
    return np.asarray([r[name] for r in result["records"]], dtype=float)


@pytest.mark.timeout(600)
def test_pyprob_prior_and_posterior_on_unknown_mean(pyprob_python: Path, tmp_path: Path) -> None:
    model = UnknownMean()
    with served("UnknownMean", tcp_address()) as server:
        prior = run_pyprob(pyprob_python, tmp_path, server.address, "prior", 1500)
        post = run_pyprob(
            pyprob_python, tmp_path, server.address, "posterior", 4000, {"obs0": 8, "obs1": 9}
        )
    assert prior["model_name"] == "UnknownMean"
    assert prior["system_name"].startswith("rotalumis")
    mu = column(prior, "mu")
    assert abs(mu.mean() - 1.0) < Z * np.sqrt(5.0 / len(mu))
    assert abs(mu.var() - 5.0) < Z * np.sqrt(np.mean((mu - mu.mean()) ** 4) / len(mu))

    exact_mean, exact_std = model.exact_posterior([8.0, 9.0])  # 7.25, sqrt(5/6)
    mu, logw = column(post, "mu"), np.asarray(post["log_weights"])
    w = np.exp(logw - logw.max())
    w /= w.sum()
    assert abs(np.sum(w * mu) - exact_mean) < Z * is_stderr(mu, w)
    second = exact_std**2 + exact_mean**2  # E[mu^2]: checks the spread as well
    assert abs(np.sum(w * mu**2) - second) < Z * is_stderr(mu**2, w)


@pytest.mark.timeout(600)
def test_every_distribution_round_trips_with_correct_parameters(
    pyprob_python: Path, tmp_path: Path
) -> None:
    with served("AllDistributions", ipc_address()) as server:
        prior = run_pyprob(pyprob_python, tmp_path, server.address, "prior", 1500)
    # pyprob drew every value from the distribution it rebuilt from our Sample messages: the
    # sample moments are those of the parameters we sent only if they arrived intact.
    for name in ALL_SITES:
        x = column(prior, name)
        mean, var = exact_moments(name)
        assert abs(x.mean() - mean) < Z * np.sqrt(var / len(x)), name
        fourth = np.mean((x - x.mean()) ** 4)
        assert abs(x.var() - var) < Z * np.sqrt(max(fourth - x.var() ** 2, 1e-12) / len(x)), name

    local = {v.name: v for v in AllDistributions().get_trace(seed=0)}
    seen = {v["name"]: v for v in prior["first_trace"] if v["name"]}
    assert set(seen) == set(local)
    for name, var in seen.items():
        ours = local[name]
        assert var["address_base"].startswith(ours.base_address + "__")
        if ours.kind == "sample":
            assert var["distribution"] == ours.distribution.name
            assert var["control"] is ours.control  # control=false arrives intact
    assert seen["uncontrolled"]["control"] is False
    assert seen["tagged"]["tagged"] is True
    for record in prior["records"]:  # the tag's value is exactly the one the model computed
        assert record["tagged"] == pytest.approx(2.0 * record["uncontrolled"], rel=1e-6)
