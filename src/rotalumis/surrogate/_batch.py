"""Batched surrogate executions: many walks of the network in lockstep, replayed one by one.

One execution at a time, a surrogate pays a network call per site (an LSTM step, a head, a
flow inversion) for one row. Here ``n`` executions are *drafted* together: at every step
all drafts still running share one LSTM step and one transition layer, and the drafts that
visit the same address share one head call (one flow inversion for all of them). A draft
records, per step, the predicted address, the LSTM state, the value and its log-density.

A draft is then *replayed* by one ordinary execution (:meth:`SurrogateModel.forward`):
each site is made with the usual ``sample``/``observe``, through whatever handlers the
engine installed, with a distribution (:class:`DraftedValue` inside the usual
:class:`~._sites.LearnedDistribution`) that hands out the drafted value when the default
behaviour draws one and scores the drafted value with its drafted log-density. As long as
the value the handlers settle on is the drafted one, the next step is read from the draft;
from the first site where it is not (an observation, a replayed or proposed value) the
execution continues one step at a time from the drafted LSTM state, exactly as without
drafts. Each drafted value is a fresh draw from the surrogate's distribution given the
history the execution actually had, so the traces have the same distribution as one at a
time; they are reproducible because the drafts' random stream is seeded from the
execution's.

*Speculation*: an address whose value the handlers supplied in the previous execution (an
observation that engines condition on) is drafted with that value rather than a draw, and
its log-density computed in the batch; the draft stays valid where the handlers supply the
same value again (every execution of importance sampling given the data).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from rotalumis.core import RNG, Distribution
from rotalumis.core.rng import derive_seed
from rotalumis.nn import FlowHead

from ._skip import push
from .network import END, UNKNOWN

__all__ = [
    "DraftQueue",
    "DraftStep",
    "DraftedValue",
    "draft",
    "learn",
    "same_value",
    "value_rows",
]

#: Most random streams whose drafts are kept at once (threads of one process).
_STREAMS = 64


@dataclass
class DraftStep:
    """One step of a draft.

    Attributes:
        cls: Class of the transition softmax (``END``, ``UNKNOWN`` or address index + 2).
        h: LSTM output ``(1, lstm_dim)``.
        state: LSTM state after the step.
        value: The drafted value (``None`` at the end of the draft).
        log_q: Its log-density (``log_prob_sum`` of the learned distribution).
        speculated: The value is the one handlers supplied last time, not a draw.
    """

    cls: int
    h: torch.Tensor
    state: tuple[torch.Tensor, torch.Tensor]
    value: Any = None
    log_q: Any = None
    speculated: bool = False


def same_value(a: Any, b: Any) -> bool:
    """Whether two values of a site are the same (identical, or equal with equal shape)."""
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return type(a) is type(b) and a == b
    return False


class DraftedValue(Distribution):
    """The learned distribution at one visit, with a value drafted for it.

    ``sample`` hands out the drafted value (once; a speculated value is never handed out:
    a draw is made then); ``log_prob``/``log_prob_sum`` of the drafted value return its
    drafted log-density; everything else is computed by the learned distribution, built on
    first need by ``build``.
    """

    __slots__ = ("_build", "_inner", "drew", "step")
    name: ClassVar[str] = "Drafted"

    def __init__(self, step: DraftStep, build: Any) -> None:
        self.step = step
        self._build = build
        self._inner: Distribution | None = None
        #: The value this distribution handed out (``None``: none).
        self.drew: Any = None

    @property
    def inner(self) -> Distribution:
        """The learned distribution itself."""
        if self._inner is None:
            self._inner = self._build()
        return self._inner

    @property
    def params(self) -> dict[str, Any]:
        return self.inner.params

    @property
    def is_scalar(self) -> bool:
        return self.inner.is_scalar

    def sample(self, rng: RNG) -> Any:
        step = self.step
        if self.drew is None and not step.speculated:
            self.drew = step.value
        else:  # asked twice, or speculated: a fresh draw (the draft is left)
            self.drew = self.inner.sample(rng)
        return self.drew

    def _drafted(self, value: Any) -> bool:
        step = self.step
        return value is step.value or (step.speculated and same_value(value, step.value))

    def log_prob(self, value: Any) -> Any:
        return self.inner.log_prob(value)

    def log_prob_sum(self, value: Any) -> float | torch.Tensor:
        if self._drafted(value):
            out: float | torch.Tensor = self.step.log_q
            return out
        return self.inner.log_prob_sum(value)

    def in_support(self, value: Any) -> bool:
        return self.inner.in_support(value)

    @property
    def mean(self) -> Any:
        return self.inner.mean

    @property
    def variance(self) -> Any:
        return self.inner.variance

    def follows(self, value: Any) -> bool:
        """Whether the execution went on with the drafted value (the draft stays valid)."""
        if self.step.speculated:
            return self.drew is None and same_value(value, self.step.value)
        return self.drew is not None and value is self.step.value


def _rows(state: tuple[torch.Tensor, torch.Tensor], r: int) -> tuple[torch.Tensor, torch.Tensor]:
    return state[0][r : r + 1], state[1][r : r + 1]


def draft(model: Any, n: int, rng: RNG, guesses: dict[int, Any]) -> list[Any]:
    """``n`` drafts of executions of ``model`` drawn in lockstep from ``rng``.

    Args:
        model: The surrogate (prepared, one-layer LSTM).
        n: Number of drafts.
        rng: The drafts' random stream.
        guesses: Address index -> value handlers supplied last time (speculated).

    Returns:
        Lists of :class:`DraftStep`, one per draft; a draft ends with an ``END`` or
        ``UNKNOWN`` step, or after ``max_length`` steps.
    """
    net = model.network
    cfg = net.config
    width = cfg.address_dim + cfg.value_dim
    x = torch.zeros(n, width)
    h = torch.zeros(n, net.lstm.hidden_size)
    c = torch.zeros_like(h)
    previous = torch.full((n,), END, dtype=torch.long)
    active = torch.arange(n)
    skip = torch.zeros(n, model._skip)  # the heads' skip inputs (see ._skip)
    drafts: list[list[DraftStep]] = [[] for _ in range(n)]
    for _ in range(model.max_length):
        if not len(active):
            break
        h, c = model._lstm_cell(x, h, c)
        logits = torch.addmm(model._b_out, h, model._w_out) + model._mask_rows[previous]
        if model._sample_transitions:
            probs = torch.softmax(logits.double(), 1)
            classes = torch.multinomial(probs, 1, generator=rng.torch)[:, 0]
        else:
            classes = torch.argmax(logits, 1)
        cls = classes.tolist()
        rows = active.tolist()
        groups: dict[int, list[int]] = {}
        for k, (row, cl) in enumerate(zip(rows, cls, strict=True)):
            drafts[row].append(DraftStep(cl, h[k : k + 1], _rows((h, c), k)))
            if cl not in (END, UNKNOWN):
                groups.setdefault(cl - 2, []).append(k)
        x_next = torch.zeros(len(rows), width)
        head_in = torch.cat([h, skip], 1) if model._skip else h
        for i, ks in groups.items():
            idx = torch.tensor(ks)
            steps = [drafts[rows[k]][-1] for k in ks]
            values = _draft_values(model, i, head_in.index_select(0, idx), steps, rng, guesses)
            x_next.index_copy_(0, idx, model._embed_batch(i, values))
            if model._skip:
                site = net.layers(i)
                features = site.skip_features(value_rows(values))
                tag = net.specs[i].kind == "tag"
                skip.index_copy_(0, idx, push(skip.index_select(0, idx), features, tag, cfg))
        keep = torch.tensor([cl not in (END, UNKNOWN) for cl in cls], dtype=torch.bool)
        active, x, h, c = active[keep], x_next[keep], h[keep], c[keep]
        skip = skip[keep]
        previous = classes[keep]
    return drafts


def value_rows(values: list[Any]) -> torch.Tensor:
    """Values of visits of one address as float rows ``(n, numel)``."""
    return torch.stack([torch.as_tensor(v, dtype=torch.float32).reshape(-1) for v in values])


def _draft_values(
    model: Any,
    i: int,
    h: torch.Tensor,
    steps: list[DraftStep],
    rng: RNG,
    guesses: dict[int, Any],
) -> list[Any]:
    """Draft the values of visits of address ``i`` given head inputs ``h`` (the LSTM
    outputs, then any skip inputs); fill ``steps``."""
    net = model.network
    site = net.layers(i)
    spec = net.specs[i]
    head = site.head
    guess = guesses.get(i)
    n = len(steps)
    if spec.kind == "tag":  # a tag is the mean of its distribution, as one at a time
        for k, step in enumerate(steps):
            mean = site.distribution(h[k : k + 1]).mean
            step.value = float(mean) if spec.site.value_shape == () else mean
        return [s.value for s in steps]
    if isinstance(head, FlowHead) and not site.exact:
        ref = site.reference
        flow = head._flow(h)
        params = site.params.expand(n, -1)
        dtypes = [v.dtype for v in ref.params.values() if isinstance(v, torch.Tensor)]
        dtype = dtypes[0] if dtypes else torch.get_default_dtype()
        if guess is None:
            z = torch.randn(n, head.spec.numel, generator=rng.torch, dtype=h.dtype)
            values, log_q = head.draw(flow, z, params, ref.is_scalar, dtype)
        else:
            x = torch.as_tensor(guess, dtype=torch.float64).reshape(1, -1).expand(n, -1)
            log_q = head.flow_log_prob(flow, x, params).double().tolist()
            values = [guess] * n
        for step, value, lq in zip(steps, values, log_q, strict=True):
            step.value, step.speculated = value, guess is not None
            step.log_q = lq if ref.is_scalar else torch.tensor(lq, dtype=torch.float64)
        return values
    for k, step in enumerate(steps):  # mixture and softmax heads: cheap one by one
        dist = site.distribution(h[k : k + 1])
        if guess is None:
            step.value = dist.sample(rng)
        else:
            step.value, step.speculated = guess, True
        step.log_q = dist.log_prob_sum(step.value)
    return [s.value for s in steps]


class DraftQueue:
    """Drafts waiting for executions, one queue per random stream of executions.

    A stream's first draft is drawn alone (its replay tells which values the handlers
    supply, for speculation), then ``size`` at a time, batch ``k`` from a seed derived from
    the stream's seed and ``k`` (the stream's own draws are left alone: an execution that
    falls back to the simulator at once is the simulator's); a stream that is reseeded
    starts over. So a stream's traces depend only on
    its seed, not on which other streams (chunks, threads) ran before.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._queues: dict[int, _Stream] = {}

    def next(self, model: Any, rng: RNG) -> tuple[list[DraftStep], dict[int, Any]]:
        """The next draft for an execution drawing from ``rng``, and the stream's guesses
        (address index -> the value handlers supplied at its last drafted visit)."""
        stream = self._queues.get(id(rng))
        if stream is None or stream.rng is not rng or stream.seed != rng.seed:
            stream = _Stream(rng, rng.seed, deque(), {})
            self._queues.pop(id(rng), None)
            while len(self._queues) >= _STREAMS:
                self._queues.pop(next(iter(self._queues)))
            self._queues[id(rng)] = stream
            size = 1
        else:
            size = self.size
        if not stream.drafts:  # seeded from the stream's seed: its own draws stay as they are
            stream.batches += 1
            seed = derive_seed(rng.seed, "surrogate-drafts", stream.batches)
            stream.drafts.extend(draft(model, size, RNG(seed), dict(stream.guesses)))
        return stream.drafts.popleft(), stream.guesses

    def clear(self) -> None:
        """Drop every draft (the network changed)."""
        self._queues.clear()


@dataclass
class _Stream:
    rng: RNG
    seed: int
    drafts: deque[list[DraftStep]]
    guesses: dict[int, Any]
    batches: int = 0


def learn(guesses: dict[int, Any], i: int, drafted: DraftedValue, value: Any) -> None:
    """Remember whether the handlers supplied the value of address ``i`` (to speculate)."""
    if drafted.drew is None and isinstance(value, (int, float, torch.Tensor)):
        guesses[i] = value
    else:
        guesses.pop(i, None)
