"""``rotalumis train --dataset DIR`` under a real ``torchrun`` with 2 CPU processes (gloo):
the same training as one process on the same traces, and resume from a DDP checkpoint.

With ``--lr-scaling none``, 2 processes of 32 traces per step train on exactly the steps of
one process of 64 (each rank takes its half of every step, cut from the same
trace-type-sorted buffer), and DDP's mean of the two half-step gradients is the gradient of
the whole step. One process computing that same gradient in two halves (gradient
accumulation) does the very same float32 operations: each half's gradient with the same
shapes and one thread, then ``(g0 + g1) / 2``, where the division by 2 is exact and a sum of
two terms does not depend on its order. So the loss curves agree to the last bits; the
reported losses are means pooled in float64 in another order, hence a tolerance of 1e-6
relative (float32 resolution is 1.2e-7). One process training on whole steps of 64 does
*not* agree to the bit: its full-step sums round differently (about 1e-7 relative), and
Adam's first steps, which move each weight by about the learning rate times the sign of its
gradient, turn the sign of gradients within rounding of zero into visible differences
(about 0.2% of the loss within 3 steps, measured). That is a property of training, not of
DDP, so the exact reference is the accumulating one, written out below.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rotalumis.core.rng import derive_seed
from rotalumis.data import TraceBatch, TraceDataset
from rotalumis.models import Branching
from rotalumis.nn import InferenceNetwork, TrainingConfig
from rotalumis.nn.training._batches import validate, validation_set
from rotalumis.nn.training._checkpoints import make_optimizer

pytestmark = pytest.mark.slow

TOL = 1e-6
COMMON = ("--no-plot", "-q", "--lstm-dim", "16", "--lr", "3e-3", "--checkpoint-every", "512")


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ddp") / "traces"
    # Branching: 11 trace types, addresses met only in later batches (up to 10 Bernoullis)
    TraceDataset.generate(Branching(), directory, 640, seed=3, traces_per_shard=128)
    return directory


def _train(cwd: Path, args: list[str], processes: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "rotalumis.cli"]
    if processes > 1:
        launcher = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={processes}", "-m", "rotalumis.cli",
        ]  # fmt: skip
    cmd = [*launcher, "train", *args, *COMMON]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _progress(checkpoint: Path) -> dict:
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    return json.loads(saved["progress"])


def _accumulated(traces: Path, num_traces: int, schedule: str) -> tuple[list, float]:
    """One process, steps of 64 traces, the gradient accumulated over halves of 32 (the
    loop of ``train_network`` written out, with every address registered up front)."""
    torch.set_num_threads(1)
    train, valid = TraceDataset(traces).split(1)
    config = TrainingConfig(
        num_traces=num_traces, batch_size=64, learning_rate=3e-3, schedule=schedule
    )

    def steps(epoch: int):
        yield from train.iter_tables(64, seed=derive_seed(0, "epoch", epoch))

    torch.manual_seed(derive_seed(0, "init"))
    first = TraceBatch.from_arrow(next(steps(0)))
    net = InferenceNetwork.for_batch(first, {}, lstm_dim=16, mixture_components=5, heads={})
    for table in steps(0):
        net.add_sites(TraceBatch.from_arrow(table))
    net.train()
    optimizer = make_optimizer(net, config)
    valid_set = validation_set(None, valid, config, ())
    done, losses = 0, []
    for epoch in range(num_traces // len(train)):
        for table in steps(epoch):
            n = table.num_rows
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate_at(done)
            optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for half in (table.slice(0, n // 2), table.slice(n // 2, n - n // 2)):
                batch = TraceBatch.from_arrow(half)
                loss = net.loss(batch) * (batch.size * 2 / n)
                loss.backward()
                total += float(loss.detach()) / (batch.size * 2 / n) * batch.size
            for p in optimizer.param_groups[0]["params"]:
                if p.grad is not None:
                    p.grad /= 2
            torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], 10.0)
            optimizer.step()
            done += n
            losses.append([done, total / n])
    return losses, validate(net, valid_set)


def _close(a: list, b: list) -> None:
    assert [x[0] for x in a] == [x[0] for x in b]  # the same traces counts
    for (n, x), (_, y) in zip(a, b, strict=True):
        assert abs(x - y) <= TOL * abs(y), f"after {n} traces: {x} vs {y}"


def test_two_processes_train_as_one_and_resume(traces: Path, tmp_path: Path) -> None:
    data = ["--dataset", str(traces), "-n", "1024"]
    ddp = ["--batch-size", "32", "--lr-scaling", "none"]
    two = _train(tmp_path, [*data, *ddp, "--out", "two.pt"], 2)
    assert "trained on 1024 traces, by 2 processes" in two.stdout
    assert two.stdout.count("network saved") == 1  # rank 0 alone reports and saves
    both = _progress(tmp_path / "two.pt.ckpt")
    losses, valid_loss = _accumulated(traces, 1024, "cosine")
    assert len(losses) == 16  # 2 epochs of 8 steps of 64 traces
    _close(both["loss"], losses)
    _close(both["valid_loss"][-1:], [[1024, valid_loss]])

    # stop half-way, resume under torchrun: the same run as an uninterrupted one (with a
    # constant learning rate, which does not depend on the budget -n)
    constant = [*ddp, "--schedule", "constant", "--out", "resumed.pt"]
    _train(tmp_path, ["--dataset", str(traces), "-n", "512", *constant], 2)
    resumed = _train(tmp_path, [*data, *constant], 2)
    assert "resumed after 512, by 2 processes" in resumed.stdout
    again = _progress(tmp_path / "resumed.pt.ckpt")
    losses, valid_loss = _accumulated(traces, 1024, "constant")
    _close(again["loss"], losses)
    _close(again["valid_loss"][-1:], [[1024, valid_loss]])


ONLINE = """
import sys, torch
from rotalumis.models import Branching
from rotalumis.nn import DistributedConfig, TrainingConfig, launched_rank, train_network
config = TrainingConfig(num_traces=256, batch_size=16, valid_size=32, valid_every=128)
result = train_network(model=Branching(), config=config, network_sizes={"lstm_dim": 8},
                       distributed=DistributedConfig(register_traces=8))
result.network.save(f"{sys.argv[1]}/rank{launched_rank()}.pt")
if launched_rank() == 0:  # one line: both ranks printing at once interleave their output
    print("unseen", sorted(result.unseen_addresses), result.world_size, flush=True)
"""


def test_online_training_with_addresses_met_after_registration(tmp_path: Path) -> None:
    """Online under DDP: addresses first met after the registration traces are counted and
    left untrained (no layers are added mid-run, which DDP cannot follow), training goes on,
    and the two replicas end identical."""
    script = tmp_path / "online.py"
    script.write_text(ONLINE)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
        str(script), str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # 8 registration traces of Branching (n ~ Poisson(3)) miss some of the n-th Bernoullis
    assert "unseen ['forward:" in done.stdout and "] 2" in done.stdout
    assert "was not registered before distributed training" in done.stderr
    a = InferenceNetwork.load(tmp_path / "rank0.pt").state_dict()
    b = InferenceNetwork.load(tmp_path / "rank1.pt").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_epochs_until_stopped_under_torchrun(traces: Path, tmp_path: Path) -> None:
    """The default offline mode (no -n: epochs with early stopping on the held-out shard)
    under torchrun: every rank stops at the same epoch, rank 0 reports and saves."""
    args = ["--dataset", str(traces), "--max-epochs", "3", "--patience", "1", "--out", "e.pt"]
    done = _train(tmp_path, args, 2)
    assert "by 2 processes" in done.stdout and "kept epoch" in done.stdout
    assert (tmp_path / "e.pt").exists() and (tmp_path / "e.pt.ckpt").exists()
