"""The compiled hot path of interception (``rotalumis.intercept._accel``) records exactly what
the pure-Python path records: the same model run in fresh processes with the accelerator on
and off (``ROTALUMIS_PURE_PYTHON=1``) gives the same address, value and log-probability at
every site, under prior sampling (the compiled case) and under engines that take the
Python path (IS with observations, LMH)."""

from __future__ import annotations

import gc
import os
import pickle
import random
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from intercept_support import run_json_script

from rotalumis.core import Categorical, FunctionModel, Normal, TraceLimitError, Uniform
from rotalumis.core.runtime import Message
from rotalumis.core.trace import Trace, use_compiled_settle
from rotalumis.intercept import _session, intercept
from rotalumis.intercept._accelerator import ACCEL
from rotalumis.intercept._session import memo_key
from rotalumis.intercept._torch_sites import memo_key as torch_memo_key

# Run as a file: its functions are ordinary code, so addresses read ``function:line``.
SCRIPT = """
import json
import random
import sys
import weakref

import numpy as np
import torch

from rotalumis.core import FunctionModel, Normal
from rotalumis.intercept import intercept
from rotalumis.intercept._session import ACCELERATED

torch.set_num_threads(1)
GEN = np.random.default_rng(0)
BUF = torch.empty(())
VEC = torch.empty(3, dtype=torch.float64)
PAIR = torch.empty(2)


def helper(k):
    return random.random() * k


def deep(depth):
    return np.random.normal(0.0, 1.0) if depth == 0 else deep(depth - 1)


def call(f, *args):  # one call instruction, several functions: one chain, several labels
    return f(*args)


def relay(f, *args):
    return call(f, *args)


def stream(n):  # a generator's frame is never remembered by frame
    for _ in range(n):
        yield random.gauss(1.0, 2.0)


def simulate():
    total = 0.0
    for i in range(1100):  # more visits of one site than the shared address lists hold
        total += random.random()
    for i in range(30):
        total += random.gauss(0.0, 1.0) + helper(i) + np.random.normal(0.0, 1.0)
        total += GEN.normal(0.5, 2.0) + random.randrange(7) + random.choice([1, 2, 3])
        total += deep(3) + float(torch.randn(())) + float(torch.rand(1))
        for f, a in ((random.random, ()), (random.uniform, (0.0, 2.0))):
            total += relay(f, *a)  # the same frames and instructions: two call sites
        total += random.uniform(0.0, 2.0) + np.random.uniform(1.0, 3.0) + random.expovariate(2.0)
        if i % 3 == 0:
            total += random.gauss(float(i), 1.0) + np.random.normal(float(i), 1.0, size=2).sum()
        # torch: memoised sites (numbers, sizes, keywords), in place and vector-valued
        total += float(BUF.normal_(0.0, 1.0)) + float(BUF.uniform_(-1.0, 1.0))
        total += float(PAIR.normal_(0.0, 1.0).sum())  # BUF's key but for the shape
        total += float(VEC.exponential_(2.0).sum()) + float(torch.rand(2, 3).sum())
        total += float(torch.randn(2, dtype=torch.float64).sum()) + float(torch.randint(3, 9, (1,)))
        total += float(torch.normal(1.0, 2.0, (2,)).sum())
        total += float(torch.rand(1, requires_grad=True))
        if i % 5 == 0:
            total += float(BUF.normal_(float(i), 1.0)) + float(torch.randn((1,)))
    total += sum(stream(20)) + random.gammavariate(2.0, 1.0)
    return total


def forward():
    named = sys.argv[1] == "named"  # names look up their cache on the compiled path
    with intercept(
        names={"shape": "random.gammavariate"} if named else None,
        observed={"y": "random.lognormvariate"} if named else None,
        check_escapes=False,
    ):
        return random.lognormvariate(simulate() / 1000.0, 1.0)


def site(v):
    value = v.value.tolist() if hasattr(v.value, "tolist") else v.value
    return [v.address, v.kind, v.name, repr(value), repr(float(v.log_prob)), v.observed, v.control]


def traces(post):
    return [[site(v) for v in t.variables] + [repr(float(t.log_prob))] for t in post.traces]


model = FunctionModel(forward, "accel")
out = {"accelerated": ACCELERATED, "runs": []}
out["runs"].append(traces(model.prior(3, seed=7, progress=False, keep_traces=True)))
if sys.argv[1] == "named":
    for engine in ("is", "lmh"):
        post = model.posterior(
            4, engine=engine, observe={"y": 1.3}, seed=5, progress=False, keep_traces=True
        )
        out["runs"].append(traces(post) + [repr(post.log_weights.tolist())])
print(json.dumps(out))
"""


def _run(script: Path, mode: str, pure: bool) -> dict[str, Any]:
    result: dict[str, Any] = run_json_script(
        script, mode, env={"ROTALUMIS_PURE_PYTHON": "1" if pure else None}
    )
    return result


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "named"])
def test_compiled_and_pure_python_record_the_same(tmp_path: Path, mode: str) -> None:
    if not _session.ACCELERATED:
        pytest.skip("the C accelerator is not built here (or ROTALUMIS_PURE_PYTHON is set)")
    script = tmp_path / "accel_script.py"
    script.write_text(SCRIPT)
    fast, pure = _run(script, mode, pure=False), _run(script, mode, pure=True)
    assert fast["accelerated"] is True and pure["accelerated"] is False
    assert fast["runs"] == pure["runs"]
    traces = fast["runs"][0]
    assert isinstance(traces, list) and len(traces) == 3
    assert len(traces[0]) > 1500  # every draw is a site
    addresses = [s[0] for s in traces[0][:-1]]
    assert len(set(addresses)) == len(addresses)
    assert addresses[1099].endswith("random.random__Uniform__1100")


# Counts the calls of the Python wrappers (the fallback) in the steady state of a loop, in
# a fresh process (a profile function, so away from other tests' threads and timers).
FALLBACK_SCRIPT = """
import json, random, sys
import numpy as np
import torch
from rotalumis.core import FunctionModel
from rotalumis.intercept import intercept

calls = 0
BUF = torch.empty(())


def profile(frame, event, arg):
    global calls
    if event == "call" and frame.f_code.co_name == "wrapper":
        calls += 1


def loop():  # scalar sites: the engine draws their values without torch
    return [random.random() + random.gauss(0.0, 1.0) + np.random.normal(0.0, 1.0)
            + random.randrange(5) + float(torch.rand(1)) + float(BUF.normal_(0.0, 1.0))
            for _ in range(9)]


def forward():
    with intercept(check_escapes=False):
        return loop()


model = FunctionModel(forward, "fallback")
model.prior(1, seed=0, progress=False)
sys.setprofile(profile)
model.prior(2, seed=0, progress=False)
sys.setprofile(None)
print(json.dumps(calls))
"""


def test_the_compiled_path_takes_loops_without_the_fallback(tmp_path: Path) -> None:
    if not _session.ACCELERATED:
        pytest.skip("the C accelerator is not built here (or ROTALUMIS_PURE_PYTHON is set)")
    script = tmp_path / "fallback_script.py"
    script.write_text(FALLBACK_SCRIPT)
    # per execution, only the first visits (and the second, which remembers the frame) of
    # the 6 sites fall back: 2 executions x 6 sites x 2 visits at most, of 108 draws
    assert run_json_script(script) <= 2 * 6 * 2
    pure = run_json_script(script, env={"ROTALUMIS_PURE_PYTHON": "1"})
    assert pure == 2 * 9 * 6  # the Python wrappers take every draw there


def test_compiled_wrappers_look_like_the_originals() -> None:
    with intercept():
        patched = random.Random.__dict__["random"]
        assert patched.__name__ == "random" and patched.__qualname__ == "Random.random"
        assert patched.__wrapped__ is vars(random.Random).get("random", patched).__wrapped__
        assert random.Random.random is patched  # a function-like descriptor
        inside = [random.Random(3).random(), random.Random(3).gauss(0.0, 1.0)]
        assert 0.0 <= random.SystemRandom().random() < 1.0  # never intercepted
    # outside a model run the originals run: the same numbers as without interception
    assert inside == [random.Random(3).random(), random.Random(3).gauss(0.0, 1.0)]


def test_trace_limit_raised_on_either_path() -> None:
    def forward() -> float:
        with intercept(check_escapes=False):
            return sum(random.random() for _ in range(100))

    model = FunctionModel(forward, "limited")
    model.prior(1, seed=0, progress=False)
    with pytest.raises(TraceLimitError, match="more than 50"):
        model.prior(1, seed=0, progress=False, max_choices=50)


def test_a_failed_build_still_installs_and_says_so_in_one_line(tmp_path: Path) -> None:
    """No working C compiler: setup.py's build_ext succeeds without the extension and
    prints one line saying that interception runs in pure Python."""
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, CC="false", LDSHARED="false")
    out = tmp_path / "build"
    build = ["build_ext", "--build-lib", str(out), "--build-temp", str(out / "tmp")]
    proc = subprocess.run(
        [sys.executable, "setup.py", "-q", *build],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if line.startswith("rotalumis:")]
    assert len(notes) == 1, proc.stderr
    assert "not built" in notes[0] and notes[0].endswith("interception runs in pure Python")
    assert not list(out.rglob("_accel*"))


def test_memo_keys_keep_integer_and_float_arguments_apart() -> None:
    assert memo_key((0.0, 1.0)) == (0.0, 1.0) and memo_key(()) == ()
    assert memo_key((0, 1)) == (int, 0, 1) != memo_key((0.0, 1.0))
    assert memo_key((0, 1.0)) is None and memo_key((True,)) is None
    assert memo_key(([1, 2],)) is None  # a list: never looked up

    def forward() -> list[float]:
        with intercept(check_escapes=False):
            return [
                random.gauss(0, 1) + random.gauss(0.0, 1.0) + random.randrange(3) + n
                for n in (np.random.binomial(3, 0.5), np.random.binomial(3.0, 0.5))
            ]

    trace = FunctionModel(forward, "keys").get_trace(seed=1)
    kinds = [v.address.rsplit("/", 1)[-1] for v in trace.variables]
    assert kinds == [
        "np.random.binomial__Binomial__1",
        "np.random.binomial__Binomial__2",
        "random.gauss__Normal__1",
        "random.gauss__Normal__2",
        "random.randbelow__Categorical__1",
        "random.gauss__Normal__3",
        "random.gauss__Normal__4",
        "random.randbelow__Categorical__2",
    ]


def test_torch_site_memo_keys_hold_types_and_the_default_dtype() -> None:
    assert torch_memo_key((1,), {}, ("h",)) == ("h", int, 1)
    assert torch_memo_key(((2, 3),), {}, ()) == (None, (2, 3))
    assert torch_memo_key((0.0, 1.0, (2,)), {}, ()) == (float, 0.0, 1.0, (2,))
    assert torch_memo_key((0, 5.0, (1,)), {}, ()) is None  # mixed numbers: not memoised
    assert torch_memo_key((True,), {}, ()) is None and torch_memo_key(((1.0,),), {}, ()) is None
    assert torch_memo_key((torch.zeros(1),), {}, ()) is None
    assert torch_memo_key((1,), {"generator": torch.Generator()}, ()) is None
    grad, one = torch_memo_key((1,), {"requires_grad": True}, ()), torch_memo_key((1,), {}, ())
    assert grad != torch_memo_key((1,), {"requires_grad": 1}, ()) and grad != one

    buf32, buf64 = torch.empty(()), torch.empty((), dtype=torch.float64)

    def forward() -> list[torch.Tensor]:
        with intercept(check_escapes=False):
            out = []
            for dtype in (torch.float32, torch.float64, torch.float32):
                torch.set_default_dtype(dtype)  # a memoised torch.rand(1) follows it
                out += [torch.rand(1), torch.randint(0, 5, (1,)), torch.randn(2)]
                out += [buf32.normal_(0.0, 1.0), buf64.normal_(0.0, 1.0)]
            return out

    default = torch.get_default_dtype()
    try:
        values = FunctionModel(forward, "memo").get_trace(seed=3).result
    finally:
        torch.set_default_dtype(default)
    dtypes = [v.dtype for v in values]
    f32, f64, i64 = torch.float32, torch.float64, torch.int64
    assert dtypes == [f32, i64, f32, f32, f64, f64, i64, f64, f32, f64, f32, i64, f32, f32, f64]
    assert [tuple(v.shape) for v in values[:5]] == [(1,), (1,), (2,), (), ()]
    assert values[3] is buf32 and values[4] is buf64  # filled in place


def test_compiled_settle_makes_the_messages_of_the_python_settle() -> None:
    if not _session.ACCELERATED:
        pytest.skip("the C accelerator is not built here (or ROTALUMIS_PURE_PYTHON is set)")
    records = [
        ("a__Normal__1", "a", Normal(0.5, 2.0), 0.25, True),
        ("b__Categorical__1", "b", Categorical([1.0, 3.0]), 1, True),
        ("c__Uniform__1", "c", Uniform(0.0, 2.0), 3.0, False),  # outside: -inf
        ("a__Normal__2", "a", Normal(0.5, 2.0), -1.5, True),
    ]

    def settled(compiled: bool) -> Trace:
        trace = Trace()
        trace.pending = list(records)
        use_compiled_settle(ACCEL.settle if compiled else None)
        try:
            assert trace.variables  # reading settles
        finally:
            use_compiled_settle(ACCEL.settle)
        return trace

    fast, slow = settled(True), settled(False)
    slots = Message.__slots__
    assert fast.pending == slow.pending == [] and fast.log_prior == slow.log_prior
    assert [[repr(getattr(m, s)) for s in slots] for m in fast.variables] == [
        [repr(getattr(m, s)) for s in slots] for m in slow.variables
    ]
    assert [type(m) for m in fast.variables] == [Message] * 4

    class Other(Trace):
        __slots__ = ()

    other = Other()
    other.pending = list(records)
    assert ACCEL.settle(other) is False and other.pending == records  # the Python path's


# Deferred counting (_accel_lazy.c): compiled draws counted in C, in batches of the trace's
# pending records, interleaved with what the Python code records and counts at once.
LAZY_SCRIPT = """
import json
import pickle
import random

from rotalumis.core import FunctionModel, Normal, TraceLimitError, observe, sample
from rotalumis.intercept import intercept
from rotalumis.intercept._session import ACCELERATED

draws = [0]


def counted(f, *args):
    draws[0] += 1
    return f(*args)


def simulate():
    total = 0.0
    for i in range(60):
        # one call site, two distributions of one kind: one instance counter
        total += counted(random.uniform, 0.0, float(i % 2 + 1)) + counted(random.random)
        total += random.randrange(7) + random.random() + random.choice([1, 2, 3])
        if i % 7 == 3:
            total += sample(Normal(0.0, 1.0))  # a native site counted in Python
        if i % 11 == 5:
            total += random.gauss(0.0, 1.0)  # a compiled draw counted at once
        if i % 13 == 6:
            total += sample(Normal(0.0, 1.0), name=f"z{i}")  # settles the trace mid-run
            observe(Normal(total, 1.0), 0.5)
        if i == 40:
            for _ in range(1030):  # past the shared address lists, within one batch
                total += random.random()
    return total


def forward():
    with intercept(check_escapes=False):
        return simulate()


def site(v):
    return [v.address, v.kind, v.name, repr(v.value), repr(float(v.log_prob)), v.observed]


def listed(t):
    return [site(v) for v in t.variables] + [repr(float(t.log_prior)), repr(float(t.log_prob))]


model = FunctionModel(forward, "lazy")
out = {"accelerated": ACCELERATED}
post = model.prior(3, seed=11, progress=False, keep_traces=True)
kept = pickle.loads(pickle.dumps(post.traces[1]))  # pickled before it was read
out["traces"] = [listed(t) for t in post.traces] + [listed(kept)]
limits = []
for limit in (1, 7, 50, 333, 1300):
    draws[0] = 0
    try:
        model.prior(1, seed=3, progress=False, max_choices=limit)
        limits.append(["ok", draws[0]])
    except TraceLimitError as exc:
        limits.append([str(exc).split(";")[0], draws[0]])
out["limits"] = limits
print(json.dumps(out))
"""


@pytest.mark.slow
def test_deferred_counting_records_what_the_python_path_records(tmp_path: Path) -> None:
    if not _session.ACCELERATED:
        pytest.skip("the C accelerator is not built here (or ROTALUMIS_PURE_PYTHON is set)")
    script = tmp_path / "lazy_script.py"
    script.write_text(LAZY_SCRIPT)
    fast, pure = _run(script, "", pure=False), _run(script, "", pure=True)
    assert fast["accelerated"] is True and pure["accelerated"] is False
    assert fast["traces"] == pure["traces"]
    assert fast["limits"] == pure["limits"]
    assert "more than 333" in fast["limits"][3][0]
    addresses = [s[0] for s in fast["traces"][0][:-2]]
    assert len(set(addresses)) == len(addresses) > 1300
    assert fast["traces"][1] == fast["traces"][3]  # the pickled trace, read afterwards


def test_a_batch_settles_and_pickles_as_its_records() -> None:
    if not _session.ACCELERATED:
        pytest.skip("the C accelerator is not built here (or ROTALUMIS_PURE_PYTHON is set)")

    def forward() -> float:
        total = 0.0
        with intercept(check_escapes=False):
            for _ in range(5):
                total += random.random()
        return total

    model = FunctionModel(forward, "batch")
    trace = model.prior(1, seed=2, progress=False, keep_traces=True).traces[0]
    batches = [p for p in trace.pending if type(p) is not tuple]
    assert len(batches) == 1 and len(batches[0]) == 3  # visits 1 and 2 take the Python path
    records = batches[0].records()
    assert [r[0].rsplit("/", 1)[-1] for r in records] == [
        f"random.random__Uniform__{n}" for n in (3, 4, 5)
    ]
    assert list(batches[0]) == records
    assert repr(pickle.loads(pickle.dumps(batches[0]))) == repr(records)
    python = Trace()
    python.pending = list(trace.pending)
    use_compiled_settle(None)
    try:
        assert python.variables
    finally:
        use_compiled_settle(ACCEL.settle)
    slots = Message.__slots__
    assert [[repr(getattr(m, s)) for s in slots] for m in trace.variables] == [
        [repr(getattr(m, s)) for s in slots] for m in python.variables
    ]
    assert trace.log_prior == python.log_prior and trace.pending == []


def test_wrappers_keep_nothing_of_a_finished_run() -> None:
    """The compiled wrappers remember recent calls (their frames, the execution) while a
    context intercepts, and forget them when the last one ends."""

    class Marker:
        pass

    refs: list[weakref.ref[Marker]] = []

    def forward() -> float:
        marker = Marker()  # a local of the frame the draws are remembered by
        refs.append(weakref.ref(marker))
        total = 0.0
        with intercept(check_escapes=False):
            for _ in range(10):
                total += random.random() + random.randrange(5)
        return total

    FunctionModel(forward, "forget").prior(2, seed=0, progress=False)
    gc.collect()
    assert len(refs) == 2 and all(r() is None for r in refs)


def test_an_instance_attribute_random_of_the_engine_stream_is_honoured() -> None:
    """The compiled draw caches where the engine's ``random()`` is (by the type's and the
    instance dict's versions): a ``random`` set on the stream's instance mid-run is what
    the next draw calls, as ``dist.sample(rng)`` would, on both paths."""
    from rotalumis.core import current_rng

    def forward() -> list[float]:
        with intercept(check_escapes=False):
            out = [random.random() for _ in range(20)]
            py = current_rng().py
            py.random = lambda: 0.25  # type: ignore[method-assign]
            try:
                out += [random.random() for _ in range(5)]
            finally:
                del py.random
            return out + [random.random() for _ in range(5)]

    # prior sampling: the plain recording stack, which the compiled path takes
    post = FunctionModel(forward, "shadowed").prior(1, seed=0, progress=False, keep_traces=True)
    trace = (post.traces or [])[0]
    values = trace.result
    assert values[20:25] == [0.25] * 5
    assert 0.25 not in values[:20] + values[25:]
    assert [float(v.value) for v in trace.variables] == values


def test_a_remembered_call_sees_a_handler_entered_mid_loop() -> None:
    """The compiled path repeats a remembered call only while the session, handler-stack
    and execution variables are those it remembered (it compares the context's variable
    mapping): a handler entered halfway through a loop of one call site sees the rest of
    its draws and can change them, and one left after that sees no more."""
    from rotalumis.core import Handler

    class Half(Handler):
        def __init__(self) -> None:
            super().__init__()
            self.seen = 0

        def process(self, msg) -> None:  # type: ignore[no-untyped-def]
            if msg.kind == "sample":
                self.seen += 1
                msg.value = 0.5

    half = Half()

    def forward() -> list[float]:
        with intercept(check_escapes=False):
            out = [random.random() for _ in range(20)]
            with half:
                out += [random.random() for _ in range(10)]
            draw = random.random
            for i in range(30):  # one call site throughout, the handler in the middle
                if i == 10:
                    half.__enter__()
                if i == 20:
                    half.__exit__(None, None, None)
                out.append(draw())
            return out

    post = FunctionModel(forward, "mid").prior(1, seed=0, progress=False, keep_traces=True)
    values = (post.traces or [])[0].result
    assert half.seen == 20
    assert values[20:30] == [0.5] * 10 and values[40:50] == [0.5] * 10
    assert 0.5 not in values[:20] + values[30:40] + values[50:]


def test_loops_repeat_remembered_calls_by_frame_and_by_parent_frame() -> None:
    """A loop's call site, direct or in a helper (a new frame each call, found by its parent
    frame), is a remembered call from its third visit on: the compiled path's repeat, which
    reads the caller's frame and the context's variables directly (CPython 3.11); were that
    reading wrong, the draws would still be recorded right, only slowly, so it is counted."""
    if not _session.ACCELERATED or ACCEL is None:
        pytest.skip("the C accelerator is not built here (or ROTALUMIS_PURE_PYTHON is set)")

    def helper() -> float:
        return random.random()

    def forward() -> list[float]:
        with intercept(check_escapes=False):
            return [random.random() for _ in range(100)] + [helper() for _ in range(100)]

    model = FunctionModel(forward, "repeats")
    before = ACCEL.fast_repeats()
    post = model.prior(2, seed=0, progress=False, keep_traces=True)
    repeats = ACCEL.fast_repeats() - before
    assert 2 * 2 * 95 <= repeats <= 2 * 200, repeats
    assert [len(t.result) for t in post.traces or []] == [200, 200]
