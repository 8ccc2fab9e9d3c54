"""``rotalumis surrogate train/check`` and ``rotalumis run --surrogate`` (forked real command)."""

from __future__ import annotations

import json
from pathlib import Path

from forked_cli import ROOT, ForkedCLI

REFERENCE = str(ROOT / "examples" / "reference_models.py")
EXAMPLE = str(ROOT / "examples" / "unknown_mean.py")


def test_train_run_and_check_a_surrogate(cli: ForkedCLI, tmp_path: Path) -> None:
    s = tmp_path / "s.pt"
    r = cli("surrogate", "train", f"{REFERENCE}:branching", "-n", "300", "--lstm-dim", "16",
            "--out", str(s), "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "surrogate of Branching" in r.stdout and s.is_file()
    out = tmp_path / "run"
    r = cli("run", f"{REFERENCE}:branching", "--surrogate", str(s), "-e", "is", "-n", "200",
            "-o", "obs=2", "--seed", "1", "--out", str(out), "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["surrogate"]["executions"] == 200
    assert summary["model"] == "Surrogate(Branching)"
    r = cli("run", "-", "--surrogate", str(s), "-e", "rmh", "-n", "100", "-o", "obs=2", "-q")
    assert r.returncode == 0, r.stderr
    r = cli("surrogate", "check", str(s), f"{REFERENCE}:branching", "-n", "200",
            "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    numbers = json.loads(r.stdout)
    assert 0.0 <= numbers["trace_type_tv"] <= 1.0
    assert (out / "surrogate_fidelity.json").is_file()
    r = cli("report", str(out))
    assert r.returncode == 0, r.stderr
    assert "Surrogate fidelity" in (out / "report.html").read_text()


def test_bad_surrogate_input_is_one_error_line(cli: ForkedCLI, tmp_path: Path) -> None:
    r = cli("surrogate", "train", "--out", str(tmp_path / "s.pt"))
    assert r.returncode == 2 and r.stderr.startswith("error: give either MODEL or --dataset")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    r = cli("run", f"{EXAMPLE}:model", "--surrogate", str(bad), "-n", "10", "-o", "obs0=1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "bad.pt" in r.stderr
    s = tmp_path / "s.pt"
    r = cli("surrogate", "train", f"{REFERENCE}:branching", "-n", "50", "--lstm-dim", "8",
            "--out", str(s), "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = cli("run", f"{EXAMPLE}:model", "--surrogate", str(s), "-n", "10", "-o", "obs0=1")
    assert r.returncode == 2 and "imitates model 'Branching', not 'UnknownMean'" in r.stderr
    r = cli("surrogate", "train", f"{REFERENCE}:branching", "-n", "0", "--out", str(s))
    assert r.returncode == 2 and "num_traces" in r.stderr
    r = cli("surrogate", "train", f"{REFERENCE}:branching", "--validation", "-1", "--out", str(s))
    assert r.returncode == 2 and "validation_traces" in r.stderr


def test_train_with_held_out_traces(cli: ForkedCLI, tmp_path: Path) -> None:
    s = tmp_path / "s.pt"
    r = cli("surrogate", "train", f"{REFERENCE}:branching", "-n", "100", "--lstm-dim", "8",
            "--epochs", "2", "--validation", "50", "--out", str(s), "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "trained on 150 traces" in r.stdout and "held-out -log q per epoch: " in r.stdout
    assert "kept epoch " in r.stdout
