"""Cost of one intercepted draw next to the plain call, measured side by side in one run.

For every kind of scalar draw a simulator makes (``random.random``, ``random.gauss``,
``np.random.normal``, ``Generator.normal``, torch's scalar-sized draws), a loop of
``--draws`` draws runs once plainly (no rotalumis) and as one execution of a model under
prior sampling (``model.prior``: every draw becomes an addressed, recorded ``sample``
site), alternating, ``--repeats`` times. The table gives medians of the per-draw cost in
microseconds of CPU time (``time.process_time``: robust on a shared machine), and
intercepted / plain. The last row is a native ``sample(Normal(0, 1))`` site under the same
engine: what recording any draw costs at least (handlers, trace, log-probability).

    .venv/bin/python benchmarks/bench_intercept.py [--draws 2000] [--traces 20] [--repeats 7]
        [--only TEXT,...]

One torch thread. Figures before the interception fast path (main at 28faa46), measured
side by side with the "after" run of the same command (CPU us per draw, medians of 5,
``--traces 10``, the shared 2-core machine under load; torch draws were not intercepted
at all then, so their "intercepted" cost was the plain call)::

    draw                            plain us  intercepted us   ratio
    random.random()                     0.05            3.59   77.5x
    random.random() in a helper         0.06            3.80   62.2x
    random.gauss(0, 1)                  0.33            4.13   12.4x
    np.random.normal(0, 1)              0.52            4.75    9.1x
    Generator.normal(0, 1)              0.47            4.70   10.0x
    np.random.normal, 8 calls deep      0.86            7.62    8.9x
    native sample(Normal)                               3.10  (floor)

and after::

    random.random()                     0.05            2.48   54.1x
    random.random() in a helper         0.06            2.67   43.2x
    random.gauss(0, 1)                  0.34            2.68    7.9x
    np.random.normal(0, 1)              0.52            2.67    5.2x
    Generator.normal(0, 1)              0.48            2.65    5.5x
    np.random.normal, 8 calls deep      0.87            5.77    6.6x
    torch.randn(())                     2.36            6.25    2.7x
    torch.rand(1)                       1.40            6.68    4.8x
    torch.normal(mu, sigma)             7.49            9.82    1.3x
    Tensor.normal_(0, 1)                0.98            5.26    5.4x
    native sample(Normal)                               2.67  (floor)

After the recording hot path of issue 11, side by side with main at 65ab4ee (alternating
fresh processes, medians of 3, ``--traces 5``; before -> after, intercepted us)::

    random.random()                     0.06     2.86 -> 2.61
    random.gauss(0, 1)                  0.35     2.89 -> 2.68
    np.random.normal(0, 1)              0.54     2.90 -> 2.71
    Generator.normal(0, 1)              0.49     2.89 -> 2.56
    native sample(Normal)                        3.06 -> 2.47  (floor)

Deferred recording (issue 11: unnamed scalar prior sites made into messages when the trace
is read, call sites remembered by live frame), side by side with main at fe6e5a4
(alternating fresh processes, medians of 3, ``--traces 5 --repeats 5``, both with the
``gc.freeze()`` below; intercepted us, before -> after)::

    random.random()                     0.05     2.54 -> 1.83
    random.gauss(0, 1)                  0.35     2.69 -> 1.75
    np.random.normal(0, 1)              0.54     2.70 -> 1.71   (3.2x)
    Generator.normal(0, 1)              0.49     2.63 -> 1.62   (3.4x)
    torch.randn(())                     2.42     6.56 -> 5.76   (2.3x)
    np.random.normal, traces read       0.54     2.61 -> 2.54
    native sample(Normal)                        2.36 -> 1.59  (floor)

The compiled hot path (``rotalumis.intercept._accel``) against the pure-Python path of the
same tree, side by side: ``ROTALUMIS_PURE_PYTHON=1`` selects the latter (the first line of
the output says which runs). 3 alternating fresh processes each way, ``--traces 5
--repeats 5``, medians (ratio: each process's intercepted / plain, then the median), at
631b6bd; pure -> compiled, intercepted us::

    random.random()                     0.05     1.86 -> 0.76   (37x -> 19x)
    random.gauss(0, 1)                  0.35     1.98 -> 0.86   (5.4x -> 2.5x)
    random.randrange(7)                 0.20     2.75 -> 1.23   (13x -> 6.1x)
    np.random.normal(0, 1)              0.54     1.96 -> 0.89   (3.7x -> 1.7x)
    Generator.normal(0, 1)              0.51     1.92 -> 0.86   (3.8x -> 1.7x)
    np.random.normal, 8 calls deep      0.89     5.44 -> 2.99   (6.2x -> 3.4x)
    torch.rand(1)                       1.58     6.13 -> 5.68   (3.8x -> 3.8x)
    Tensor.normal_(0, 1)                1.02     4.52 -> 4.77   (4.5x -> 3.9x)
    native sample(Normal)                        1.57 -> 1.71  (floor, same code: noise)

Torch site memo and compiled torch wrappers, the call-chain cache, the compiled settle and
scalar draws (issue 11), side by side: main at 2453f74 (compiled), this change pure Python
and compiled, 5 alternating fresh processes each, ``--traces 5 --repeats 7``, medians, on
the 2-core machine at a load of 6-7 (plain figures vary up to 2x between processes: read
the ratios); main -> pure -> compiled, intercepted us (ratio)::

    random.random()                     0.06   1.10 (19x)  1.87 (39x)  0.72 (12x)
    random.gauss(0, 1)                  0.60   1.58 (2.7x) 2.62 (5.1x) 1.17 (2.8x)
    random.randrange(7)                 0.31   2.21 (6.9x) 2.96 (13x)  1.44 (5.5x)
    np.random.normal(0, 1)              0.87   1.59 (1.7x) 2.81 (3.4x) 1.38 (1.6x)
    np.random.normal, 8 calls deep      1.46   4.26 (3.0x) 7.64 (5.1x) 3.45 (2.3x)
    torch.randn(())                     3.83   7.27 (2.1x) 6.44 (1.7x) 4.77 (1.2x)
    torch.rand(1)                       2.58   9.23 (3.5x) 7.40 (2.7x) 5.37 (2.0x)
    Tensor.normal_(0, 1)                1.54   5.52 (3.4x) 5.60 (3.7x) 3.24 (2.1x)
    np.random.normal, traces read       0.74   2.18 (2.9x) 3.96 (4.3x) 1.68 (2.6x)
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from rotalumis.core import FunctionModel, Normal, sample
from rotalumis.intercept import intercept
from rotalumis.intercept._accelerator import DESCRIPTION

Loop = Callable[[int], object]


def _random_random(n: int) -> object:
    draw = random.random
    return [draw() for _ in range(n)]


def _random_gauss(n: int) -> object:
    draw = random.gauss
    return [draw(0.0, 1.0) for _ in range(n)]


def _random_randrange(n: int) -> object:
    draw = random.randrange
    return [draw(7) for _ in range(n)]


def _np_normal(n: int) -> object:
    return [np.random.normal(0.0, 1.0) for _ in range(n)]


_GENERATOR = np.random.default_rng(0)


def _generator_normal(n: int) -> object:
    g = _GENERATOR
    return [g.normal(0.0, 1.0) for _ in range(n)]


def _draw_in_helper() -> float:
    return random.random()


def _random_random_helper(n: int) -> object:
    return [_draw_in_helper() for _ in range(n)]


def _deep(depth: int) -> float:
    return np.random.normal(0.0, 1.0) if depth == 0 else _deep(depth - 1)


def _np_normal_deep(n: int) -> object:
    return [_deep(8) for _ in range(n)]


def _torch_randn(n: int) -> object:
    return [torch.randn(()) for _ in range(n)]


def _torch_rand(n: int) -> object:
    return [torch.rand(1) for _ in range(n)]


def _torch_normal(n: int) -> object:
    mu, sigma = torch.tensor(0.0), torch.tensor(1.0)
    return [torch.normal(mu, sigma) for _ in range(n)]


def _tensor_normal_(n: int) -> object:
    x = torch.empty(())
    return [x.normal_(0.0, 1.0) for _ in range(n)]


CASES: list[tuple[str, Loop]] = [
    ("random.random()", _random_random),
    ("random.random() in a helper", _random_random_helper),
    ("random.gauss(0, 1)", _random_gauss),
    ("random.randrange(7)", _random_randrange),
    ("np.random.normal(0, 1)", _np_normal),
    ("Generator.normal(0, 1)", _generator_normal),
    ("np.random.normal, 8 calls deep", _np_normal_deep),
    ("torch.randn(())", _torch_randn),
    ("torch.rand(1)", _torch_rand),
    ("torch.normal(mu, sigma)", _torch_normal),
    ("Tensor.normal_(0, 1)", _tensor_normal_),
]


def _plain_us(loop: Loop, draws: int, traces: int) -> float:
    start = time.process_time()
    for _ in range(traces):
        loop(draws)
    return (time.process_time() - start) / (traces * draws) * 1e6


def _intercepted_us(loop: Loop, draws: int, traces: int, seed: int, read: bool = False) -> float:
    def forward() -> object:
        with intercept():
            return len(loop(draws))  # type: ignore[arg-type]

    model = FunctionModel(forward, "bench")
    model.prior(1, seed=seed, progress=False)  # warm the address caches
    start = time.process_time()
    posterior = model.prior(traces, seed=seed, progress=False, keep_traces=read)
    if read:  # every site becomes a message (see Trace.settle)
        assert sum(len(t.variables) for t in posterior.traces or []) == traces * draws
    elapsed = time.process_time() - start
    assert len(posterior) == traces
    return elapsed / (traces * draws) * 1e6


def _native_us(draws: int, traces: int, seed: int) -> float:
    """Per-site cost of a native ``sample(Normal(0, 1))`` under prior sampling: the floor."""

    def forward() -> object:
        return [sample(Normal(0.0, 1.0)) for _ in range(draws)]

    model = FunctionModel(forward, "native")
    model.prior(1, seed=seed, progress=False)
    start = time.process_time()
    model.prior(traces, seed=seed, progress=False)
    return (time.process_time() - start) / (traces * draws) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--draws", type=int, default=2000, help="draws per execution")
    parser.add_argument("--traces", type=int, default=20, help="executions per measurement")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated texts: run the cases whose label contains one (and the floor)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    # The objects alive after the imports (torch's alone are ~180k) are moved out of the
    # collector's reach: otherwise a full collection (~0.1-0.2 s on this machine) lands in
    # some timed windows and not others, whichever code runs, and decides the row.
    gc.collect()
    gc.freeze()
    print(f"# interception: {DESCRIPTION}")
    print(f"{'draw':30} {'plain us':>9} {'intercepted us':>15} {'ratio':>7}")
    for label, loop in CASES:
        if not any(part in label for part in args.only.split(",")):
            continue
        plain, caught = [], []
        for r in range(args.repeats):
            plain.append(_plain_us(loop, args.draws, args.traces))
            caught.append(_intercepted_us(loop, args.draws, args.traces, r))
        p, c = statistics.median(plain), statistics.median(caught)
        print(f"{label:30} {p:9.2f} {c:15.2f} {c / p:6.1f}x")
    if any(part in "np.random.normal(0, 1)" for part in args.only.split(",")):
        plain, caught = [], []
        for r in range(args.repeats):
            plain.append(_plain_us(_np_normal, args.draws, args.traces))
            caught.append(_intercepted_us(_np_normal, args.draws, args.traces, r, read=True))
        p, c = statistics.median(plain), statistics.median(caught)
        print(f"{'np.random.normal, traces read':30} {p:9.2f} {c:15.2f} {c / p:6.1f}x")
    native = [_native_us(args.draws, args.traces, r) for r in range(args.repeats)]
    print(f"{'native sample(Normal)':30} {'':9} {statistics.median(native):15.2f}  (floor)")


if __name__ == "__main__":
    main()
