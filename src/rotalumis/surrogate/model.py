"""The trained surrogate as a model: the simulator's addresses at neural-network speed."""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import torch

from rotalumis.core import (
    Handler,
    Message,
    Model,
    ModelError,
    current_execution,
    current_rng,
    observe,
    sample,
    tag,
)

from ._batch import DraftedValue, DraftQueue, DraftStep, learn, value_rows
from ._sites import LearnedDistribution, SiteLayers
from ._skip import push, skip_size
from .network import END, UNKNOWN, SurrogateNetwork

__all__ = ["SurrogateModel", "SurrogateStats"]

log = logging.getLogger(__name__)


@dataclass
class SurrogateStats:
    """Counts of a surrogate's executions.

    Attributes:
        executions: Executions run.
        fallbacks: Executions handed to the simulator (an "unknown" prediction).
    """

    executions: int = 0
    fallbacks: int = 0

    @property
    def fallback_rate(self) -> float:
        """Fraction of executions that fell back to the simulator."""
        return self.fallbacks / self.executions if self.executions else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what run outputs record)."""
        return {
            "executions": self.executions,
            "fallbacks": self.fallbacks,
            "fallback_rate": self.fallback_rate,
        }


class _Fallback(Exception):
    """The surrogate met a part of the program it never learned."""


class _ReplayPrefix(Handler):
    """Replays, and hides from outer handlers, the sites the surrogate already made."""

    def __init__(self, prefix: dict[str, Any]) -> None:
        super().__init__()
        self.prefix = prefix

    def process(self, msg: Message) -> None:
        if msg.address in self.prefix:
            msg.value = self.prefix.pop(msg.address)
            msg.stop = True


class SurrogateModel(Model):
    """A trained surrogate network run as a model with the simulator's addresses and names.

    Every execution walks the network: predict the next address (or the end of the
    trace; only among the transitions seen in training), make the random choice there with
    the learned distribution (through :func:`~rotalumis.core.sample`/``observe``, so
    engines condition, propose and replay it as they would the simulator's), feed the
    value back. Randomness comes only from
    the engine's seeded stream, so the same seed gives the same traces.

    When the network predicts "unknown" (an address it never learned, an inconsistent
    instance counter, or a trace longer than ``max_length``), the execution continues in
    the simulator: it is re-run with the surrogate's choices so far replayed, and
    :attr:`stats` counts the fallback (a model without ``simulator`` raises instead).

    Executions are batched (``batch > 1``, a one-layer LSTM): ``batch`` executions of a
    random stream are drafted in lockstep, sharing each network call, and each execution
    replays its draft through the engine's handlers, continuing one step at a time where
    the handlers choose another value (see :mod:`rotalumis.surrogate._batch`). The traces
    have the same distribution as with ``batch=1`` (one network call per site), not the
    same values.

    Args:
        network: The trained :class:`SurrogateNetwork`.
        simulator: The model it imitates, for fallbacks (``None``: no fallback).
        name: Model name (default: ``Surrogate(<imitated model>)``).
        batch: Executions drafted together (1: one at a time).
    """

    def __init__(
        self,
        network: SurrogateNetwork,
        simulator: Model | None = None,
        name: str | None = None,
        batch: int = 64,
    ) -> None:
        super().__init__(name or f"Surrogate({network.model_name or 'model'})")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"SurrogateModel: batch must be a positive integer, got {batch!r}")
        self.network = network.eval()
        self.simulator = simulator
        self.stats = SurrogateStats()
        self.batch = batch
        self._drafts = DraftQueue(batch)
        cfg = network.config
        self.max_length = cfg.max_length or 4 * max(network.longest, 1)
        self._sample_transitions = cfg.transitions == "sample"
        self._skip = skip_size(cfg)  # width of the heads' skip inputs (0: none)
        self._prepared = -1  # number of addresses the cached weights were built for
        # the (base address, kind, instance) that each class's full address stands for
        self._where: list[tuple[str, str, int]] = []
        for spec in network.specs:
            base, kind, instance = spec.address.rsplit("__", 2)
            self._where.append((base, kind, int(instance)))

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], simulator: Model | None = None, batch: int = 64
    ) -> SurrogateModel:
        """Load a surrogate saved with :meth:`SurrogateNetwork.save`."""
        return cls(SurrogateNetwork.load(path), simulator, batch=batch)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_drafts"] = DraftQueue(self.batch)  # drafts belong to this process's streams
        return state

    @property
    def imitates(self) -> str | None:
        """Name of the model the surrogate imitates."""
        return self.network.model_name

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """One execution; returns the named values (latents, observations, tags)."""
        self.stats.executions += 1
        made: dict[str, Any] = {}
        try:
            with torch.no_grad():  # not inference_mode: values may meet autograd later
                if self._prepared != len(self.network.specs):
                    self._prepare()
                if self.batch > 1 and self.network.lstm.num_layers == 1:
                    steps, guesses = self._drafts.next(self, current_rng())
                    return self._walk(made, steps, guesses)
                return self._walk(made, None, {})
        except _Fallback as why:
            return self._fallback(made, str(why), args, kwargs)

    def _cell(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One LSTM step (a plain cell for one layer: nn.LSTM's per-call cost dominates)."""
        lstm = self.network.lstm
        if lstm.num_layers != 1:
            out, state = lstm(x.unsqueeze(0), state)
            return out[0], state
        h, c = state if state is not None else (x.new_zeros(1, lstm.hidden_size),) * 2
        h, c = self._lstm_cell(x, h, c)
        return h, (h, c)

    def _lstm_cell(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of the one-layer LSTM for rows ``x`` with states ``(h, c)``."""
        gates = torch.addmm(self._bias, x, self._w_ih) + h @ self._w_hh
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def _prepare(self) -> None:
        net = self.network
        weights = dict(net.lstm.named_parameters())
        self._w_ih = weights["weight_ih_l0"].detach().T.contiguous()
        self._w_hh = weights["weight_hh_l0"].detach().T.contiguous()
        self._bias = (weights["bias_ih_l0"] + weights["bias_hh_l0"]).detach().unsqueeze(0)
        special = net.special
        rows = [net.layers(i).transition.detach() for i in range(len(net.specs))]
        w = torch.cat([special.weight.detach(), torch.stack(rows)[:, :-1]]) if rows else None
        b = torch.cat([special.bias.detach(), torch.stack(rows)[:, -1]]) if rows else None
        self._w_out = (w if w is not None else special.weight.detach()).T.contiguous()
        self._b_out = (b if b is not None else special.bias.detach()).unsqueeze(0)
        # per previous class (END stands for the start): -inf on transitions never seen
        classes = {"": END, **{a: i + 2 for i, a in enumerate(net.addresses)}}
        # (a row of zeros: no transition recorded after that class, nothing masked)
        mask_rows = torch.zeros(len(classes) + 1, len(classes) + 1)
        for before, after in net.successors.items():
            if before not in classes:
                continue
            row = mask_rows[classes[before]]
            row.fill_(-math.inf)
            row[UNKNOWN] = 0.0
            row[[classes[a] for a in after if a in classes]] = 0.0
        self._mask_rows = mask_rows  # indexed by the previous class
        self._drafts.clear()
        self._discrete = [s.site.head in ("cat", "count") and not s.site.value_shape
                          for s in net.specs]  # fmt: skip
        self._embeddings: dict[tuple[int, Any], torch.Tensor] = {}
        self._prepared = len(net.specs)

    def _next(self, h: torch.Tensor, previous: int) -> int:
        logits = (torch.addmm(self._b_out, h, self._w_out) + self._mask_rows[previous])[0]
        if self._sample_transitions:
            g = current_rng().torch
            return int(torch.multinomial(torch.softmax(logits.double(), 0).cpu(), 1, generator=g))
        return int(torch.argmax(logits))

    def _walk(
        self, made: dict[str, Any], steps: list[DraftStep] | None, guesses: dict[int, Any]
    ) -> dict[str, Any]:
        """One execution, read from the draft ``steps`` while it holds, then step by step."""
        net = self.network
        x = torch.zeros(1, net.config.address_dim + net.config.value_dim)
        state: Any = None
        counts: dict[tuple[str, str], int] = {}
        named: dict[str, Any] = {}
        c = END  # the start
        drafted: DraftedValue | None = None
        skip = x.new_zeros(1, self._skip)  # the skip inputs (see ._skip)
        for t in range(self.max_length):
            step = steps[t] if steps is not None and t < len(steps) else None
            if step is not None:
                h, state, c = step.h, step.state, step.cls
            else:
                h, state = self._cell(x, state)
                c = self._next(h, c)
            if c == END:
                return named
            if c == UNKNOWN:
                raise _Fallback("the network predicted an unknown address")
            i = c - 2
            spec = net.specs[i]
            base, kind, instance = self._where[i]
            n = counts.get((base, kind), 0) + 1
            if n != instance:
                raise _Fallback(f"visit {n} of {base} predicted as visit {instance}")
            counts[(base, kind)] = n
            site = net.layers(i)
            head_in = torch.cat([h, skip], 1) if self._skip else h
            dist: Any
            if step is not None:
                drafted = DraftedValue(step, functools.partial(_inner, site, head_in))
                dist = LearnedDistribution.of(spec.site.distribution, drafted, site.reported)
            else:
                dist = site.distribution(head_in)
            if spec.kind == "sample":
                value = sample(dist, name=spec.name, address=base, control=spec.control)
            elif spec.kind == "observe":
                value = observe(dist, name=spec.name, address=base)
            elif step is not None:  # the drafted mean
                value = step.value
                tag(value, spec.name or base, address=base)
            else:
                mean = dist.mean
                value = float(mean) if spec.site.value_shape == () else mean
                tag(value, spec.name or base, address=base)
            made[spec.address] = value
            if spec.name is not None:
                named[spec.name] = value
            if self._skip:
                skip = push(skip, self._skip_features(site, value), spec.kind == "tag", net.config)
            if step is not None and drafted is not None:
                if spec.kind == "tag":
                    continue
                learn(guesses, i, drafted, value)
                if drafted.follows(value):
                    continue
                steps = None  # the handlers chose another value: on one step at a time
            x = self._embed(i, site, value)
        raise _Fallback(f"more than {self.max_length} sites")

    def _embed(self, i: int, site: Any, value: Any) -> torch.Tensor:
        """The LSTM input after a visit (cached for discrete values: a few per address)."""
        discrete = self._discrete[i]
        if discrete:
            hit = self._embeddings.get((i, value))
            if hit is not None:
                return hit
        x: torch.Tensor = site.embed(torch.as_tensor(value, dtype=torch.float32).reshape(1, -1))
        if discrete:
            self._embeddings[(i, value)] = x
        return x

    @staticmethod
    def _skip_features(site: SiteLayers, value: Any) -> torch.Tensor:
        """The skip features ``(1, skip_width)`` of a visit of ``site`` with ``value``."""
        return site.skip_features(torch.as_tensor(value, dtype=torch.float32).reshape(1, -1))

    def _embed_batch(self, i: int, values: list[Any]) -> torch.Tensor:
        """LSTM inputs ``(n, width)`` after visits of address ``i`` with ``values``."""
        return self.network.layers(i).embed(value_rows(values))

    def _fallback(
        self, made: dict[str, Any], why: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if self.simulator is None:
            raise ModelError(
                f"surrogate {self.name}: {why} and it has no simulator to fall back on "
                "(give SurrogateModel(..., simulator=) or train it longer)"
            )
        self.stats.fallbacks += 1
        log.info("surrogate %s: %s; falling back to the simulator", self.name, why)
        ex = current_execution()
        if ex is None:  # called outside a model run: just run the simulator
            return self.simulator.forward(*args, **kwargs)
        saved_entry = ex.entry_code
        ex.flush_deferred()
        ex.counters.clear()  # the simulator revisits the prefix from instance 1
        ex.choices -= len(made)
        ex.entry_code = self.simulator.entry_code
        try:
            with _ReplayPrefix(dict(made)):
                return self.simulator.forward(*args, **kwargs)
        finally:
            ex.entry_code = saved_entry


def _inner(site: SiteLayers, h: torch.Tensor) -> Any:
    """The learned distribution (unwrapped) of ``site`` given head input ``h``."""
    return site.distribution(h).inner
