"""An Empirical of MCMC chains knows its chains: autocorrelation-aware ESS (issue 11).

AR(1) chains ``x_t = phi x_{t-1} + e_t`` have a known integrated autocorrelation time
``(1 + phi) / (1 - phi)``, so their effective sample size is ``N (1 - phi) / (1 + phi)``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rotalumis.core import DatasetError
from rotalumis.data import Empirical, EmpiricalBuilder
from rotalumis.data.empirical import import_arviz

PHI = 0.9


def ar1(n: int, seed: int, shape: tuple[int, ...] = ()) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(n, *shape))
    x = np.empty_like(e)
    x[0] = e[0] / math.sqrt(1 - PHI**2)
    for t in range(1, n):
        x[t] = PHI * x[t - 1] + e[t]
    return x


def chains(k: int = 2, n: int = 5000) -> Empirical:
    parts = [Empirical(ar1(n, s), latents={"z": -ar1(n, s)}) for s in range(k)]
    return Empirical.from_chains(parts)


def test_chain_ess_accounts_for_autocorrelation() -> None:
    emp = chains()
    theory = len(emp) * (1 - PHI) / (1 + PHI)  # ~526 of 10,000
    assert emp.chains == (5000, 5000)
    assert 0.75 * theory < emp.ess < 1.3 * theory
    az = import_arviz()
    values = np.asarray(emp.to_numpy()).reshape(2, 5000)
    assert emp.ess == pytest.approx(float(az.ess(values, method="bulk")))
    assert emp.get("z").ess == pytest.approx(emp.ess)  # same series, negated
    # the summary reports the same figures
    summary = emp.summary()
    assert summary["result"]["ess"] == pytest.approx(emp.ess)
    assert summary["z"]["ess"] == pytest.approx(emp.get("z").ess)


def test_weighted_and_independent_samples_keep_kish_ess() -> None:
    x = np.random.default_rng(0).normal(size=1000)
    emp = Empirical(x, log_weights=-0.5 * x**2)
    w = np.exp(-0.5 * x**2)
    assert emp.chains is None
    assert emp.ess == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert emp.summary()["result"]["ess"] == pytest.approx(emp.ess)


def test_chains_survive_what_keeps_them_chains() -> None:
    emp = chains(k=2, n=400)
    assert emp.thin(4).chains == (100, 100)
    assert emp[100:].chains == (300, 400)
    assert emp.map(lambda v: 2 * v).chains == emp.chains
    assert emp.unweighted().chains == emp.chains
    assert emp.filter(lambda v: v > 0).chains is not None
    assert Empirical.combine([emp, emp]).chains == (400, 400, 400, 400)
    # a resample is not a chain; neither is a mix with importance samples
    assert emp.resample(800, seed=0).chains is None
    assert Empirical.combine([emp, Empirical(np.zeros(5))]).chains is None


def test_latent_missing_in_some_entries_keeps_its_chains() -> None:
    n = 600
    x, z = ar1(2 * n, 3).tolist(), ar1(2 * n, 4).tolist()
    parts = []
    for c in range(2):  # z is recorded in two entries of three of the first chain only
        builder = EmpiricalBuilder()
        for i in range(c * n, (c + 1) * n):
            builder.append(x[i], 0.0, latents={"z": z[i]} if c == 0 and i % 3 else {})
        parts.append(builder.build())
    sub = Empirical.from_chains(parts).get("z")
    assert sub.chains == (n * 2 // 3,)
    assert 1 < sub.ess < len(sub)


def test_array_and_dict_values_take_the_smallest_ess() -> None:
    fast = np.random.default_rng(5).normal(size=(2000, 1))
    slow = ar1(2000, 6, (1,))
    tensor = torch.from_numpy(np.concatenate([fast, slow], axis=1))
    emp = Empirical.from_chains([Empirical(tensor)])
    alone = Empirical.from_chains([Empirical(slow[:, 0])])
    assert emp.ess == pytest.approx(alone.ess)
    records = Empirical.from_chains([Empirical({"a": fast[:, 0], "b": slow[:, 0]})])
    assert records.ess == pytest.approx(alone.ess)


def test_constant_and_too_short_chains() -> None:
    assert Empirical.from_chains([Empirical(np.ones(50))]).ess == 1.0
    assert math.isnan(Empirical.from_chains([Empirical([1.0, 2.0, 0.5])]).ess)
    with pytest.raises(ValueError, match="non-empty chains"):
        Empirical.from_chains([])


def test_chains_are_saved_and_loaded(tmp_path: Path) -> None:
    emp = chains(k=3, n=300)
    emp.save(tmp_path / "c.npz")
    back = Empirical.load(tmp_path / "c.npz")
    assert back.chains == (300, 300, 300)
    assert back.ess == pytest.approx(emp.ess)
    plain = Empirical(np.arange(5.0))
    plain.save(tmp_path / "p.npz")
    assert Empirical.load(tmp_path / "p.npz").chains is None


def test_old_files_with_engine_chain_metadata_load_as_chains(tmp_path: Path) -> None:
    emp = Empirical(ar1(600, 1))  # what engines saved before chains were recorded
    emp.metadata["chains"] = [{"length": 300, "acceptance_rate": 0.5}] * 2
    emp.save(tmp_path / "old.npz")
    assert Empirical.load(tmp_path / "old.npz").chains == (300, 300)
    emp.metadata["chains"] = [{"length": 1, "acceptance_rate": 0.5}]  # not these entries'
    emp.save(tmp_path / "other.npz")
    assert Empirical.load(tmp_path / "other.npz").chains is None


def test_corrupt_chain_lengths_name_the_file(tmp_path: Path) -> None:
    import json
    import zipfile

    chains(k=2, n=50).save(tmp_path / "c.npz")
    with zipfile.ZipFile(tmp_path / "c.npz") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["metadata.json"])
    meta["chains"] = [50, 49]
    members["metadata.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(DatasetError, match=r"bad\.npz: corrupt saved Empirical: chain lengths"):
        Empirical.load(tmp_path / "bad.npz")
