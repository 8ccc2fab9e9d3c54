"""Bad input, CLI and Python API: one clear error, never a traceback, a hang or silence.

Every command-line case must print exactly one line, starting with ``error:`` and naming
the culprit, and exit with status 2 (the README's promise); every API case must raise the
documented exception with a message naming the culprit. The table holds the cases of
issue 12 (tracebacks, hangs, silently accepted input) and the ones that already behaved, so
that the promise cannot regress. Command-line cases run the real command in a forked copy
of a warm process (``forked_cli``), which keeps ~50 invocations fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from forked_cli import ROOT, ForkedCLI

import rotalumis as rl

EXAMPLE = str(ROOT / "examples" / "unknown_mean.py")
BAD = str(Path(__file__).resolve().parent / "bad_models.py")
NO_PLACE = "/proc/rotalumis-no-such-dir"  # cannot be created, not even by root


@dataclass(frozen=True)
class Case:
    """``rotalumis ARGS`` (``{E}``: the example model file, ``{B}``: bad_models.py,
    ``{T}``: a fresh directory) after the ``setup`` commands (which must succeed) and the
    ``files`` written into ``{T}``; ``message`` must be in the one error line."""

    id: str
    args: tuple[str, ...]
    message: str
    setup: tuple[tuple[str, ...], ...] = ()
    files: tuple[tuple[str, str], ...] = ()


def _run(*rest: str) -> tuple[str, ...]:
    return ("run", *rest)


TRAIN_TINY = ("-n", "64", "--batch-size", "32", "--no-plot", "-q")
CASES = [
    # -- rotalumis run: the model and its observations ------------------------------------
    Case("missing-model-file", _run("nowhere.py:model"), "model file not found: nowhere.py"),
    Case("unknown-model-name", _run("{E}:nope"), "has no model named 'nope'"),
    Case("target-without-name", _run("{E}"), "expected FILE.py:MODEL"),
    Case("model-file-fails-to-import", _run("{T}/broken.py:model"), "importing",
         files=(("broken.py", "raise RuntimeError('broken on purpose')\n"),)),
    Case("model-file-syntax-error", _run("{T}/syntax.py:model"), "SyntaxError",
         files=(("syntax.py", "def model(:\n"),)),
    Case("not-a-model", _run("{T}/obj.py:thing"), "not a model",
         files=(("obj.py", "thing = 3\n"),)),
    Case("unknown-engine", _run("{E}:model", "-e", "magic"), "unknown engine 'magic'"),
    Case("unknown-observation", _run("{E}:model", "-o", "bogus=1"), "never observes bogus"),
    Case("observation-without-value", _run("{E}:model", "-o", "obs0"), "NAME=VALUE"),
    Case("observation-not-a-number", _run("{E}:model", "-o", "obs0=abc"), "not a number"),
    Case("observation-bool", _run("{E}:model", "-o", "obs0=true"), "not a number or a list"),
    Case("observation-missing-file", _run("{E}:model", "-o", "obs0=@none.npy"), "file not found"),
    Case("observation-nan", _run("{E}:model", "-o", "obs0=NaN"), "must be finite"),
    Case("observation-given-twice", _run("{E}:model", "-o", "obs0=1", "-o", "obs0=2"),
         "'obs0' twice"),
    # observation shapes (issue 12, defect 5)
    Case("vector-for-scalar-site", _run("{E}:model", "-o", "obs0=[8,9]", "-o", "obs1=9"),
         "the data have shape (2,), but the site"),
    Case("empty-list-for-scalar-site", _run("{E}:model", "-o", "obs0=[]", "-o", "obs1=9"),
         "the data have shape (0,)"),
    Case("matrix-for-vector-site", _run("{B}:vector_site", "-o", "v=[[1,2,3],[4,5,6]]"),
         "have shape (2, 3), but the site"),
    Case("short-vector-for-vector-site", _run("{B}:vector_site", "-o", "v=[1,2]"),
         "draws values of shape (3,)"),
    Case("number-for-vector-site", _run("{B}:vector_site", "-o", "v=1"), "are a number, but"),
    # numbers and options
    Case("zero-traces", _run("{E}:model", "-n", "0"), "num_traces must be a positive integer"),
    Case("traces-not-a-number", _run("{E}:model", "-n", "abc"), "'-n' / '--num-traces'"),
    Case("unknown-option", _run("{E}:model", "--bogus"), "No such option: --bogus"),
    Case("negative-workers", _run("{E}:model", "--workers", "-1"), "workers must be"),
    Case("cluster-and-workers", _run("{E}:model", "--workers", "2", "--cluster", "local:2"),
         "--workers or --cluster, not both"),
    Case("malformed-cluster", _run("{E}:model", "--cluster", "local:zero"),
         "--cluster: cluster 'local:zero' is neither"),
    Case("negative-rmh-scale", _run("{E}:model", "-e", "rmh", "--scale", "-1"),
         "RMH scale must be a positive number"),
    Case("zero-thin", _run("{E}:model", "-e", "rmh", "--thin", "0"), "thin must be a positive"),
    Case("mcmc-option-for-is", _run("{E}:model", "-e", "is", "--burn-in", "100"),
         "--burn-in only applies to the MCMC engines"),
    Case("chains-for-prior", _run("{E}:model", "-e", "prior", "--chains", "4"),
         "--chains only applies to the MCMC engines"),
    Case("scale-for-lmh", _run("{E}:model", "-e", "lmh", "--scale", "0.3"),
         "--scale only applies to -e rmh"),
    Case("network-for-is", _run("{E}:model", "--network", "net.pt"), "--network only applies"),
    Case("ic-without-network", _run("{E}:model", "-e", "ic"), "needs a trained inference network"),
    Case("ic-missing-network", _run("{E}:model", "-e", "ic", "--network", "{T}/none.pt"),
         "none.pt"),
    Case("report-without-out", _run("{E}:model", "--report"), "--report needs --out"),
    Case("negative-max-choices", _run("{E}:model", "--max-choices", "-1"), "--max-choices"),
    # the model misbehaves (defects 6, 8, 9)
    Case("endless-draws", _run("{B}:endless_draws", "--seed", "4", "--max-choices", "20000"),
         "made more than 20,000 random choices"),
    Case("endless-loop", _run("{B}:endless_loop", "--seed", "4", "--max-seconds", "0.4"),
         "ran longer than 0.4 s"),
    Case("exception-in-forward", _run("{B}:raises", "-n", "500", "--seed", "3"),
         "raised ZeroDivisionError: float division by zero (in trace 9 of the run with seed 3"),
    Case("every-weight-zero", _run("{B}:impossible", "-n", "100"), "importance weights are zero"),
    Case("same-name-twice", _run("{B}:same_name_twice", "-n", "10"),
         "two sample sites are named 'x' in one execution: same_name_twice:59/_draw:53__Normal__1 "
         "and same_name_twice:59/_draw:53__Normal__2"),
    # --out (defect 4): checked before the inference (here it would fail)
    Case("out-is-a-file", _run("{B}:raises", "-n", "500", "--out", "{T}/taken"),
         "--out {T}/taken exists and is not a directory", files=(("taken", "x"),)),
    Case("out-unwritable", _run("{B}:raises", "-n", "500", "--out", f"{NO_PLACE}/res"),
         f"--out {NO_PLACE}/res: cannot write in"),
    Case("out-holds-other-files", _run("{B}:raises", "-n", "500", "--out", "{T}"),
         "holds files that are not results of `rotalumis run` (notes.txt)",
         files=(("notes.txt", "mine"),)),
    # -- rotalumis train ------------------------------------------------------------------
    Case("train-nothing-to-train", ("train",), "give a model FILE.py:MODEL"),
    Case("train-device-unknown", ("train", "{E}:model", "--device", "foo"), "unknown device 'foo'"),
    Case("train-bad-schedule", ("train", "{E}:model", "--schedule", "zigzag"), "schedule"),
    Case("train-bad-lr-scaling", ("train", "{E}:model", "--lr-scaling", "cubic"), "--lr-scaling"),
    Case("train-negative-warmup", ("train", "{E}:model", "--warmup", "-5"), "--warmup must be"),
    Case("train-bad-embedding", ("train", "{E}:model", "--embedding", "obs0=rnn"), "--embedding"),
    Case("train-missing-dataset", ("train", "--dataset", "{T}/nodata"), "not a trace dataset"),
    Case("train-out-unwritable", ("train", "{E}:model", "--out", f"{NO_PLACE}/net.pt"),
         f"--out {NO_PLACE}/net.pt: cannot write in"),
    Case("train-out-is-a-directory", ("train", "{E}:model", "--out", "{T}"), "is a directory"),
    Case("train-model-raises",
         ("train", "{B}:raises", "--out", "{T}/net.pt", "--on-invalid", "raise", *TRAIN_TINY),
         "raised ZeroDivisionError: float division by zero (in trace 20 of training batch 0 of "
         "the run with seed 0"),
    Case("train-model-raises-in-worker",
         ("train", "{B}:raises", "--out", "{T}/net.pt", "--workers", "1", "--on-invalid", "raise",
          *TRAIN_TINY),
         "(in trace 20 of training batch 0 of the run with seed 0"),
    Case("train-resume-other-settings",
         ("train", "{E}:model", "--out", "{T}/net.pt", "--lstm-dim", "16", *TRAIN_TINY),
         "belongs to another training run: lstm_dim 8 (now 16)",
         setup=(("train", "{E}:model", "--out", "{T}/net.pt", "--lstm-dim", "8", *TRAIN_TINY),)),
    Case("train-resume-other-seed",
         ("train", "{E}:model", "--out", "{T}/net.pt", "--seed", "2", *TRAIN_TINY),
         "seed 0 (now 2)",
         setup=(("train", "{E}:model", "--out", "{T}/net.pt", *TRAIN_TINY),)),
    # -- rotalumis dataset ----------------------------------------------------------------
    Case("dataset-zero-traces", ("dataset", "generate", "{E}:model", "-n", "0", "--out", "{T}/d"),
         "num_traces must be a positive integer"),
    Case("dataset-out-unwritable",
         ("dataset", "generate", "{E}:model", "-n", "10", "--out", f"{NO_PLACE}/d"),
         "cannot write the dataset to"),
    Case("dataset-out-is-a-file",
         ("dataset", "generate", "{E}:model", "-n", "10", "--out", "{T}/taken"),
         "exists and is not a directory", files=(("taken", "x"),)),
    Case("dataset-shrink",
         ("dataset", "generate", "{E}:model", "-n", "10", "--traces-per-shard", "10",
          "--out", "{T}/d", "-q"),
         "is a dataset of 40 traces: asking for 10 would shrink it",
         setup=(("dataset", "generate", "{E}:model", "-n", "40", "--traces-per-shard", "10",
                 "--out", "{T}/d", "-q", "--seed", "1"),)),
    Case("dataset-other-seed",
         ("dataset", "generate", "{E}:model", "-n", "40", "--traces-per-shard", "10",
          "--out", "{T}/d", "-q", "--seed", "2"),
         "was generated with seed 1, not 2",
         setup=(("dataset", "generate", "{E}:model", "-n", "20", "--traces-per-shard", "10",
                 "--out", "{T}/d", "-q", "--seed", "1"),)),
    Case("dataset-info-missing", ("dataset", "info", "{T}/nothing"), "is not a trace dataset"),
    # -- rotalumis report -----------------------------------------------------------------
    Case("report-missing-dir", ("report", "{T}/nothing"), "empirical.npz not found"),
    Case("report-malformed-truth", ("report", "{T}", "--truth", "mu"), "NAME=NUMBER"),
    Case("report-top-zero", ("report", "{T}", "--top", "0"), "--top must be at least 1"),
    Case("report-unknown-truth", ("report", "{T}/res", "--truth", "sigma=1"),
         "truth given for 'sigma', which this result does not have (named latents: mu",
         setup=(_run("{E}:model", "-n", "200", "-o", "obs0=8", "-q", "--out", "{T}/res"),)),
    # -- rotalumis serve ------------------------------------------------------------------
    Case("serve-missing-model", ("serve", "nowhere.py:model"), "model file not found"),
    Case("serve-bad-address", ("serve", "{E}:model", "--address", "udp://x"),
         "invalid PPX address"),
    Case("serve-port-too-large", ("serve", "{E}:model", "--address", "tcp://127.0.0.1:70000"),
         "port '70000' is not a number from 1 to 65535"),
    Case("serve-negative-limit", ("serve", "{E}:model", "--max-seconds", "-1"),
         "--max-seconds must be >= 0"),
    Case("serve-port-not-a-number", ("serve", "{E}:model", "--address", "tcp://127.0.0.1:http"),
         "port 'http' is not a number"),
]  # fmt: skip


def _fill(text: str, tmp: Path) -> str:
    return text.replace("{E}", EXAMPLE).replace("{B}", BAD).replace("{T}", str(tmp))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_bad_input_is_one_error_line(case: Case, cli: ForkedCLI, tmp_path: Path) -> None:
    for name, text in case.files:
        (tmp_path / name).write_text(text)
    for args in case.setup:
        r = cli(*(_fill(a, tmp_path) for a in args), cwd=tmp_path)
        assert r.returncode == 0, f"setup {args} failed: {r.stderr}"
    r = cli(*(_fill(a, tmp_path) for a in case.args), cwd=tmp_path, timeout=90)
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert _fill(case.message, tmp_path) in lines[0]
    assert r.returncode == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_train_on_cuda_without_cuda_is_one_error_line(cli: ForkedCLI, tmp_path: Path) -> None:
    r = cli("train", f"{EXAMPLE}:model", "--device", "cuda", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("error: device 'cuda': CUDA is not available here")
    assert len(r.stderr.strip().splitlines()) == 1


# -- the Python API ------------------------------------------------------------------------


class _UnknownMean(rl.Model):
    def forward(self) -> float:
        mu = rl.sample(rl.Normal(1.0, 5**0.5), name="mu")
        rl.observe(rl.Normal(mu, 2**0.5), name="obs0")
        return mu


def _model(path: str, name: str) -> Any:
    sys.path.insert(0, str(Path(path).parent))
    try:
        import bad_models
    finally:
        sys.path.pop(0)
    return getattr(bad_models, name)


def _posterior(model: Any, **kwargs: Any) -> Callable[[], Any]:
    kwargs.setdefault("seed", 0)
    return lambda: model.posterior(100, **kwargs)


def _remote_on_port_70000() -> Any:
    from rotalumis.remote import RemoteModel

    return RemoteModel("tcp://127.0.0.1:70000", timeout=1)


def _train_on(device: str) -> Any:
    from rotalumis.nn import TrainingConfig, train_network

    return train_network(model=_UnknownMean(), config=TrainingConfig(num_traces=32), device=device)


def _with_limits(**limits: Any) -> Any:
    from rotalumis.core.limits import limit_traces

    with limit_traces(**limits):
        pass


def _limits(**limits: Any) -> Any:
    from rotalumis.core.limits import TraceLimits

    return TraceLimits(**limits)


M = _UnknownMean()
API_CASES: list[tuple[str, Callable[[], Any], type[BaseException], str]] = [
    ("unknown-observation", _posterior(M, observe={"nope": 1.0}), rl.ObservationError,
     "never observes nope"),
    ("unknown-engine", _posterior(M, engine="magic"), ValueError, "unknown engine 'magic'"),
    ("nan-observation", _posterior(M, observe={"obs0": float("nan")}), rl.ObservationError,
     "must be finite"),
    ("text-observation", _posterior(M, observe={"obs0": "eight"}), rl.ObservationError,
     "must be a number"),
    ("vector-for-scalar-site", _posterior(M, observe={"obs0": [8.0, 9.0]}), rl.ObservationError,
     "observation 'obs0': the data have shape (2,), but the site"),
    ("empty-list", _posterior(M, observe={"obs0": []}), rl.ObservationError, "shape (0,)"),
    ("matrix-for-vector-site",
     _posterior(_model(BAD, "vector_site"), observe={"v": torch.ones(2, 3)}),
     rl.ObservationError, "have shape (2, 3), but the site"),
    ("short-vector", _posterior(_model(BAD, "vector_site"), observe={"v": [1.0, 2.0]}),
     rl.ObservationError, "draws values of shape (3,)"),
    ("mcmc-option-for-is", _posterior(M, engine="is", burn_in=10), TypeError, "burn_in"),
    ("zero-traces", lambda: M.posterior(0), ValueError, "num_traces must be a positive integer"),
    ("negative-workers", _posterior(M, workers=-1), ValueError, "workers must be"),
    ("seed-not-an-int", _posterior(M, seed="zero"), TypeError, "seed must be an int"),
    ("bad-distribution-parameter", lambda: rl.Normal(0.0, -1.0), rl.DistributionError, "stddev"),
    ("exception-in-forward", _posterior(_model(BAD, "raises"), seed=3), rl.ModelError,
     "raised ZeroDivisionError: float division by zero (in trace 9 of the run with seed 3"),
    ("exception-in-forward-mcmc", _posterior(_model(BAD, "raises"), engine="rmh", seed=3),
     rl.ModelError, "raised ZeroDivisionError: float division by zero (in execution"),
    ("every-weight-zero", _posterior(_model(BAD, "impossible")), rl.InferenceError,
     "importance weights are zero"),
    ("same-name-twice", _posterior(_model(BAD, "same_name_twice")), rl.ModelError,
     "two sample sites are named 'x'"),
    ("endless-draws", _posterior(_model(BAD, "endless_draws"), max_choices=5000),
     rl.ModelError, "made more than 5,000 random choices"),
    ("endless-loop", _posterior(_model(BAD, "endless_loop"), max_seconds=0.3), rl.ModelError,
     "ran longer than 0.3 s"),
    ("bad-limit", _posterior(M, max_choices=0), ValueError, "max_choices must be a positive"),
    ("unknown-limit", lambda: _with_limits(max_memory=1), ValueError, "unknown trace limit"),
    ("bad-limits-attribute", lambda: _limits(max_seconds=-1.0), ValueError, "max_seconds"),
    ("remote-port-too-large", _remote_on_port_70000, ValueError, "port '70000'"),
    ("train-device-unknown", lambda: _train_on("foo"), ValueError, "unknown device 'foo'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [case[1:] for case in API_CASES],
    ids=[case[0] for case in API_CASES],
)
def test_api_bad_input_raises_the_named_error(
    call: Callable[[], Any], error: type[BaseException], message: str
) -> None:
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
