"""The command line around inference compilation: dataset generate/info, train, run --engine ic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from rotalumis.cli.main import app

torch.set_num_threads(1)
runner = CliRunner()

MODEL_FILE = """
from rotalumis.models import GaussianMixture

mixture = GaussianMixture()
"""


@pytest.fixture
def model_file(tmp_path: Path) -> str:
    path = tmp_path / "models.py"
    path.write_text(MODEL_FILE)
    return f"{path}:mixture"


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def test_generate_info_train_run(model_file: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = invoke("dataset", "generate", model_file, "-n", "600", "--out", data, "--seed", "3",
               "--traces-per-shard", "200", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "600 traces of GaussianMixture" in r.output
    r = invoke("dataset", "info", data, "--top", "3")
    assert r.exit_code == 0, r.output
    assert "600 of 600 traces" in r.output and "Categorical" in r.output
    net = tmp_path / "net.pt"
    r = invoke("train", model_file, "--dataset", data, "-n", "1200", "--out", net,
               "--lstm-dim", "32", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert net.exists() and Path(str(net) + ".ckpt").exists()
    assert "validation loss" in r.output and "last shard, 200 traces, held out" in r.output
    curve = tmp_path / "net.loss.png"
    assert f"learning curve {curve}" in r.output
    assert curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = invoke("run", model_file, "--engine", "ic", "--network", net, "-n", "200",
               "-o", "obs=2.0", "--seed", "0", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "ic posterior of GaussianMixture" in r.output


def test_generate_resumes(model_file: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ["dataset", "generate", model_file, "-n", "300", "--out", data, "--seed", "1",
            "--traces-per-shard", "100", "-q"]  # fmt: skip
    assert invoke(*args).exit_code == 0
    shard = data / "shard-000001.parquet"
    shard.unlink()  # as if the run had been killed before this shard
    r = invoke(*args)
    assert r.exit_code == 0 and shard.exists()
    r = invoke("dataset", "info", data)
    assert "300 of 300 traces" in r.output


def test_info_reports_a_corrupt_shard(model_file: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    invoke("dataset", "generate", model_file, "-n", "200", "--out", data, "--seed", "1",
           "--traces-per-shard", "100", "-q")  # fmt: skip
    bad = data / "shard-000000.parquet"
    bad.write_bytes(bad.read_bytes()[:100])
    r = invoke("dataset", "info", data)
    assert r.exit_code == 1
    assert "corrupt shard" in r.output and "shard-000000.parquet" in r.output
    assert "100 of 200 traces" in r.output


def test_user_errors_are_one_line(model_file: str, tmp_path: Path) -> None:
    r = invoke("dataset", "info", tmp_path)
    assert r.exit_code == 2 and "not a trace dataset" in r.output
    r = invoke("run", model_file, "--engine", "ic", "-n", "10", "-o", "obs=1.0")
    assert r.exit_code == 2 and "network" in r.output
    r = invoke("run", model_file, "--engine", "ic", "--network", tmp_path / "none.pt", "-n", "10")
    assert r.exit_code == 2 and "not found" in r.output
    r = invoke("train", "-n", "10")
    assert r.exit_code == 2 and "--dataset" in r.output


FLAKY_FILE = """
from rotalumis.core import Model, Normal, Uniform, observe, sample


class Flaky(Model):
    def forward(self):
        u = sample(Uniform(0.0, 1.0), name="u")
        if u < 0.2:
            raise ArithmeticError("diverged")
        noise = sum(sample(Normal(0.0, 0.1)) for _ in range(20))
        observe(Normal(u + noise, 0.5), name="y")
        return u


flaky = Flaky()
"""


def test_invalid_runs_interest_and_proposal_only(tmp_path: Path) -> None:
    path = tmp_path / "flaky.py"
    path.write_text(FLAKY_FILE)
    target = f"{path}:flaky"
    r = invoke("dataset", "generate", target, "-n", "300", "--out", tmp_path / "d", "-q",
               "--seed", "0")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "simulations invalid" in r.output and "raised ArithmeticError" in r.output
    r = invoke("dataset", "info", tmp_path / "d")
    assert r.exit_code == 0 and "raised ArithmeticError" in r.output, r.output
    r = invoke("dataset", "generate", target, "-n", "300", "--out", tmp_path / "e", "-q",
               "--on-invalid", "raise")  # fmt: skip
    assert r.exit_code == 2 and "error:" in r.output and "ArithmeticError" in r.output
    net = tmp_path / "net.pt"
    r = invoke("train", target, "-n", "256", "--out", net, "--lstm-dim", "8", "-q",
               "--interest", "u", "--no-plot")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "simulations:" in r.output and "raised ArithmeticError" in r.output
    r = invoke("run", target, "-e", "ic", "--network", net, "-n", "50", "-o", "y=0.5",
               "--proposal-only", "--seed", "1", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "u" in r.output and "50 samples" in r.output
    r = invoke("run", target, "-e", "is", "-n", "50", "-o", "y=0.5", "--proposal-only")
    assert r.exit_code == 2 and "--proposal-only only applies to -e ic, not -e is" in r.output
