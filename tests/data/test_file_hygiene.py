"""File hygiene of the writers (issue 12, defect 10), through their public APIs.

Temporary files used to have predictable names (``OUT/report.html.tmp``, ``.net.pt.PID.tmp``)
and were opened following symlinks, so a symlink planted there redirected the write to any
file the user can write; ``empirical.npz`` was 0600 while its companions were 0644. Now every
writer uses ``rotalumis.core.files.atomic_write`` (tested on its own in
``tests/core/test_files.py``). These tests plant symlinks at every name the old code used and
check permissions under two umasks.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from rotalumis.data import generate_dataset
from rotalumis.diagnostics.report import save_address_structure, write_report
from rotalumis.models import UnknownMean
from rotalumis.nn import InferenceNetwork
from rotalumis.nn.embeddings import ObservationSpec
from rotalumis.nn.heads import SiteSpec
from rotalumis.nn.network import NetworkConfig

torch.set_num_threads(1)
OBS = {"obs0": 8.0, "obs1": 9.0}


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask) and None
    os.umask(old)


def _network() -> InferenceNetwork:
    config = NetworkConfig(
        observations=(ObservationSpec("obs0"),),
        observation_dim=4, lstm_dim=4, address_dim=2, value_dim=2,
    )  # fmt: skip
    return InferenceNetwork(config, (SiteSpec("mu", "Normal", "real", 1, (), 2),))


def _write_run(out: Path) -> list[Path]:
    result = UnknownMean().posterior(
        200, engine="is", observe=OBS, seed=0, keep_traces=True, progress=False
    )
    result.save(out / "empirical.npz")
    save_address_structure(result, out)
    write_report(out)
    return [out / "empirical.npz", out / "address_structure.json", out / "report.html"]


def _write_network(out: Path) -> list[Path]:
    return [_network().save(out / "net.pt")]


def _write_dataset(out: Path) -> list[Path]:
    generate_dataset(UnknownMean(), out, 20, seed=0, traces_per_shard=10)
    return [out / "dataset.json", out / "shard-000000.parquet", out / "shard-000001.parquet"]


WRITERS = {"run and report": _write_run, "network": _write_network, "dataset": _write_dataset}


def _plant(out: Path, victim: Path) -> list[Path]:
    """Symlinks to ``victim`` at every temporary name the old writers used."""
    pid = os.getpid()
    names = ["report.html.tmp", "address_structure.json.tmp", f".net.pt.{pid}.tmp",
             f".dataset.json.{pid}.tmp", f".shard-000000.parquet.{pid}.tmp",
             f".shard-000001.parquet.{pid}.tmp", "summary.json.tmp"]  # fmt: skip
    links = [out / n for n in names]
    for link in links:
        link.symlink_to(victim)
    return links


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_planted_symlinks_are_not_followed(tmp_path: Path, writer: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch")
    out = tmp_path / "out"
    out.mkdir()
    links = _plant(out, victim)
    written = WRITERS[writer](out)
    assert victim.read_text() == "do not touch"
    for path in written:
        assert path.is_file() and not path.is_symlink() and path.stat().st_size > 0, path
    # the planted links are left alone (not ours), and no temporary file is left behind
    assert all(link.is_symlink() for link in links)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp") and p not in links]


@pytest.mark.parametrize("mask", [0o022, 0o027], ids=["umask 022", "umask 027"])
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_files_get_the_permissions_of_the_umask(
    tmp_path: Path, writer: str, mask: int, umask: Callable[[int], None]
) -> None:
    umask(mask)
    for path in WRITERS[writer](tmp_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path


def test_report_companions_share_permissions(tmp_path: Path, umask: Callable[[int], None]) -> None:
    _write_run(tmp_path)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.rglob("*") if p.is_file()}
    assert set(modes.values()) == {0o644}, modes
