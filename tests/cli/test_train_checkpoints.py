"""``rotalumis train`` and its checkpoint (issue 12, defect 3): a rerun with the same
settings resumes (and says when there is nothing left to do), other settings are an error,
``--fresh`` starts over."""

from __future__ import annotations

from pathlib import Path

from forked_cli import ROOT, ForkedCLI

EXAMPLE = str(ROOT / "examples" / "unknown_mean.py")
TINY = ("-n", "64", "--batch-size", "32", "--no-plot", "-q", "--lstm-dim", "8")


def test_rerun_resume_and_fresh(cli: ForkedCLI, tmp_path: Path) -> None:
    net = tmp_path / "net.pt"
    first = cli("train", f"{EXAMPLE}:model", "--out", str(net), *TINY)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("trained on 64 traces (")
    again = cli("train", f"{EXAMPLE}:model", "--out", str(net), *TINY)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"checkpoint {net}.ckpt already holds the whole training")
    more = cli("train", f"{EXAMPLE}:model", "--out", str(net), *TINY, "-n", "128")
    assert more.returncode == 0, more.stderr
    assert more.stdout.startswith("trained on 128 traces, resumed after 64 (")
    other = cli("train", f"{EXAMPLE}:model", "--out", str(net), *TINY, "--seed", "1")
    assert other.returncode == 2
    assert "belongs to another training run: seed 0 (now 1)" in other.stderr
    assert "--fresh" in other.stderr
    fresh = cli("train", f"{EXAMPLE}:model", "--out", str(net), *TINY, "--seed", "1", "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.startswith("trained on 64 traces (")


def test_in_memory_offline_training_and_its_checkpoint(cli: ForkedCLI, tmp_path: Path) -> None:
    data = tmp_path / "d"
    made = cli("dataset", "generate", f"{EXAMPLE}:model", "-n", "96", "--traces-per-shard", "32",
               "--out", str(data), "-q")  # fmt: skip
    assert made.returncode == 0, made.stderr
    net, opts = tmp_path / "m.pt", ("--max-epochs", "2", "--patience", "1", "--no-plot", "-q")
    args = ("train", "--dataset", str(data), "--out", str(net), "--lstm-dim", "8", *opts)
    done = cli(*args, "--in-memory")
    assert done.returncode == 0, done.stderr
    assert "kept epoch" in done.stdout and net.exists()
    # the checkpoint records in-memory batches: a streamed rerun is another training run
    streamed = cli(*args)
    assert streamed.returncode == 2
    assert "--in-memory" in streamed.stderr and "--fresh" in streamed.stderr
    online = cli("train", f"{EXAMPLE}:model", "--out", str(net), *TINY, "--in-memory")
    assert online.returncode == 2
    assert "error: --in-memory is for offline training: give --dataset DIR" in online.stderr
