"""``rotalumis run --out DIR`` replaces the results as a whole (issue 12, defect 4).

Before, the files were written one by one into DIR: a run that failed or was killed midway
left a new posterior beside an old summary and plot, and a run for another model kept the
old report and address graphs beside its results.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
from forked_cli import ROOT, ForkedCLI

EXAMPLE = str(ROOT / "examples" / "unknown_mean.py")
BRANCHING = str(ROOT / "examples" / "reference_models.py")


def _files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_a_run_for_another_model_leaves_nothing_of_the_old_one(
    cli: ForkedCLI, tmp_path: Path
) -> None:
    out = tmp_path / "res"
    r = cli("run", f"{BRANCHING}:branching", "-e", "lmh", "-n", "300", "-o", "obs=2",
            "--seed", "0", "--report", "--out", str(out), "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert {"report.html", "address_structure.json", "address_graphs"} <= _files(out)
    r = cli("run", f"{EXAMPLE}:model", "-n", "300", "-o", "obs0=8", "--seed", "0",
            "--out", str(out), "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert _files(out) == {"empirical.npz", "summary.json", "posterior.png"}
    assert json.loads((out / "summary.json").read_text())["model"] == "UnknownMean"
    # a directory like any other: not private, no staging directories left beside it
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failure_while_writing_keeps_the_old_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rotalumis.cli.main import main
    from rotalumis.diagnostics import plots

    out = tmp_path / "res"
    args = ["run", f"{EXAMPLE}:model", "-n", "200", "-o", "obs0=8", "--out", str(out), "-q"]
    monkeypatch.setattr(sys, "argv", ["rotalumis", *args, "--seed", "1"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    # the plot is written after the posterior and the summary: fail there
    monkeypatch.setattr(plots, "plot_posterior", disk_full)
    monkeypatch.setattr(sys, "argv", ["rotalumis", *args, "--seed", "2"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 2
    assert "No space left on device" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old set, intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


def test_report_refuses_a_directory_that_mixes_two_runs(cli: ForkedCLI, tmp_path: Path) -> None:
    for seed in ("1", "2"):
        r = cli("run", f"{EXAMPLE}:model", "-n", "200", "-o", "obs0=8", "--seed", seed,
                "--out", str(tmp_path / seed), "-q")  # fmt: skip
        assert r.returncode == 0, r.stderr
    shutil.copy(tmp_path / "2" / "summary.json", tmp_path / "1" / "summary.json")
    r = cli("report", str(tmp_path / "1"))
    assert r.returncode == 2
    assert "mixes the files of two runs" in r.stderr
    assert cli("report", str(tmp_path / "2")).returncode == 0
