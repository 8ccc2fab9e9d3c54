"""Damaged and crafted data files: a clear DatasetError naming the file, never a hang or a
raw KeyError/TypeError/RecursionError (issue 12, defect 7).

For the dataset manifest, the shard statistics and the saved ``Empirical``: a table of the
cases the issue found and their relatives, a fuzz of every metadata field (deleted, wrong
type, huge or negative numbers), truncations, and the CLI's answer (one ``error:`` line,
exit status 2). Network files are in ``test_bad_network_files.py``.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from file_fuzz import check_truncations, mutations, rewrite_member, updated
from typer.testing import CliRunner

from rotalumis.cli.main import app
from rotalumis.core import DatasetError
from rotalumis.data import Empirical, TraceDataset, generate_dataset
from rotalumis.data.dataset.schema import META_STATS
from rotalumis.models import UnknownMean

pytestmark = pytest.mark.timeout(120)  # a hang is a failure, not a stuck CI job


def one_error_line(args: list[str]) -> str:
    """Run the CLI in-process; assert exit status 2 and one ``error:`` line; return it."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# -- dataset manifest -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "ds"
    generate_dataset(UnknownMean(), path, 20, seed=1, traces_per_shard=10)
    return path


@pytest.fixture
def copy(dataset: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dataset, tmp_path / "ds"))


def _manifest(directory: Path) -> dict[str, Any]:
    return dict(json.loads((directory / "dataset.json").read_text()))


MANIFEST_CASES: dict[str, Any] = {
    "num_shards 10**12": {"num_shards": 10**12},
    "consistent but 10**15 shards": {"num_traces": 10**15, "traces_per_shard": 1,
                                     "num_shards": 10**15},
    "num_shards does not add up": {"num_shards": 7},
    "num_traces missing": {"num_traces": None},
    "traces_per_shard missing": {"traces_per_shard": None},
    "seed missing": {"seed": None},
    "traces_per_shard a string": {"traces_per_shard": "10"},
    "num_traces a boolean": {"num_traces": True},
    "num_shards a float": {"num_shards": 2.0},
    "traces_per_shard zero": {"traces_per_shard": 0},
    "num_traces negative": {"num_traces": -20},
    "rows_per_group zero": {"rows_per_group": 0},
    "model a list": {"model": ["x"]},
    "truncated": b'{"format": "rotalumis-trace-dataset", "schema_ver',
    "not JSON": b"\x00\x01PAR1",
    "not UTF-8": b'{"format": "\xff\xfe"}',
    "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
    "a list": b"[1, 2, 3]",
}  # fmt: skip


def _write_case(directory: Path, case: Any) -> None:
    if isinstance(case, bytes):
        (directory / "dataset.json").write_bytes(case)
        return
    (directory / "dataset.json").write_text(json.dumps(updated(_manifest(directory), case)))


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_bad_manifest_is_a_dataset_error_naming_it(copy: Path, case: str) -> None:
    _write_case(copy, MANIFEST_CASES[case])
    with pytest.raises(DatasetError, match=r"dataset\.json") as info:
        TraceDataset(copy)
    assert str(copy) in str(info.value) and "\n" not in str(info.value)
    line = one_error_line(["dataset", "info", str(copy)])
    assert str(copy) in line


def test_manifest_fuzz(copy: Path) -> None:
    original = _manifest(copy)
    tried = 0
    for what, m in mutations(original):
        (copy / "dataset.json").write_text(json.dumps(m))
        try:
            ds = TraceDataset(copy)
        except DatasetError as exc:
            assert "dataset.json" in str(exc), what
        else:  # harmless mutations (e.g. of the model's name) must still read the data
            assert len(ds) == 20, what
        tried += 1
    assert tried > 50


def test_a_million_missing_shards_are_listed_quickly(copy: Path) -> None:
    m = _manifest(copy)
    m.update(num_traces=10**7, num_shards=10**6)  # 10 traces per shard, as written
    (copy / "dataset.json").write_text(json.dumps(m))
    ds = TraceDataset(copy)  # valid: generation unfinished; one directory listing
    assert len(ds.missing_shards) == 10**6 - 2 and len(ds) == 20
    result = CliRunner().invoke(app, ["dataset", "info", str(copy)])
    assert result.exit_code == 0 and "2-999999" in result.output


def test_generation_refuses_more_shards_than_readers_accept(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="raise traces_per_shard"):
        generate_dataset(UnknownMean(), tmp_path / "big", 10**7, seed=0, traces_per_shard=1)


# -- shard statistics and schema ---------------------------------------------------------------
STATS_CASES: dict[str, bytes] = {
    "not JSON": b"{not json",
    "num_traces a string": b'{"num_traces": "10", "trace_types": {}, "type_lengths": {}, '
    b'"addresses": {}, "distributions": {}, "observations": {}}',
    "trace_types a list": b'{"num_traces": 10, "trace_types": [1], "type_lengths": {}, '
    b'"addresses": {}, "distributions": {}, "observations": {}}',
    "address count a string": b'{"num_traces": 10, "trace_types": {}, "type_lengths": {}, '
    b'"addresses": {"a": "x"}, "distributions": {}, "observations": {}}',
    "observation shape negative": b'{"num_traces": 10, "trace_types": {}, "type_lengths": {}, '
    b'"addresses": {}, "distributions": {}, "observations": {"y": [-1]}}',
    "a number": b"12",
}


@pytest.mark.parametrize("case", sorted(STATS_CASES))
def test_bad_shard_statistics_mark_the_shard_corrupt(copy: Path, case: str) -> None:
    shard = copy / "shard-000000.parquet"
    table = pq.read_table(shard)
    meta = dict(table.schema.metadata)
    meta[META_STATS] = STATS_CASES[case]
    pq.write_table(table.replace_schema_metadata(meta), shard)
    ds = TraceDataset(copy)
    assert list(ds.corrupt_shards) == [str(shard)] and len(ds) == 10
    with pytest.raises(DatasetError, match="shard-000000"):
        TraceDataset(copy, strict=True)


def test_shard_with_other_columns_is_corrupt(copy: Path) -> None:
    shard = copy / "shard-000001.parquet"
    table = pq.read_table(shard)
    pq.write_table(table.drop_columns(["value"]), shard)
    ds = TraceDataset(copy)
    assert "schema" in ds.corrupt_shards[str(shard)] and len(ds) == 10


# -- saved Empirical ---------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path: Path) -> Path:
    emp = Empirical(
        {"a": torch.randn(4, 2), "b": {"c": np.arange(4)}},
        log_weights=np.zeros(4),
        latents={"mu": np.arange(4.0), "obj": ["s", 1, None, [1, 2]]},
        name="m",
    )
    emp.metadata = {"engine": "is"}
    out = tmp_path / "run"
    out.mkdir()
    emp.save(out / "empirical.npz")
    return out / "empirical.npz"


def _metadata(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as zf:
        return dict(json.loads(zf.read("metadata.json")))


def _nested_spec(depth: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": "scalar", "data": "c4.npy", "present": None}
    for _ in range(depth):
        spec = {"kind": "record", "present": None, "length": 4, "fields": {"x": spec}}
    return spec


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


EMPIRICAL_CASES: dict[str, Any] = {
    "record specs nested 100 deep": {"values": _nested_spec(100)},
    "record specs nested 5000 deep": lambda: b'{"values": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001,
    "length missing": {"length": None},
    "length a string": {"length": "4"},
    "length 10**12": {"length": 10**12},
    "length negative": {"length": -1},
    "log_weights missing": {"log_weights": None},
    "log_weights names no member": {"log_weights": "nothing.npy"},
    "log_weights a number": {"log_weights": 3},
    "values kind unknown": {"values": {"kind": "mystery", "data": "c4.npy"}},
    "values a list": {"values": [1, 2]},
    "values without kind": {"values": {"data": "c4.npy"}},
    "latents a list": {"latents": ["mu"]},
    "latent data not a string": {"latents": {"mu": {"kind": "scalar", "data": 4}}},
    "torch dtype unknown": {"values": {"kind": "array", "data": "c1.npy", "torch_dtype": "f"}},
    "traces names no member": {"traces": "traces.json"},
    "info a list": {"info": [1]},
    "npy header declares 10**12 rows": ("log_weights.npy", _npy_header((10**12,))),
    "npy header declares 4 rows of 10**9": ("c4.npy", _npy_header((4, 10**9))),
    "object column with bad tensor": ("c5.json", b'[{"__tensor__": [1], "dtype": "no"}, 1, 2, 3]'),
    "object column nested 100000 deep": ("c5.json", b"[" * 100_000 + b"]" * 100_000),
}  # fmt: skip


def _apply(path: Path, case: Any) -> None:
    if callable(case):
        rewrite_member(path, "metadata.json", case())
    elif isinstance(case, tuple):
        rewrite_member(path, *case)
    else:
        meta = updated(_metadata(path), case)
        rewrite_member(path, "metadata.json", json.dumps(meta).encode())


@pytest.mark.parametrize("case", sorted(EMPIRICAL_CASES))
def test_bad_empirical_is_a_dataset_error_naming_it(saved: Path, case: str) -> None:
    _apply(saved, EMPIRICAL_CASES[case])
    with pytest.raises(DatasetError) as info:
        Empirical.load(saved)
    assert str(saved) in str(info.value)
    assert str(saved) in one_error_line(["report", str(saved.parent)])


def test_empirical_fuzz_and_truncation(saved: Path) -> None:
    data = saved.read_bytes()
    original = _metadata(saved)
    tried = 0
    for what, meta in mutations(original):
        saved.write_bytes(data)
        rewrite_member(saved, "metadata.json", json.dumps(meta).encode())
        try:
            Empirical.load(saved)
        except DatasetError as exc:
            assert str(saved) in str(exc), what
        tried += 1
    tried += check_truncations(saved, data, Empirical.load, DatasetError)
    assert tried > 200


def test_saving_refuses_what_loading_would(tmp_path: Path) -> None:
    value: dict[str, Any] = {"x": np.zeros(2)}
    for _ in range(40):
        value = {"x": value}
    with pytest.raises(ValueError, match="nested deeper than 32"):
        Empirical(value).save(tmp_path / "deep.npz")
    assert list(tmp_path.iterdir()) == []


# -- the other files of a run directory (what `rotalumis report` reads) ------------------------
COMPANION_CASES: dict[str, tuple[str, bytes]] = {
    "summary.json not JSON": ("summary.json", b"{oops"),
    "summary.json a list": ("summary.json", b"[1, 2]"),
    "summary.json nested 100000 deep": ("summary.json", b"[" * 100_000 + b"]" * 100_000),
    "address structure a list": ("address_structure.json", b"[1]"),
    "address structure with a bad site": (
        "address_structure.json",
        b'{"format": "rotalumis.address_structure", "version": 1, "sites": ["x"], "types": []}',
    ),
    "address structure with a bad count": (
        "address_structure.json",
        b'{"format": "rotalumis.address_structure", "version": 1, "sites": [], '
        b'"types": [{"addresses": ["a"], "count": "many"}]}',
    ),
    "address structure nested 100000 deep": (
        "address_structure.json",
        b"[" * 100_000 + b"]" * 100_000,
    ),
}


@pytest.mark.parametrize("case", sorted(COMPANION_CASES))
def test_bad_run_directory_companion_is_one_error_line(saved: Path, case: str) -> None:
    name, data = COMPANION_CASES[case]
    (saved.parent / name).write_bytes(data)
    assert name in one_error_line(["report", str(saved.parent)])
