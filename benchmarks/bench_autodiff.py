"""Cost of every rotalumis.autodiff operation relative to one plain evaluation of f.

On a 1000-dim input (float64, one thread), each operation is timed as the median of several
repeats and divided by the median time of the plain evaluation of its function, measured in
the same run. Columns: the time with the default trap checks, the ratio with checks on and
off (``trap_checks(False)``), and the ratio of the closest raw ``torch.func`` call (the peer;
"-" where torch.func has no single equivalent). The table is printed as Markdown on stdout,
ready for the README.

Functions: a scalar field f(x) = sum(tanh(W x)) + sum(x^2 sin x) / n and a vector function
F(x) = tanh(W x) + x sin x with a dense 1000x1000 W (one matrix-vector product dominates);
for diff*, a curve c(t) = tanh(W (t u)) from R to R^1000; for curl, a small R^3 -> R^3 field.

Run: ``.venv/bin/python benchmarks/bench_autodiff.py [--n 1000] [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.func import grad as tf_grad
from torch.func import hessian as tf_hessian
from torch.func import jacfwd, jacrev
from torch.func import jvp as tf_jvp
from torch.func import vjp as tf_vjp

import rotalumis.autodiff as ad

Row = tuple[str, str, str, Callable[[], Any], Callable[[], Any] | None, str]


def _batch_size(fn: Callable[[], Any], min_batch_s: float) -> int:
    fn()
    fn()  # warm-up: lazy imports, allocator
    start = time.perf_counter()
    fn()
    one = time.perf_counter() - start
    return max(1, min(1000, int(min_batch_s / max(one, 1e-9))))


def measure_interleaved(
    fns: list[Callable[[], Any]], repeats: int, min_batch_s: float = 0.02
) -> list[float]:
    """Median seconds per call of each of ``fns``, sampled round-robin.

    Interleaving the operation with its baseline makes their ratio robust to the load of a
    shared machine drifting during the run; fast calls are timed in batches of at least
    ``min_batch_s`` seconds.
    """
    batches = [_batch_size(fn, min_batch_s) for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, batch, out in zip(fns, batches, samples, strict=True):
            start = time.perf_counter()
            for _ in range(batch):
                fn()
            out.append((time.perf_counter() - start) / batch)
    return [statistics.median(s) for s in samples]


def _unchecked(fn: Callable[[], Any]) -> Callable[[], Any]:
    def call() -> Any:
        with ad.trap_checks(False):
            return fn()

    return call


def build_rows(n: int) -> tuple[list[Row], dict[str, Callable[[], Any]]]:
    """Rows (operation, function, expected cost, call, torch.func peer or None, baseline key)
    and the baseline evaluations by key."""
    gen = torch.Generator().manual_seed(0)
    dt = torch.float64
    w = torch.randn(n, n, dtype=dt, generator=gen) / n**0.5
    x = torch.randn(n, dtype=dt, generator=gen)
    v = torch.randn(n, dtype=dt, generator=gen)
    u = torch.randn(n, dtype=dt, generator=gen)
    t0 = torch.tensor(0.3, dtype=dt)
    p3 = torch.tensor([0.4, -1.2, 0.9], dtype=dt)

    def f(y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(w @ y).sum() + (y**2 * torch.sin(y)).sum() / n

    def vec(y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(w @ y) + y * torch.sin(y)

    def curve(s: torch.Tensor) -> torch.Tensor:
        return torch.tanh(w @ (s * u))

    def field(q: torch.Tensor) -> torch.Tensor:
        return torch.stack([q[1] * q[2] ** 2, q[0] ** 3, torch.sin(q[0] * q[1])])

    ones = torch.ones((), dtype=dt)
    pb = ad.pullback(vec, x)
    return [
        ("diff", "R->R^n", "O(1)", lambda: ad.diff(curve, t0),
         lambda: tf_jvp(curve, (t0,), (ones,)), "curve"),
        ("diff2", "R->R^n", "O(1)", lambda: ad.diff2(curve, t0), None, "curve"),
        ("diffn(n=4)", "R->R^n", "O(2^4)", lambda: ad.diffn(curve, t0, 4), None, "curve"),
        ("grad", "R^n->R", "O(1)", lambda: ad.grad(f, x), lambda: tf_grad(f)(x), "f"),
        ("grad_with_value", "R^n->R", "O(1)", lambda: ad.grad_with_value(f, x), None, "f"),
        ("gradv", "R^n->R", "O(1)", lambda: ad.gradv(f, x, v),
         lambda: tf_jvp(f, (x,), (v,)), "f"),
        ("hvp", "R^n->R", "O(1)", lambda: ad.hvp(f, x, v),
         lambda: tf_jvp(tf_grad(f), (x,), (v,)), "f"),
        ("hessian", "R^n->R", "O(n)", lambda: ad.hessian(f, x), lambda: tf_hessian(f)(x), "f"),
        ("grad_and_hessian", "R^n->R", "O(n)", lambda: ad.grad_and_hessian(f, x), None, "f"),
        ("laplacian", "R^n->R", "O(n)", lambda: ad.laplacian(f, x), None, "f"),
        ("jvp", "R^n->R^n", "O(1)", lambda: ad.jvp(vec, x, v),
         lambda: tf_jvp(vec, (x,), (v,)), "vec"),
        ("vjp", "R^n->R^n", "O(1)", lambda: ad.vjp(vec, x, u),
         lambda: tf_vjp(vec, x)[1](u), "vec"),
        ("pullback (record)", "R^n->R^n", "O(1)", lambda: ad.pullback(vec, x),
         lambda: tf_vjp(vec, x), "vec"),
        ("pullback (apply)", "R^n->R^n", "O(1)", lambda: pb(u), None, "vec"),
        ("jacobian (reverse)", "R^n->R^n", "O(n)", lambda: ad.jacobian(vec, x, mode="reverse"),
         lambda: jacrev(vec)(x), "vec"),
        ("jacobian (forward)", "R^n->R^n", "O(n)", lambda: ad.jacobian(vec, x, mode="forward"),
         lambda: jacfwd(vec)(x), "vec"),
        ("jacobian_transpose", "R^n->R^n", "O(n)", lambda: ad.jacobian_transpose(vec, x),
         None, "vec"),
        ("div", "R^n->R^n", "O(n)", lambda: ad.div(vec, x), None, "vec"),
        ("curl", "R^3->R^3", "O(3)", lambda: ad.curl(field, p3), lambda: jacfwd(field)(p3),
         "field"),
        ("curl_and_div", "R^3->R^3", "O(3)", lambda: ad.curl_and_div(field, p3), None, "field"),
    ], {"f": lambda: f(x), "vec": lambda: vec(x), "curve": lambda: curve(t0),
        "field": lambda: field(p3)}  # fmt: skip


def main() -> None:
    """Run the benchmark and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="input dimension (default 1000)")
    parser.add_argument("--repeats", type=int, default=7, help="repeats per median")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, baselines = build_rows(args.n)
    base = {key: measure_interleaved([fn], args.repeats)[0] for key, fn in baselines.items()}

    print(f"rotalumis.autodiff, n = {args.n}, float64, torch {torch.__version__}, 1 thread, "
          f"median of {args.repeats} (each row interleaved with its own baseline); plain "
          f"evaluation: f {base['f'] * 1e6:.0f} us, F {base['vec'] * 1e6:.0f} us, "
          f"c {base['curve'] * 1e6:.0f} us, curl field {base['field'] * 1e6:.0f} us\n")  # fmt: skip
    print(
        "| operation | function | expected cost (evals) | time | × eval | × eval, checks off "
        "| torch.func × eval |"
    )
    print("|---|---|---|---:|---:|---:|---:|")
    for name, kind, cost, call, peer, key in rows:
        fns = [baselines[key], call, _unchecked(call)] + ([peer] if peer else [])
        times = measure_interleaved(fns, args.repeats)
        ratios = [t / times[0] for t in times[1:]]
        peer_ratio = f"{ratios[2]:.1f}" if peer else "-"
        on = times[1]
        shown = f"{on * 1e3:.2f} ms" if on >= 1e-3 else f"{on * 1e6:.0f} us"
        print(f"| {name} | {kind} | {cost} | {shown} | {ratios[0]:.1f} "
              f"| {ratios[1]:.1f} | {peer_ratio} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
