"""Inference compilation on the sbibm tasks, side by side with sbi's NPE: C2ST and training time.

For each task and simulation budget N (one run, the same N simulations for both):

* **rotalumis**: a network with a flow head (``heads={"vector": "flow"}``) trained on the N
  simulations (``train_on_dataset``: 10% held out, epochs until the validation loss has
  not improved for 20, the best epoch kept; the dataset decoded once, ``in_memory``). For
  each observation, IC importance sampling
  with ``--is-traces`` traces (that many simulator calls). Two rows: ``10,000`` draws of the
  network's proposal alone (``engine="ic", proposal_only=True``: no simulator call,
  comparable to NPE), and importance sampling, ``10,000`` draws resampled by weight.
* **sbi**: ``NPE(density_estimator="nsf")`` trained on the same N simulations in the sbi venv
  (``make sbi-venv``), 10,000 posterior samples per observation.

C2ST (``rotalumis.diagnostics.c2st``, sbibm's classifier) against sbibm's 10,000 reference
samples. Results are appended to ``OUT/results.jsonl``; a rerun skips what is there, so the
long runs are resumable. ``--table`` prints the README tables from it. Torch uses one thread.

``OUT`` defaults to ``benchmarks/sbibm_runs``, which is kept in git: ``results.jsonl`` and the
trained networks (``nets/TASK-N.pt``, about 1-3 MB each), so that the README's numbers can be
traced to their rows and a later session scores the remaining observations with the same
network instead of a new training. The datasets (``data/``, regenerated from the seed) and the
training checkpoints (``*.ckpt``) and the inputs handed to the sbi worker are ignored.

    nohup .venv/bin/python benchmarks/bench_sbi_tasks.py --budgets 10000 > bench.log 2>&1 &
    .venv/bin/python benchmarks/bench_sbi_tasks.py --table
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sbibm_reference import observation, reference_samples

from rotalumis.data import TraceDataset
from rotalumis.diagnostics import c2st
from rotalumis.models import SBI_TASKS
from rotalumis.nn import BudgetConfig, InferenceNetwork, simulate_dataset, train_on_dataset

ROOT = Path(__file__).resolve().parent.parent
SBI_PYTHON = ROOT / ".venv-sbi" / "bin" / "python"
# sbibm paper, single-round NPE (mean C2ST over its ten observations), at 10^4 / 10^5
NPE_PUBLISHED = {
    "two_moons": {10_000: 0.606, 100_000: 0.542},
    "gaussian_linear": {10_000: 0.552, 100_000: 0.506},
    "slcp": {10_000: 0.901, 100_000: 0.831},
    "gaussian_mixture": {10_000: 0.615, 100_000: 0.548},
}
NETWORK = {"observation_dim": 64, "lstm_dim": 64, "heads": {"vector": "flow"}}
NUM_SAMPLES = 10_000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Results:
    """Records in a JSON-lines file, keyed so that a rerun skips finished work."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        if path.exists():
            self.rows = [json.loads(line) for line in path.read_text().splitlines() if line]

    def find(self, **key: Any) -> dict[str, Any] | None:
        for row in self.rows:
            if all(row.get(k) == v for k, v in key.items()):
                return row
        return None

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def dataset(task: str, budget: int, out: Path, seed: int) -> TraceDataset:
    """The ``budget`` simulations of ``task`` (written once, resumable)."""
    return simulate_dataset(SBI_TASKS[task](), out / "data" / f"{task}-{budget}", budget, seed=seed)


def train_rotalumis(
    task: str, budget: int, out: Path, config: BudgetConfig, results: Results
) -> Path:
    net_path = out / "nets" / f"{task}-{budget}.pt"
    if (
        results.find(kind="train", method="rotalumis", task=task, budget=budget)
        and net_path.exists()
    ):
        return net_path
    ds = dataset(task, budget, out, config.seed)
    log(f"{task} N={budget}: training the rotalumis network ({config.batch_size} per batch)")
    result = train_on_dataset(
        ds,
        config=config,
        checkpoint=net_path.with_name(net_path.name + ".ckpt"),
        network_sizes=NETWORK,
    )
    result.network.save(net_path)
    epochs = result.traces / len(ds.split(1)[0])
    results.add(
        {"kind": "train", "method": "rotalumis", "task": task, "budget": budget,
         "seconds": result.seconds, "epochs": epochs, "batch_size": config.batch_size,
         "learning_rate": config.learning_rate, "in_memory": config.in_memory,
         "epoch_seconds": result.seconds / epochs,
         "best_valid_loss": result.best_valid_loss}
    )  # fmt: skip
    log(f"{task} N={budget}: trained in {result.seconds:.0f} s, {epochs:.0f} epochs")
    return net_path


def simulations(ds: TraceDataset) -> tuple[np.ndarray, np.ndarray]:
    """``(theta, x)`` of every trace of a task dataset."""
    thetas, xs = [], []
    for batch in ds.iter_batches(4096, shuffle=False):
        (group,) = batch.groups
        theta = np.empty_like(group.values)
        theta[group.rows] = group.values
        thetas.append(theta)
        xs.append(batch.observations["x"].reshape(batch.size, -1))
    return np.concatenate(thetas), np.concatenate(xs)


def run_sbi(task: str, budget: int, obs: list[int], out: Path, seed: int, results: Results) -> Path:
    path = (out / "sbi" / f"{task}-{budget}.npz").resolve()  # the worker runs elsewhere
    if results.find(kind="train", method="sbi", task=task, budget=budget) and path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    theta, x = simulations(dataset(task, budget, out, seed))
    data = path.with_name(path.stem + "-input.npz")
    observations = np.stack([observation(task, k) for k in obs])
    np.savez(data, theta=theta, x=x, observations=observations, numbers=np.asarray(obs))
    log(f"{task} N={budget}: training sbi NPE")
    subprocess.run(
        [str(SBI_PYTHON), str(ROOT / "benchmarks" / "_sbi_worker.py"), "--task", task,
         "--data", str(data), "--out", str(path), "--seed", str(seed)],
        check=True,
        cwd=path.parent,  # sbi writes its tensorboard logs (sbi-logs/) into the working directory
    )  # fmt: skip
    info = json.loads(Path(str(path) + ".json").read_text())
    results.add({"kind": "train", "method": "sbi", "task": task, "budget": budget,
                 "observations": obs, **info})  # fmt: skip
    log(f"{task} N={budget}: sbi trained in {info['seconds']:.0f} s, {info['epochs']} epochs")
    return path


def with_sequence(net_path: Path, ds: TraceDataset) -> Path:
    """``net_path``, its network given the recorded sequence of proposed choices that
    ``proposal_only`` sampling needs (networks saved before it was recorded lack it; it is
    read off the training data, which is what training records it from)."""
    net = InferenceNetwork.load(net_path)
    if net.sequence.sites is not None:
        return net_path
    batch = next(iter(ds.iter_batches(256, shuffle=False)))
    if net.add_sites(batch):
        raise RuntimeError(f"{net_path}: the dataset has addresses the network never saw")
    net.save(net_path)
    return net_path


def evaluate(
    task: str, budget: int, k: int, net: Any, is_traces: int, results: Results, prefix: str = ""
) -> None:
    """The proposal-only row (``proposal_only=True``: the network alone, no simulator call)
    and the IC importance-sampling row (``is_traces`` simulator calls) for observation ``k``."""
    key = {"kind": "c2st", "task": task, "budget": budget, "observation": k}
    model = SBI_TASKS[task]()
    ref = reference_samples(task, k)
    x_o = {"x": observation(task, k)}
    net_arg = str(net) if isinstance(net, Path) else net
    if not results.find(**key, method=prefix + "proposal", proposal_only=True):
        start = time.perf_counter()
        post = model.posterior(NUM_SAMPLES, engine="ic", observe=x_o, network=net_arg,
                               proposal_only=True, seed=2000 + k, progress=False)  # fmt: skip
        seconds = time.perf_counter() - start
        # the proposal's samples are keyed by site: the task's one latent, "theta"
        theta = post.get("theta").to_numpy()
        draws = np.asarray(theta, dtype=np.float64).reshape(len(post), -1)
        results.add({**key, "method": prefix + "proposal", "proposal_only": True,
                     "simulator_calls": 0, "sample_seconds": seconds,
                     "c2st": c2st(ref, draws)})  # fmt: skip
        log(f"{task} N={budget} obs {k}: C2ST proposal only {results.rows[-1]['c2st']:.3f}")
    # keyed by the number of simulator calls: a rerun with more --is-traces adds rows (the
    # table reads the latest); resampling N weighted traces to N draws repeats points, which
    # sbibm's classifier partly memorises across its folds, so more traces than draws help
    if results.find(**key, method=prefix + "is", simulator_calls=is_traces):
        return
    start = time.perf_counter()
    post = model.posterior(
        is_traces, engine="ic", observe=x_o, network=net_arg, seed=1000 + k, progress=False
    )
    seconds = time.perf_counter() - start
    resampled = post.resample(NUM_SAMPLES, method="systematic", seed=k)
    is_draws = np.asarray(resampled.to_numpy(), dtype=np.float64).reshape(NUM_SAMPLES, -1)
    results.add({**key, "method": prefix + "is", "simulator_calls": is_traces,
                 "is_seconds": seconds, "ess": post.ess, "c2st": c2st(ref, is_draws)})  # fmt: skip
    log(f"{task} N={budget} obs {k}: ESS {post.ess:.0f}/{is_traces}, C2ST IS "
        f"{results.rows[-1]['c2st']:.3f}")  # fmt: skip


def evaluate_sbi(
    task: str, budget: int, k: int, obs: list[int], path: Path, results: Results
) -> None:
    key = {"kind": "c2st", "task": task, "budget": budget, "observation": k, "method": "sbi"}
    if results.find(**key):
        return
    samples = np.load(path)["samples"][obs.index(k)]
    results.add({**key, "c2st": c2st(reference_samples(task, k), samples)})
    log(f"{task} N={budget} obs {k}: C2ST sbi NPE {results.rows[-1]['c2st']:.3f}")


def sequential(
    task: str, budget: int, obs: list[int], is_traces: int, seed: int, results: Results
) -> None:
    """Two rounds at the same budget: N/2 prior simulations (one round 0 shared by the
    observations), then N/2 from the proposal for each observation; then IC as above."""
    from rotalumis.infer import sequential_ic

    todo = [k for k in obs if not results.find(kind="c2st", task=task, budget=budget,
                                               observation=k, method="seq-is")]  # fmt: skip
    if not todo:
        return
    model = SBI_TASKS[task]()
    first = {"x": observation(task, todo[0])}
    log(f"{task} N={budget}: sequential round 0 ({budget // 2} prior simulations)")
    start = time.perf_counter()
    config = BudgetConfig(seed=seed)
    shared = sequential_ic(model, first, simulations=(budget // 2,), config=config,
                           network_sizes=NETWORK, seed=seed)  # fmt: skip
    round0 = time.perf_counter() - start
    for k in todo:
        start = time.perf_counter()
        x_o, rest = {"x": observation(task, k)}, (budget - budget // 2,)
        result = sequential_ic(model, x_o, simulations=rest, resume=shared, config=config,
                               seed=seed)  # fmt: skip
        results.add({"kind": "train", "method": "sequential", "task": task, "budget": budget,
                     "observation": k, "seconds": round0 + time.perf_counter() - start,
                     "rounds": result.rounds})  # fmt: skip
        evaluate(task, budget, k, result.network, is_traces, results, prefix="seq-")


def table(results: Results, tasks: list[str], budgets: list[int], wanted: int = 5) -> str:
    """The README tables (markdown); a mean over fewer than ``wanted`` observations says
    over how many."""
    lines = [
        "| task | N | NPE (paper) | sbi NPE (this run) | IC proposal only | IC importance "
        "sampling (simulator calls) | IC 2 rounds: proposal / IS (observations) | observations |",
        "|---|---|---|---|---|---|---|---|",
    ]
    timing = ["| task | N | rotalumis training (epochs) | sbi NPE training (epochs) | ratio |",
              "|---|---|---|---|---|"]  # fmt: skip

    def mean(method: str, task: str, budget: int) -> tuple[str, int, list[dict[str, Any]]]:
        latest = {
            r["observation"]: r
            for r in results.rows
            if r["kind"] == "c2st"
            and r["method"] == method
            and r["task"] == task
            and r["budget"] == budget
            # proposal rows: only those sampled with proposal_only=True (the network alone)
            and (not method.endswith("proposal") or r.get("proposal_only"))
        }
        rows = list(latest.values())  # one per observation (a rerun's, if any)
        if not rows:
            return "not run", 0, rows
        over = "" if len(rows) >= wanted else f" ({len(rows)} obs.)"
        return f"{np.mean([r['c2st'] for r in rows]):.3f}{over}", len(rows), rows

    for task in tasks:
        for budget in budgets:
            sbi, _, _ = mean("sbi", task, budget)
            prop, n, _ = mean("proposal", task, budget)
            imp, _, rows = mean("is", task, budget)
            calls = f" ({rows[0]['simulator_calls']:,})" if rows else ""
            seq_prop, _, _ = mean("seq-proposal", task, budget)
            seq_is, n_seq, _ = mean("seq-is", task, budget)
            npe = NPE_PUBLISHED[task][budget]
            lines.append(f"| {task} | {budget:,} | {npe:.3f} | {sbi} | {prop} | {imp}{calls} | "
                         f"{seq_prop} / {seq_is} ({n_seq}) | {n} |")  # fmt: skip
            ours = results.find(kind="train", method="rotalumis", task=task, budget=budget)
            peer = results.find(kind="train", method="sbi", task=task, budget=budget)
            if ours or peer:
                mine = f"{ours['seconds']:.0f} s ({ours['epochs']:.0f})" if ours else "not run"
                theirs = f"{peer['seconds']:.0f} s ({peer['epochs']})" if peer else "not run"
                ratio = f"{ours['seconds'] / peer['seconds']:.2f}" if ours and peer else "–"
                timing.append(f"| {task} | {budget:,} | {mine} | {theirs} | {ratio} |")
    return "\n".join(lines) + "\n\n" + "\n".join(timing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(SBI_TASKS))
    parser.add_argument("--budgets", default="10000,100000")
    parser.add_argument("--observations", default="1,2,3,4,5")
    parser.add_argument("--is-traces", type=int, default=20_000, help="IC importance samples")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "sbibm_runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=200, help="rotalumis training")
    parser.add_argument("--learning-rate", type=float, default=5e-4, help="rotalumis training")
    parser.add_argument(
        "--streaming", action="store_true",
        help="read the dataset every epoch (default: decoded once, in memory)",
    )  # fmt: skip
    parser.add_argument("--no-sbi", action="store_true", help="skip the sbi NPE peer")
    parser.add_argument("--table", action="store_true", help="print the tables and stop")
    parser.add_argument(
        "--sequential", action="store_true",
        help="only the two-round sequential rows (N/2 prior + N/2 focused)",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    tasks = args.tasks.split(",")
    budgets = [int(b) for b in args.budgets.split(",")]
    obs = [int(k) for k in args.observations.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    results = Results(args.out / "results.jsonl")
    config = BudgetConfig(
        seed=args.seed,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        in_memory=not args.streaming,
    )
    if not args.table:
        for budget in budgets:
            for task in tasks:
                if args.sequential:
                    sequential(task, budget, obs, args.is_traces, args.seed, results)
                    continue
                net = train_rotalumis(task, budget, args.out, config, results)
                sbi = (
                    None
                    if args.no_sbi
                    else run_sbi(task, budget, obs, args.out, args.seed, results)
                )
                net = with_sequence(net, dataset(task, budget, args.out, args.seed))
                for k in obs:
                    evaluate(task, budget, k, net, args.is_traces, results)
                    if sbi is not None:
                        evaluate_sbi(task, budget, k, obs, sbi, results)
    print(table(results, tasks, budgets, len(obs)))


if __name__ == "__main__":
    main()
