"""Empirical: save/load round trip, corrupt files, and the memory bound of 1e6 entries."""

from __future__ import annotations

import gc
import json
import math
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rotalumis.core.errors import DatasetError
from rotalumis.data import Empirical, EmpiricalBuilder


class _Trace:
    def __init__(self, i: int) -> None:
        self.i = i

    def to_dict(self) -> dict[str, Any]:
        return {"i": self.i, "values": torch.tensor([float(self.i)])}


def _rich() -> Empirical:
    b = EmpiricalBuilder(name="posterior")
    for i in range(6):
        value = {"x": i * 0.5, "t": torch.full((2,), float(i), dtype=torch.float32)}
        if i % 2:
            value["odd"] = i
        latents = {"mu": i / 3, "k": i, "label": "ab"[i % 2], "ragged": np.ones(i % 3)}
        b.append(value, -0.1 * i if i else -math.inf, latents=latents, trace=_Trace(i))
    return b.build()


def test_round_trip_keeps_every_column(tmp_path: Path) -> None:
    emp = _rich()
    path = tmp_path / "post.npz"
    emp.save(path)
    back = Empirical.load(path)
    assert back.name == "posterior" and len(back) == 6
    np.testing.assert_array_equal(back.log_weights, emp.log_weights)
    assert back.latent_names == emp.latent_names
    for i in range(6):
        a, b = emp[i], back[i]
        assert a.keys() == b.keys() and a["x"] == b["x"]
        assert torch.equal(a["t"], b["t"]) and b["t"].dtype == torch.float32
        assert a.get("odd") == b.get("odd")
    assert back.mean["odd"] == emp.mean["odd"]
    assert back["k"].to_numpy().dtype == np.int64
    assert back["label"].to_numpy().tolist() == emp["label"].to_numpy().tolist()
    assert [r.shape for r in back["ragged"]] == [(0,), (1,), (2,), (0,), (1,), (2,)]
    assert back.traces is not None and back.traces[3]["i"] == 3
    assert not [p for p in tmp_path.iterdir() if p.name != "post.npz"]  # no temp files left


def test_file_is_plain_npz_with_json_metadata(tmp_path: Path) -> None:
    path = tmp_path / "e.npz"
    Empirical([1.0, 2.0], latents={"mu": [3.0, 4.0]}).save(path)
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("metadata.json"))
    assert meta["format"] == "rotalumis.empirical" and meta["version"] == 1
    with np.load(path, allow_pickle=False) as npz:
        assert npz["log_weights"].tolist() == [0.0, 0.0]


def test_traces_without_to_dict_are_not_saved(tmp_path: Path) -> None:
    b = EmpiricalBuilder()
    b.append(1.0, trace=object())
    b.build().save(tmp_path / "e.npz")
    assert Empirical.load(tmp_path / "e.npz").traces is None


def test_unserialisable_objects_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        Empirical([object(), 1]).save(tmp_path / "e.npz")
    assert not list(tmp_path.iterdir())


def test_missing_truncated_and_corrupt_files(tmp_path: Path) -> None:
    path = tmp_path / "e.npz"
    with pytest.raises(DatasetError, match=r"e\.npz"):
        Empirical.load(path)
    Empirical(np.arange(1000.0), latents={"mu": np.arange(1000.0)}).save(path)
    data = path.read_bytes()

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"truncated\.npz"):
        Empirical.load(truncated)

    corrupt = tmp_path / "corrupt.npz"
    flipped = bytearray(data)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("log_weights.npy")
    flipped[info.header_offset + 200] ^= 0xFF  # inside the stored array bytes: CRC mismatch
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(DatasetError, match=r"corrupt\.npz"):
        Empirical.load(corrupt)

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(DatasetError, match=r"garbage\.npz"):
        Empirical.load(garbage)


def _rewrite_metadata(src: Path, dst: Path, **changes: Any) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            content = zin.read(item)
            if item.filename == "metadata.json":
                meta = json.loads(content)
                meta.update(changes)
                content = json.dumps(meta).encode()
            zout.writestr(item, content)


def test_wrong_format_version_or_length(tmp_path: Path) -> None:
    path = tmp_path / "e.npz"
    Empirical([1.0, 2.0]).save(path)
    _rewrite_metadata(path, tmp_path / "v99.npz", version=99)
    with pytest.raises(DatasetError, match=r"v99.npz: unsupported format version 99"):
        Empirical.load(tmp_path / "v99.npz")
    _rewrite_metadata(path, tmp_path / "other.npz", format="something-else")
    with pytest.raises(DatasetError, match="not a saved Empirical"):
        Empirical.load(tmp_path / "other.npz")
    _rewrite_metadata(path, tmp_path / "len.npz", length=3)
    with pytest.raises(DatasetError, match="expected 3 entries"):
        Empirical.load(tmp_path / "len.npz")


def test_one_million_scalar_entries_fit_in_memory_bound() -> None:
    n = 1_000_000
    xs = np.random.default_rng(0).normal(size=n).tolist()
    latents: dict[str, Any] = {"mu": 0.0}  # reused: the loop itself allocates nothing
    gc.collect()
    tracemalloc.start()
    try:
        b = EmpiricalBuilder()
        append = b.append
        for x in xs:
            latents["mu"] = x
            append(x, x, latents)
        emp = b.build()
        del append, b
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(emp) == n and emp["mu"].mean == pytest.approx(emp.mean)
    # three float64 columns of 1e6 entries are 24 MB; builder + copies peak near twice that
    assert current < 100e6, f"Empirical of 1e6 entries holds {current / 1e6:.1f} MB"
    assert peak < 150e6, f"building 1e6 entries peaked at {peak / 1e6:.1f} MB"
