"""TraceDataset: generation, resumption, corruption handling, statistics and streaming."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from rotalumis.core import DatasetError, Model, Normal, observe, sample
from rotalumis.data import SCHEMA_VERSION, TraceBatch, TraceDataset, generate_dataset
from rotalumis.models import Branching, GaussianMixture

torch.set_num_threads(1)


class Interrupt(Exception):
    """Stands in for a kill in the middle of a generation."""


def _interrupt_after(limit: int):
    def callback(done: int, total: int) -> None:
        if done >= limit:
            raise Interrupt

    return callback


def _all_rows(directory: Path) -> list[dict]:
    return list(TraceDataset(directory).iter_traces())


def test_generate_layout_and_schema(tmp_path: Path) -> None:
    ds = TraceDataset.generate(GaussianMixture(), tmp_path, 250, seed=3, traces_per_shard=100)
    assert len(ds) == 250 and ds.complete
    assert sorted(p.name for p in tmp_path.glob("*.parquet")) == [
        "shard-000000.parquet",
        "shard-000001.parquet",
        "shard-000002.parquet",
    ]
    manifest = json.loads((tmp_path / "dataset.json").read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION and manifest["seed"] == 3
    # plain pyarrow reads it without rotalumis
    table = pq.read_table(tmp_path / "shard-000002.parquet")
    assert table.num_rows == 50
    row = table.slice(0, 1).to_pylist()[0]
    assert row["trace_id"] == 200
    assert row["distribution"] == ["Categorical", "Normal"]
    assert row["name"] == ["k", "x"]
    assert row["observation_name"] == ["obs"]
    assert len(row["params"][0]) == 2  # Categorical probabilities
    k = int(row["value"][0][0])
    assert row["params"][1] == [[-2.0, 3.0][k], [1.0, 1.5][k]]
    assert row["log_prior"] == pytest.approx(sum(row["log_prob"]))


def test_seeded_and_reproducible(tmp_path: Path) -> None:
    a = TraceDataset.generate(Branching(), tmp_path / "a", 120, seed=5, traces_per_shard=50)
    b = TraceDataset.generate(Branching(), tmp_path / "b", 120, seed=5, traces_per_shard=50)
    c = TraceDataset.generate(Branching(), tmp_path / "c", 120, seed=6, traces_per_shard=50)
    assert list(a.iter_traces()) == list(b.iter_traces())
    assert list(a.iter_traces()) != list(c.iter_traces())


def test_interrupted_generation_resumes_exactly(tmp_path: Path) -> None:
    reference = _all_rows(
        generate_dataset(Branching(), tmp_path / "ref", 500, seed=9, traces_per_shard=100)
    )
    out = tmp_path / "resumed"
    with pytest.raises(Interrupt):  # killed while writing the third shard
        generate_dataset(
            Branching(), out, 500, seed=9, traces_per_shard=100, on_progress=_interrupt_after(264)
        )
    partial = TraceDataset(out)
    assert len(partial) == 200 and partial.missing_shards == [2, 3, 4]
    # a killed process may also leave a temporary file and a half-written shard behind
    (out / ".shard-000002.parquet.999999999.tmp").write_bytes(b"PAR1 partial")
    data = (out / "shard-000001.parquet").read_bytes()
    (out / "shard-000001.parquet").write_bytes(data[: len(data) // 2])
    generate_dataset(Branching(), out, 500, traces_per_shard=100)  # seed from the manifest
    resumed = _all_rows(out)
    assert [r["trace_id"] for r in resumed] == list(range(500))  # no duplicates, no losses
    assert resumed == reference
    assert not list(out.glob("*.tmp"))


def test_growing_a_dataset_keeps_its_traces(tmp_path: Path) -> None:
    generate_dataset(GaussianMixture(), tmp_path, 150, seed=1, traces_per_shard=100)
    first = _all_rows(tmp_path)
    generate_dataset(GaussianMixture(), tmp_path, 260, seed=1, traces_per_shard=100)
    grown = _all_rows(tmp_path)
    assert len(grown) == 260 and grown[:150] == first


def test_mismatched_resume_is_refused(tmp_path: Path) -> None:
    generate_dataset(GaussianMixture(), tmp_path, 10, seed=1, traces_per_shard=5)
    with pytest.raises(DatasetError, match="seed"):
        generate_dataset(GaussianMixture(), tmp_path, 10, seed=2, traces_per_shard=5)
    with pytest.raises(DatasetError, match="traces per shard"):
        generate_dataset(GaussianMixture(), tmp_path, 10, seed=1, traces_per_shard=4)
    with pytest.raises(DatasetError, match="Branching"):
        generate_dataset(Branching(), tmp_path, 10, seed=1, traces_per_shard=5)


def test_truncated_shard_is_named_and_the_rest_readable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    generate_dataset(Branching(), tmp_path, 300, seed=2, traces_per_shard=100)
    bad = tmp_path / "shard-000001.parquet"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) - 40])  # truncated: the footer is gone
    with caplog.at_level("WARNING"):
        ds = TraceDataset(tmp_path)
    assert str(bad) in ds.corrupt_shards
    assert "shard-000001.parquet" in caplog.text
    assert len(ds) == 200 and ds.shard_indices == [0, 2]
    ids = [r["trace_id"] for r in ds.iter_traces(columns=["trace_id"])]
    assert ids == list(range(100)) + list(range(200, 300))
    assert sum(b.size for b in ds.iter_batches(32, seed=0)) == 200
    with pytest.raises(DatasetError, match=r"shard-000001\.parquet"):
        TraceDataset(tmp_path, strict=True)


def test_corrupt_row_group_found_while_reading(tmp_path: Path) -> None:
    generate_dataset(GaussianMixture(), tmp_path, 200, seed=2, traces_per_shard=100)
    bad = tmp_path / "shard-000000.parquet"
    data = bytearray(bad.read_bytes())
    data[8:400] = b"\x00" * 392  # clobber the data pages, keep the footer
    bad.write_bytes(bytes(data))
    ds = TraceDataset(tmp_path)
    assert ds.complete  # the footer is intact
    rows = list(ds.iter_traces(columns=["trace_id", "value"]))
    assert [r["trace_id"] for r in rows] == list(range(100, 200))
    assert str(bad) in ds.corrupt_shards
    assert str(bad) in TraceDataset(tmp_path).validate()


def test_statistics(tmp_path: Path) -> None:
    ds = TraceDataset.generate(Branching(), tmp_path, 400, seed=4, traces_per_shard=150)
    stats = ds.stats()
    assert stats.num_traces == 400 and sum(stats.trace_types.values()) == 400
    n_visits = stats.addresses[next(a for a in stats.addresses if "Poisson" in a)]
    assert n_visits == 400
    table = ds.read(["trace_type", "address"])
    types = table.column("trace_type").to_pylist()
    assert {t: types.count(t) for t in set(types)} == dict(stats.trace_types)
    lengths = {len(a) for a in table.column("address").to_pylist()}
    assert set(stats.type_lengths.values()) == lengths
    top = stats.most_common_types(1)[0]
    assert top[1] == max(stats.trace_types.values()) and 0 < top[2] <= 1
    assert ds.observation_names == ["obs"]


def test_batches_group_by_type_and_shuffle(tmp_path: Path) -> None:
    ds = TraceDataset.generate(Branching(), tmp_path, 600, seed=7, traces_per_shard=200)
    batches = list(ds.iter_batches(32, seed=1, buffer_size=600))
    assert sum(b.size for b in batches) == 600
    pure = sum(len(set(b.trace_types)) == 1 for b in batches)
    assert pure >= len(batches) // 2  # mostly single-type batches
    order1 = [t for b in ds.iter_tables(32, seed=1) for t in b.column("trace_id").to_pylist()]
    order2 = [t for b in ds.iter_tables(32, seed=2) for t in b.column("trace_id").to_pylist()]
    assert sorted(order1) == list(range(600)) and order1 != order2


def test_batch_from_arrow_equals_batch_from_traces(tmp_path: Path) -> None:
    from rotalumis.core import RNG, TraceHandler
    from rotalumis.core.rng import derive_seed

    model = Branching()
    generate_dataset(model, tmp_path, 40, seed=11, traces_per_shard=40)
    rng = RNG(derive_seed(11, "shard", 0))  # the stream shard 0 was drawn from
    tracer = TraceHandler()
    traces = []
    with tracer:
        for _ in range(40):
            t = tracer.reset()
            model.execute(rng, *())
            traces.append(t)
    a = TraceBatch.from_traces(traces)
    b = TraceBatch.from_arrow(TraceDataset(tmp_path).read())
    assert np.array_equal(a.lengths, b.lengths) and a.trace_types == b.trace_types
    ga = {g.address: g for g in a.groups}
    gb = {g.address: g for g in b.groups}
    assert ga.keys() == gb.keys()
    for k, g in ga.items():
        for field in ("rows", "steps", "values", "params", "log_prior"):
            assert np.allclose(getattr(g, field), getattr(gb[k], field)), (k, field)
    assert np.allclose(a.observations["obs"], b.observations["obs"])


class TensorModel(Model):
    """A tensor-valued latent and a tensor observation."""

    def forward(self) -> None:
        z = sample(Normal(torch.zeros(3), torch.ones(3)), name="z")
        observe(Normal(z.sum() * torch.ones(2, 2), 1.0), name="image")


def test_tensor_values_round_trip(tmp_path: Path) -> None:
    ds = TraceDataset.generate(TensorModel(), tmp_path, 20, seed=1, traces_per_shard=20)
    row = next(ds.iter_traces())
    assert row["value_shape"] == [[3]] and row["observation_shape"] == [[2, 2]]
    assert len(row["params"][0]) == 6  # mean and stddev broadcast to (3,)
    batch = next(ds.iter_batches(20, shuffle=False))
    assert batch.groups[0].values.shape == (20, 3)
    assert batch.observations["image"].shape == (20, 2, 2)


def test_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a trace dataset"):
        TraceDataset(tmp_path)
    (tmp_path / "dataset.json").write_text("{broken")
    with pytest.raises(DatasetError, match="unreadable"):
        TraceDataset(tmp_path)


# Runs in a fresh interpreter that never imports rotalumis: the dataset must be usable by the
# ordinary data tools alone (the example of docs/datasets.md).
_FOREIGN_READER = r"""
import glob, json, sys
import duckdb
import pandas as pd

d = sys.argv[1]
types = duckdb.sql(
    f"SELECT trace_type, count(*) AS n FROM read_parquet('{d}/shard-*.parquet') GROUP BY 1"
).fetchall()
# P(n) from the Poisson draw: the first value of each trace, unnested by DuckDB
pn = duckdb.sql(
    f"SELECT CAST(value[1][1] AS INTEGER) AS n, count(*) AS c "
    f"FROM read_parquet('{d}/shard-*.parquet') GROUP BY 1 ORDER BY 1"
).fetchall()
frame = pd.concat(
    pd.read_parquet(p, columns=["trace_id", "log_prior", "log_likelihood"])
    for p in sorted(glob.glob(f"{d}/shard-*.parquet"))
)
assert "rotalumis" not in sys.modules
print(json.dumps({
    "types": dict(types),
    "pn": dict(pn),
    "ids": sorted(frame["trace_id"].tolist()),
    "log_joint": float((frame["log_prior"] + frame["log_likelihood"]).sum()),
}))
"""


def test_readable_by_duckdb_and_pandas_without_rotalumis(tmp_path: Path) -> None:
    pytest.importorskip("duckdb")
    pytest.importorskip("pandas")
    ds = TraceDataset.generate(Branching(), tmp_path, 300, seed=8, traces_per_shard=120)
    out = subprocess.run(
        [sys.executable, "-c", _FOREIGN_READER, str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    stats = ds.stats()
    assert got["types"] == dict(stats.trace_types)
    assert got["ids"] == list(range(300))
    table = ds.read(["value", "log_prior", "log_likelihood"])
    ns = [int(v[0][0]) for v in table.column("value").to_pylist()]
    assert {int(k): c for k, c in got["pn"].items()} == {n: ns.count(n) for n in set(ns)}
    lp = np.asarray(table.column("log_prior")) + np.asarray(table.column("log_likelihood"))
    assert got["log_joint"] == pytest.approx(float(lp.sum()))
