"""``Empirical.info``: typed run information, saved and loaded with the result; files saved
before it existed (engine facts as metadata keys) still load, with the same facts."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
from file_fuzz import mutations, rewrite_member

from rotalumis.core import DatasetError, ProposalStats
from rotalumis.data import ChainInfo, Empirical, RunInfo
from rotalumis.models import UnknownMean

OBS = {"obs0": 8.0, "obs1": 9.0}


def _info() -> RunInfo:
    return RunInfo(
        "rmh",
        {"burn_in": 10, "scale": 0.5, "site_policy": "UniformSites()"},
        seed=7,
        chains=(ChainInfo(3, 0.25), ChainInfo(2, 0.5)),
        log_prob=(-1.0, -2.0, -3.5, -0.5, -1.25),
        proposal=ProposalStats(12, 3, {"b", "a"}),
    )


def test_run_information_is_saved_and_loaded(tmp_path: Path) -> None:
    emp = Empirical(np.arange(5.0))
    emp.info = _info()
    emp.metadata["note"] = "kept"
    emp.save(tmp_path / "r.npz")
    back = Empirical.load(tmp_path / "r.npz")
    assert back.info == emp.info
    assert back.info is not None and back.info.unseen_addresses == ["a", "b"]
    assert back.info.prior_fallback_fraction == pytest.approx(3 / 15)
    assert back.metadata == {"note": "kept"}
    plain = Empirical(np.arange(3.0))
    plain.save(tmp_path / "p.npz")
    assert Empirical.load(tmp_path / "p.npz").info is None


def test_engines_record_what_they_did(tmp_path: Path) -> None:
    post = UnknownMean().posterior(
        40, engine="rmh", observe=OBS, seed=3, num_chains=2, burn_in=5, progress=False
    )
    info = post.info
    assert info is not None and info.engine == "rmh" and info.seed == 3
    assert [c.length for c in info.chains] == [40, 40] and info.options["burn_in"] == 5
    assert info.log_prob is not None and len(info.log_prob) == 80
    post.save(tmp_path / "c.npz")
    assert Empirical.load(tmp_path / "c.npz").info == info


def test_files_saved_before_run_information_existed_still_load(tmp_path: Path) -> None:
    # what engines wrote before: the facts as free-form metadata keys, no "run" member
    emp = Empirical(np.arange(4.0))
    emp.metadata = {
        "engine": "lmh",
        "chains": [{"length": 2, "acceptance_rate": 0.5}, {"length": 2, "acceptance_rate": 0.25}],
        "log_prob": [-1.0, -2.0, -3.0, -4.0],
        "prior_fallback_fraction": 0.1,
        "run_id": "abc",
    }
    emp.save(tmp_path / "old.npz")
    back = Empirical.load(tmp_path / "old.npz")
    assert back.info == RunInfo(
        "lmh", chains=(ChainInfo(2, 0.5), ChainInfo(2, 0.25)), log_prob=(-1.0, -2.0, -3.0, -4.0)
    )
    assert back.metadata == emp.metadata  # nothing old files carry is lost
    assert back.chains == (2, 2)
    # chains without acceptance rates, malformed entries: what can be read is
    emp.metadata = {"engine": "is", "chains": 5, "log_prob": ["x"]}
    emp.save(tmp_path / "odd.npz")
    assert Empirical.load(tmp_path / "odd.npz").info == RunInfo("is")
    emp.metadata = {"engine": "rmh", "chains": [{"length": 4}]}
    emp.save(tmp_path / "norate.npz")
    odd = Empirical.load(tmp_path / "norate.npz").info
    assert odd is not None and math.isnan(odd.chains[0].acceptance_rate)


def test_bad_run_information_is_a_dataset_error_naming_the_file(tmp_path: Path) -> None:
    emp = Empirical(np.arange(5.0))
    emp.info = _info()
    path = tmp_path / "r.npz"
    emp.save(path)
    data = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        original = json.loads(zf.read("metadata.json"))
    tried = 0
    for what, meta in mutations(original["run"]):
        path.write_bytes(data)
        rewrite_member(path, "metadata.json", json.dumps({**original, "run": meta}).encode())
        try:
            Empirical.load(path)
        except DatasetError as exc:
            assert str(path) in str(exc), what
        tried += 1
    assert tried > 20
    path.write_bytes(data)
    rewrite_member(path, "metadata.json", json.dumps({**original, "run": [1]}).encode())
    with pytest.raises(DatasetError, match="run"):
        Empirical.load(path)
