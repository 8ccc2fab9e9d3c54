"""The :class:`Trace`: everything one execution of a model did, in order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .errors import ModelError
from .runtime import Message

__all__ = ["Trace", "Variable", "use_compiled_settle"]

_COMPILED_SETTLE: Callable[[Trace], bool] | None = None


def use_compiled_settle(settle: Callable[[Trace], bool] | None) -> None:
    """Install a compiled :meth:`Trace.settle` (``None``: the Python one).

    ``settle(trace)`` must do exactly what the Python code does, or return ``False``
    without changing anything (the Python code then runs). Interception's C accelerator
    installs one (``rotalumis.intercept._accel``); the core never imports it.
    """
    global _COMPILED_SETTLE
    _COMPILED_SETTLE = settle


def _records(pending: list[Any]) -> Iterator[tuple[str, str, Any, Any, bool]]:
    for entry in pending:
        if type(entry) is tuple:
            yield entry
        else:  # a batch of records
            yield from entry


Variable = Message
"""A recorded site of a trace is the :class:`~rotalumis.core.runtime.Message` itself:
``address``, ``name``, ``distribution``, ``value``, ``log_prob``, ``control``, ``observed``."""


class Trace:
    """The ordered record of one execution: random choices, observations, tags, result.

    Attributes:
        variables: Every recorded site (:data:`Variable`) in execution order.
        result: What the model returned.
        log_prior: Sum of ``log p`` over sampled (latent) choices.
        log_likelihood: Sum over observed sites (data) and factors.
        log_proposal_correction: Sum of ``log p - log q`` over choices drawn from a proposal.
        pending: Sites recorded directly and not yet made messages (see :meth:`settle`):
            records, or batches of records (iterables of them, kept in order).
    """

    __slots__ = (
        "_by_address",
        "_latents",
        "_log_prior",
        "_variables",
        "log_likelihood",
        "log_proposal_correction",
        "pending",
        "result",
    )

    def __init__(self) -> None:
        self._variables: list[Message] = []
        #: ``(address, base, dist, value, control)`` records, or iterables of them
        self.pending: list[Any] = []
        self.result: Any = None
        self._log_prior: Any = 0.0
        self.log_likelihood: Any = 0.0
        self.log_proposal_correction: Any = 0.0
        self._by_address: dict[str, Message] | None = None
        self._latents: dict[str, Any] = {}

    def add(self, msg: Message) -> None:
        """Record ``msg`` (called by the trace handler once the value is final).

        Raises:
            ModelError: for a second latent ``sample`` site with the name of an earlier one
                (names the addresses of both).
        """
        if self.pending:
            self.settle()
        self._variables.append(msg)
        kind = msg.kind
        if kind == "sample" and not msg.observed:
            self._log_prior += msg.log_prob
            name = msg.name
            if name is not None:
                latents = self._latents
                if name in latents:
                    self._duplicate_name(msg)
                latents[name] = msg.value
            if msg.proposal_log_prob is not None:
                self.log_proposal_correction += msg.log_prob - msg.proposal_log_prob
        elif msg.observed:  # observed data, clamped latents and factors
            self.log_likelihood += msg.log_prob
        self._by_address = None

    def settle(self) -> None:
        """Turn the pending records into recorded sites, in order.

        Under the plain prior-recording stack, an unnamed site of a scalar distribution
        (every parameter a Python number) whose value is a Python number is recorded as a
        raw ``(address, base address, distribution, value, control)`` tuple during the
        execution: the value is drawn and the address counted at once, the
        :class:`Message` and its log-probability are made here, when the trace is first
        read (:attr:`variables`, :attr:`log_prior`, any method) or the next site is added.
        The result is the same as recording each site at once: same messages, same order,
        same ``log_prior`` (summed in the same order), since such a site's log-probability
        is a function of Python numbers only. An entry of ``pending`` that is not a
        record is a batch of them (the compiled path of :mod:`rotalumis.intercept` appends
        one that counts its draws' instance numbers in C and makes the records here).
        """
        compiled = _COMPILED_SETTLE
        if compiled is not None and compiled(self):
            return
        pending = self.pending
        self.pending = []
        variables = self._variables
        log_prior = self._log_prior
        for address, base, dist, value, control in _records(pending):
            msg = Message("sample", None, address, base, dist, value, control)
            lp = msg.log_prob = dist.log_prob_sum(value)
            log_prior += lp
            variables.append(msg)
        self._log_prior = log_prior
        self._by_address = None

    @property
    def variables(self) -> list[Message]:
        """Every recorded site (:data:`Variable`) in execution order."""
        if self.pending:
            self.settle()
        return self._variables

    @property
    def log_prior(self) -> Any:
        """Sum of ``log p`` over sampled (latent) choices."""
        if self.pending:
            self.settle()
        return self._log_prior

    @log_prior.setter
    def log_prior(self, value: Any) -> None:
        if self.pending:
            self.settle()
        self._log_prior = value

    def _duplicate_name(self, msg: Message) -> None:
        first = next(
            v.address
            for v in self.variables
            if v.name == msg.name and v.kind == "sample" and not v.observed
        )
        raise ModelError(
            f"two sample sites are named {msg.name!r} in one execution: {first} and "
            f"{msg.address}; a name must be unique within an execution (leave name= out, "
            "or make it unique, e.g. name=f'x{i}')"
        )

    # -- weights -----------------------------------------------------------------------
    @property
    def log_prob(self) -> Any:
        """The joint ``log p(latents, data)`` of this execution."""
        return self.log_prior + self.log_likelihood

    @property
    def log_importance_weight(self) -> Any:
        """``log p(x, y) - log q(x)``: likelihood plus prior/proposal correction."""
        return self.log_likelihood + self.log_proposal_correction

    # -- structure ----------------------------------------------------------------------
    @property
    def samples(self) -> list[Message]:
        """The latent random choices (``sample`` sites), in order."""
        return [v for v in self.variables if v.kind == "sample"]

    @property
    def controlled(self) -> list[Message]:
        """The sample sites engines control (``control=True``)."""
        return [v for v in self.variables if v.kind == "sample" and v.control and not v.observed]

    @property
    def observations(self) -> list[Message]:
        """The ``observe`` sites, in order."""
        return [v for v in self.variables if v.kind == "observe"]

    @property
    def trace_type(self) -> tuple[str, ...]:
        """The sequence of controlled addresses: traces with equal keys share a structure."""
        return tuple(
            v.address for v in self.variables if v.kind == "sample" and v.control and not v.observed
        )

    @property
    def named(self) -> dict[str, Any]:
        """Values of named sites by name (a repeated name keeps its last value)."""
        return {v.name: v.value for v in self.variables if v.name is not None}

    @property
    def named_latents(self) -> dict[str, Any]:
        """Values of named latent ``sample`` sites (names are unique among them, see
        :meth:`add`); these are the latents engines report in posteriors."""
        return self._latents

    def by_address(self) -> dict[str, Message]:
        """The sites keyed by full address."""
        m = self._by_address
        if m is None:
            m = self._by_address = {v.address: v for v in self.variables}
        return m

    def __getitem__(self, key: str) -> Message:
        """The site with this address, or else the last site with this name."""
        site = self.by_address().get(key)
        if site is not None:
            return site
        for v in reversed(self.variables):
            if v.name == key:
                return v
        raise KeyError(f"no site with address or name {key!r} in this trace")

    def __contains__(self, key: object) -> bool:
        return key in self.by_address() or any(v.name == key for v in self.variables)

    def __iter__(self) -> Iterator[Message]:
        return iter(self.variables)

    def __len__(self) -> int:
        return len(self.variables)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (addresses, names, values as lists, log-probs)."""

        def plain(x: Any) -> Any:
            return x.tolist() if hasattr(x, "tolist") else x

        return {
            "result": plain(self.result),
            "log_prior": float(self.log_prior),
            "log_likelihood": float(self.log_likelihood),
            "variables": [
                {
                    "kind": v.kind,
                    "address": v.address,
                    "name": v.name,
                    "distribution": repr(v.distribution) if v.distribution else None,
                    "value": plain(v.value),
                    "log_prob": float(v.log_prob) if v.log_prob is not None else None,
                    "control": v.control,
                    "observed": v.observed,
                }
                for v in self.variables
            ],
        }

    def __repr__(self) -> str:
        return (
            f"Trace({len(self.variables)} sites, {len(self.trace_type)} controlled, "
            f"log_prob={float(self.log_prob):.4g})"
        )
