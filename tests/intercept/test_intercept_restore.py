"""Interception leaves no trace: originals restored (also on exceptions), streams unchanged,
nesting, aliases, threads, pass-through outside a model, the engine's own RNG immune."""

from __future__ import annotations

import random
import sys
import threading
import types

import numpy as np
import pytest
import torch
from intercept_support import run_intercepted

import rotalumis.intercept as ri
from rotalumis.core import RNG, FunctionModel
from rotalumis.intercept import EscapedRandomnessWarning, intercept


def _snapshot() -> dict:
    classes = (
        random.Random,
        np.random.Generator,
        np.random.RandomState,
        np.random.BitGenerator,
        torch.Tensor,
    )
    snap = {cls: dict(vars(cls)) for cls in classes}
    snap["random"] = dict(vars(random))
    snap["np.random"] = dict(vars(np.random))
    snap["torch"] = dict(vars(torch))
    return snap


def _same(a: dict, b: dict) -> None:
    for key in a:
        assert a[key].keys() == b[key].keys(), key
        changed = [k for k in a[key] if a[key][k] is not b[key][k]]
        assert not changed, (key, changed)


def _streams(seed: int) -> tuple:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return (
        torch.randn(3).tolist(),
        torch.empty(2).uniform_().tolist(),
        torch.randint(0, 9, (3,)).tolist(),
        [random.random() for _ in range(3)],
        random.gauss(0.0, 1.0),
        np.random.normal(size=3).tolist(),
        np.random.default_rng(seed).normal(size=3).tolist(),
        np.random.RandomState(seed).poisson(3.0, size=3).tolist(),
        random.Random(seed).choices("abc", k=3),
    )


def _draw_everything() -> None:
    random.random(), random.gauss(0, 1), random.shuffle([1, 2, 3])
    np.random.normal(size=2), np.random.default_rng(0).poisson(2.0)
    torch.randn(2), torch.empty(2).normal_(), torch.randperm(4)


def test_originals_and_streams_restored_after_normal_exit() -> None:
    before, streams = _snapshot(), _streams(7)
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    expected_next = (random.random(), np.random.normal(), torch.rand(1).item())
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    run_intercepted(_draw_everything)
    assert not ri.is_installed()
    _same(before, _snapshot())
    # intercepted draws came from the engine: the global streams did not advance
    assert (random.random(), np.random.normal(), torch.rand(1).item()) == expected_next
    assert _streams(7) == streams


def test_restored_when_the_simulator_raises() -> None:
    before, streams = _snapshot(), _streams(8)

    def boom():
        _draw_everything()
        raise KeyError("simulator failed")

    with pytest.raises(KeyError):
        run_intercepted(boom)
    with pytest.raises(RuntimeError), intercept():
        raise RuntimeError
    assert not ri.is_installed()
    _same(before, _snapshot())
    assert _streams(8) == streams


def test_nested_use_keeps_intercepting_until_the_outermost_exit() -> None:
    def body():
        with intercept():
            with intercept():
                random.random()
            random.random()  # still intercepted after the inner exit
            assert ri.is_installed()
        return 0

    _, trace = run_intercepted(body)
    assert len(trace.controlled) == 2
    assert not ri.is_installed()


def test_patches_stay_installed_for_the_engines_run_only() -> None:
    """Installed at the first execution that intercepts, removed when the engine's run
    ends (not around each execution); between and after the intercepted blocks draws run
    the original implementation, unrecorded."""
    seen: list[bool] = []

    def forward() -> tuple[float, float]:
        seen.append(ri.is_installed())
        with intercept(check_escapes=False):
            x = random.random()
        random.seed(5)  # after the block: the global stream itself, not recorded
        return x, random.random()

    before = _snapshot()
    posterior = FunctionModel(forward, "held").prior(3, seed=0, progress=False, keep_traces=True)
    assert seen == [False, True, True]
    assert not ri.is_installed()
    _same(before, _snapshot())
    expected = random.Random(5).random()
    traces = posterior.traces or []
    assert [t.result[1] for t in traces] == [expected] * 3
    assert [len(t.controlled) for t in traces] == [1, 1, 1]
    assert len({t.result[0] for t in traces}) == 3


def test_decorator_form() -> None:
    @intercept()
    def simulate():
        return np.random.uniform()

    _, trace = run_intercepted(simulate)
    assert len(trace.controlled) == 1


def test_outside_a_model_calls_pass_through_unchanged() -> None:
    expected = _streams(11)
    with intercept():
        assert _streams(11) == expected


def test_aliases_in_other_modules_are_intercepted_and_restored() -> None:
    old = types.ModuleType("sim_with_aliases_old")
    exec("from random import random, gauss\nfrom numpy.random import normal", old.__dict__)
    sys.modules[old.__name__] = old
    try:

        def body():
            new = types.ModuleType("sim_with_aliases_new")
            exec("from random import random\nfrom numpy.random import normal", new.__dict__)
            sys.modules[new.__name__] = new
            return old.random(), old.gauss(0.0, 1.0), old.normal(), new.random(), new.normal()

        _, trace = run_intercepted(body)
        assert len(trace.controlled) == 5
        new = sys.modules["sim_with_aliases_new"]
        assert old.random is random.random and old.gauss is random.gauss
        assert new.random is random.random and new.normal is np.random.normal
        assert old.normal is np.random.normal
    finally:
        sys.modules.pop("sim_with_aliases_old", None)
        sys.modules.pop("sim_with_aliases_new", None)


def test_engine_rng_and_system_random_are_not_intercepted() -> None:
    expected = random.Random(3).random()

    def body():
        return RNG(3).py.random(), random.SystemRandom().random(), random.random()

    # OS entropy escapes the engine on purpose; the escape check says so
    with pytest.warns(EscapedRandomnessWarning, match="differ in the result"):
        (engine_value, _, _), trace = run_intercepted(body)
    assert engine_value == expected
    assert len(trace.controlled) == 1  # only random.random()


def test_two_threads_intercept_independently() -> None:
    """One thread runs an intercepted model while another draws natively at the same time."""
    expected = _reference_native()
    barrier = threading.Barrier(2)
    out: dict = {}

    def native():
        barrier.wait()
        out["native"] = _reference_native()

    def intercepted():
        def body():
            barrier.wait()
            return [np.random.default_rng(0).normal() for _ in range(3000)]

        # no escape check: it would run the body again, which waits for the other thread
        out["intercepted"] = run_intercepted(body, check_escapes=False)

    threads = [threading.Thread(target=native), threading.Thread(target=intercepted)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert out["native"] == expected
    values, trace = out["intercepted"]
    assert len(trace.controlled) == 3000
    assert len(set(values)) == 3000  # engine draws, not the seeded stream repeated
    assert not ri.is_installed()


def _reference_native() -> list:
    r = random.Random(1)
    g = np.random.default_rng(1)
    return [(r.gauss(0.0, 1.0), g.normal()) for _ in range(3000)]


def test_bad_arguments_are_named() -> None:
    from rotalumis.core import Normal
    from rotalumis.intercept import InterceptedModel

    with pytest.raises(TypeError, match="names must map"):
        intercept(names=["x"])
    with pytest.raises(ValueError, match="observed"):
        intercept(observed={"y": ""})
    with pytest.raises(TypeError, match="prior 'theta'"):
        InterceptedModel(lambda theta: theta, priors={"theta": 1.0})
    with pytest.raises(TypeError, match="simulator must be callable"):
        InterceptedModel(42)
    with pytest.raises(TypeError, match="observation 'y'"):
        InterceptedModel(lambda: 0.0, observe={"y": Normal(0.0, 1.0)})


def test_a_patch_replaced_meanwhile_is_left_and_the_rest_restored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = _snapshot()
    mine = types.FunctionType((lambda self, mu, sigma: 0.5).__code__, {}, "gauss")
    with intercept():
        random.Random.gauss = mine  # type: ignore[method-assign]
        patched_normal = vars(np.random.Generator)["normal"]
    try:
        assert vars(random.Random)["gauss"] is mine
        assert vars(random.Random).get("random") is before[random.Random].get("random")
        assert vars(random.Random)["gauss"] is not before[random.Random]["gauss"]
        assert vars(np.random.Generator)["normal"] is not patched_normal
        assert "Random.gauss was changed by someone else" in caplog.text
    finally:
        random.Random.gauss = before[random.Random]["gauss"]  # type: ignore[method-assign]
    _same(before, _snapshot())
