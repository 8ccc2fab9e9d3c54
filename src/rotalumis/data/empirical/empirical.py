""":class:`Empirical`: a weighted set of samples, the result of every inference engine.

An Empirical is a columnar store: the result values, the unnormalised log weights and each
named latent are columns of ``N`` entries (see ``_columns.py`` for the storage kinds), so a
million scalar entries cost tens of megabytes, not a million Python objects. It is immutable;
transforms (:meth:`~Empirical.map`, :meth:`~Empirical.filter`, :meth:`~Empirical.resample`,
...) return new Empiricals that share unchanged columns.

Weights: ``log_weights`` are kept unnormalised, because they carry the evidence estimate
(:attr:`~Empirical.log_evidence`) and let independent runs be combined
(:meth:`~Empirical.combine`). Every statistic normalises them first and raises
:class:`~rotalumis.core.errors.InferenceError` if that is impossible (all ``-inf``: every
trace contradicts the observations; NaN or ``+inf``; no entries).

Saving: :meth:`~Empirical.save` writes one ZIP/``.npz`` file with a JSON metadata member and
pickle-free ``.npy`` arrays; ``_storage.py`` documents the format.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ...core.errors import DatasetError
from ...core.rng import RNG
from ._chains import Chains, check_chains, column_ess, smallest, sub_chains
from ._column_stats import present_subset
from ._columns import (
    ArrayColumn,
    Column,
    ObjectColumn,
    RecordColumn,
    ScalarColumn,
    column_to_numpy,
    column_to_torch,
    freeze,
)
from ._concat import concat_parts
from ._from_data import column_from_data
from ._storage import read_empirical, read_info, write_empirical
from ._summary import format_table, summarize
from ._weighted_statistics import WeightedStatistics
from ._weights import (
    SeedLike,
    as_generator,
    as_log_weights,
    normalized_weights,
    resample_indices,
)
from ._weights import ess as _ess
from ._weights import log_evidence as _log_evidence
from .run_info import RunInfo

__all__ = ["Empirical"]

_COLUMN_TYPES = (ScalarColumn, ArrayColumn, ObjectColumn, RecordColumn)


class _LatentsView(Mapping[str, "Empirical"]):
    """Read-only mapping latent name -> :class:`Empirical` of that latent (built on access)."""

    def __init__(self, emp: Empirical) -> None:
        self._emp = emp

    def __getitem__(self, name: str) -> Empirical:
        return self._emp.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._emp._latents)

    def __len__(self) -> int:
        return len(self._emp._latents)


class Empirical(WeightedStatistics):
    """A weighted set of samples: values, unnormalised log weights, named latents.

    Args:
        values: All entries at once: an array or tensor whose first axis indexes entries
            (1-D: scalar values; ``(N, *shape)``: array/tensor values), a dict of such
            (dict-valued results, one column per key), or a sequence of per-entry values.
        log_weights: Unnormalised log weights, shape ``(N,)``; ``None`` for equal weights.
        latents: Named latents as columns: ``{name: array/tensor/sequence of N values}``.
        name: A label (e.g. ``"posterior"``), used in summaries.
        traces: Full traces, one per entry, if kept.

    Engines build an Empirical incrementally with :class:`EmpiricalBuilder` instead.

    Attributes:
        info: How the result was made (a :class:`~.run_info.RunInfo`: engine, options,
            seed, chains, proposal statistics), set by the engine; ``None`` otherwise.
        metadata: Free-form JSON-able notes (e.g. the CLI's run id).

    Both are saved and loaded with the result; transforms do not carry them.

    Example:
        >>> emp = Empirical([1.0, 2.0, 3.0], log_weights=[0.0, 0.0, 0.6931471805599453])
        >>> emp.mean, emp.ess
        (2.25, 2.6666666666666665)
    """

    __slots__ = (
        "_cdf",
        "_chains",
        "_ess",
        "_latents",
        "_logw",
        "_name",
        "_traces",
        "_values",
        "_w",
        "info",
        "metadata",
    )

    def __init__(
        self,
        values: Any,
        log_weights: Any = None,
        latents: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        traces: Sequence[Any] | None = None,
    ) -> None:
        col = values if isinstance(values, _COLUMN_TYPES) else column_from_data(values, "values")
        n = len(col)
        lat: dict[str, Column] = {}
        for key, data in (latents or {}).items():
            c = column_from_data(data, f"latent {key!r}")
            if len(c) != n:
                raise ValueError(f"latent {key!r} has {len(c)} entries, the values have {n}")
            lat[str(key)] = c
        if traces is not None and len(traces) != n:
            raise ValueError(f"{len(traces)} traces given for {n} entries")
        tr = None if traces is None else list(traces)
        self._init(col, as_log_weights(log_weights, n), lat, tr, name)

    def _init(
        self,
        values: Column,
        logw: np.ndarray,
        latents: dict[str, Column],
        traces: list[Any] | None,
        name: str | None,
        chains: Chains | None = None,
    ) -> None:
        self._values = values
        self._logw = logw
        self._latents = latents
        self._traces = traces
        self._name = name
        self._chains = chains
        self._w: np.ndarray | None = None
        self._cdf: np.ndarray | None = None
        self._ess: float | None = None
        # How the result was made (set by the engine) and free-form, JSON-able notes (e.g.
        # the CLI's run id); saved and loaded with it, not carried by transforms.
        self.info: RunInfo | None = None
        self.metadata: dict[str, Any] = {}

    @classmethod
    def _from_columns(
        cls,
        values: Column,
        logw: np.ndarray,
        latents: dict[str, Column],
        traces: list[Any] | None,
        name: str | None,
        chains: Chains | None = None,
    ) -> Empirical:
        obj = cls.__new__(cls)
        obj._init(values, logw, latents, traces, name, chains)
        return obj

    def _derive(self, values: Column | None = None, **kw: Any) -> Empirical:
        return Empirical._from_columns(
            self._values if values is None else values,
            kw.get("logw", self._logw),
            kw.get("latents", self._latents),
            kw.get("traces", self._traces),
            kw.get("name", self._name),
            self._chains,
        )

    # ---------------------------------------------------------------- basic access

    @property
    def name(self) -> str | None:
        """The label given at construction."""
        return self._name

    def __len__(self) -> int:
        return int(self._logw.shape[0])

    def __iter__(self) -> Iterator[Any]:
        """The values in entry order (Python numbers, tensors, arrays, dicts or objects)."""
        return self._values.rows()

    def __getitem__(self, key: int | slice | str) -> Any:
        """``emp[i]``: the value of entry ``i``; ``emp[a:b]``: an Empirical of those entries;
        ``emp["mu"]``: the Empirical of latent ``mu`` (same as :meth:`get`)."""
        if isinstance(key, str):
            return self.get(key)
        if isinstance(key, slice):
            return self._take(np.arange(len(self))[key])
        n = len(self)
        i = int(key)
        if not -n <= i < n:
            raise IndexError(f"entry {key} out of range for an Empirical of {n} entries")
        return self._values.row(i % n)

    def __repr__(self) -> str:
        label = f"{self._name!r}, " if self._name else ""
        return (
            f"Empirical({label}{len(self)} entries, values={type(self._values).__name__}, "
            f"latents={list(self._latents)})"
        )

    @property
    def traces(self) -> list[Any] | None:
        """The full traces (``None`` entries where none was given), or ``None`` if not kept."""
        return None if self._traces is None else list(self._traces)

    @property
    def latent_names(self) -> tuple[str, ...]:
        """Names of the recorded latents."""
        return tuple(self._latents)

    @property
    def latents(self) -> Mapping[str, Empirical]:
        """Read-only mapping name -> :class:`Empirical` of that latent (see :meth:`get`)."""
        return _LatentsView(self)

    def get(self, name: str) -> Empirical:
        """The Empirical of latent ``name``, with the same log weights.

        Entries whose trace did not record ``name`` are left out, so its statistics are
        conditional on the latent existing.

        Raises:
            KeyError: if no entry recorded ``name``; the message lists the known names.
        """
        col = self._latents.get(name)
        if col is None:
            raise KeyError(f"no latent named {name!r}; recorded latents: {list(self._latents)}")
        chains = self._chains
        if col.present is not None:
            chains = sub_chains(chains, np.flatnonzero(col.present))
        col, logw = present_subset(col, self._logw)
        return Empirical._from_columns(col, logw, {}, None, name, chains)

    # ---------------------------------------------------------------- weights

    @property
    def log_weights(self) -> np.ndarray:
        """Unnormalised log weights, read-only ``float64`` array of shape ``(N,)``."""
        return self._logw

    @property
    def weights(self) -> np.ndarray:
        """Normalised weights (sum 1), read-only ``float64`` array.

        Raises:
            InferenceError: if empty, if any log weight is NaN or ``+inf``, or if all are
                ``-inf`` (the observations are impossible under every sampled trace).
        """
        if self._w is None:
            self._w = freeze(normalized_weights(self._logw))
        return self._w

    @property
    def chains(self) -> tuple[int, ...] | None:
        """Lengths of the MCMC chains stored one after another, or ``None`` when the entries
        are not chains (importance sampling, prior draws, a resample)."""
        return self._chains

    @property
    def ess(self) -> float:
        """Effective sample size.

        Importance sampling and other weighted or independent samples: Kish's
        ``(sum w)^2 / sum w^2``, in ``[1, N]``. MCMC chains (:attr:`chains` set): ArviZ's
        bulk ESS, which accounts for autocorrelation, taken as the smallest over the values
        (each element of array values, each field of dict values) and the numeric latents,
        the same figure the summary tables show (NaN if the chains are too short).
        """
        if self._chains is None:
            return _ess(self._logw)
        if self._ess is None:
            chains = self._chains
            found = [column_ess(col, chains) for col in (self._values, *self._latents.values())]
            self._ess = smallest(found)
        return self._ess

    @property
    def log_evidence(self) -> float:
        """``log(mean(exp(log_weights)))``: the importance-sampling estimate of the log
        marginal likelihood ``log p(observations)`` (``-inf`` if all weights are zero)."""
        return _log_evidence(self._logw)

    # ---------------------------------------------------------------- conversion

    def to_numpy(self) -> Any:
        """The values as a read-only array of shape ``(N, ...)`` (a dict of those for dict
        values; an object array for values of varying type or shape). Entries missing a
        dict key hold NaN (floats), 0 or ``None`` there."""
        return column_to_numpy(self._values)

    def to_torch(self) -> Any:
        """The values as a tensor of shape ``(N, ...)`` (a dict of those for dict values).

        Raises:
            TypeError: for values of varying type or shape.
        """
        return column_to_torch(self._values)

    def sample(self, rng: RNG | random.Random | np.random.Generator) -> Any:
        """Draw one value with probability proportional to its weight."""
        if self._cdf is None:
            cdf = np.cumsum(self.weights)
            self._cdf = cdf / cdf[-1]
        u = rng.py.random() if isinstance(rng, RNG) else float(rng.random())
        i = min(int(np.searchsorted(self._cdf, u, side="right")), len(self) - 1)
        return self._values.row(i)

    # ---------------------------------------------------------------- transforms

    def _take(
        self, idx: np.ndarray, logw: np.ndarray | None = None, chains: bool = True
    ) -> Empirical:
        tr = self._traces
        return Empirical._from_columns(
            self._values.take(idx),
            freeze(self._logw[idx] if logw is None else logw),
            {k: c.take(idx) for k, c in self._latents.items()},
            None if tr is None else [tr[i] for i in idx.tolist()],
            self._name,
            sub_chains(self._chains, idx) if chains else None,  # slices, filters keep them
        )

    def map(self, fn: Callable[[Any], Any], *, vectorized: bool = False) -> Empirical:
        """Apply ``fn`` to every value; weights, latents and traces are kept.

        Args:
            fn: Value -> new value. With ``vectorized=True`` it is called once with
                :meth:`to_numpy` and must return ``N`` new values (an array whose first axis
                indexes the entries, a dict of such, or a sequence).
        """
        data = fn(self.to_numpy()) if vectorized else (fn(v) for v in self)
        col = column_from_data(data, "map() result")
        if len(col) != len(self):
            raise ValueError(f"map() returned {len(col)} values for {len(self)} entries")
        return self._derive(col)

    def filter(self, pred: Callable[[Any], Any], *, vectorized: bool = False) -> Empirical:
        """Keep the entries whose value satisfies ``pred`` (weights are not renormalised,
        statistics normalise anyway). ``vectorized=True``: ``pred(to_numpy())`` returns a
        boolean mask."""
        if vectorized:
            keep = np.asarray(pred(self.to_numpy()), dtype=np.bool_).reshape(-1)
        else:
            keep = np.fromiter((bool(pred(v)) for v in self), np.bool_, len(self))
        if keep.shape != (len(self),):
            raise ValueError(f"filter() mask has shape {keep.shape}, expected ({len(self)},)")
        return self._take(np.flatnonzero(keep))

    def resample(
        self, n: int | None = None, method: str = "multinomial", seed: SeedLike = None
    ) -> Empirical:
        """Draw ``n`` entries (default ``len(self)``) with replacement, by weight.

        Every resampled entry gets the same log weight, :attr:`log_evidence`, so the result
        is equally weighted and still carries the evidence estimate (which :meth:`combine`
        needs to merge resampled runs correctly).

        Args:
            n: Number of entries to draw.
            method: ``"multinomial"`` (independent draws) or ``"systematic"`` (one uniform
                offset, evenly spaced points: unbiased with lower variance).
            seed: int, :class:`~rotalumis.core.rng.RNG`, ``random.Random`` or NumPy
                generator; ``None`` draws fresh entropy.
        """
        n = len(self) if n is None else int(n)
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        idx = resample_indices(self.weights, n, method, as_generator(seed))
        return self._take(idx, np.full(n, self.log_evidence), chains=False)

    def thin(self, step: int, start: int = 0) -> Empirical:
        """Keep every ``step``-th entry from ``start`` (e.g. to decorrelate an MCMC chain)."""
        if step < 1 or start < 0:
            raise ValueError(f"thin needs step >= 1 and start >= 0, got {step}, {start}")
        return self._take(np.arange(start, len(self), step))

    def unweighted(self) -> Empirical:
        """The same entries with equal weights (log weight 0)."""
        return self._derive(logw=freeze(np.zeros(len(self))))

    @classmethod
    def combine(cls, empiricals: Sequence[Empirical], name: str | None = None) -> Empirical:
        """Concatenate Empiricals, keeping every unnormalised log weight.

        For independent importance-sampling runs targeting the same posterior with the same
        proposal, the union is simply one larger run: weights stay comparable across runs,
        the combined :attr:`log_evidence` is the mean of all weights (each run's estimate
        weighted by its size), and runs that explain the data better dominate. Equally
        weighted runs (MCMC, or :meth:`resample` output, whose weights equal the run's
        evidence) combine as expected too. Do not combine runs with different observations.
        Latents present in only some inputs are missing in the others' entries; traces are
        kept if any input kept them (``None`` elsewhere). When every input is MCMC chains,
        so is the result (all their chains); otherwise it has no :attr:`chains`.
        """
        parts = list(empiricals)
        if not parts:
            raise ValueError("combine() needs at least one Empirical")
        values, logw, latents, traces = concat_parts(
            [(e._values, e._logw, e._latents, e._traces) for e in parts]
        )
        chains = None
        if all(e._chains is not None for e in parts):
            chains = tuple(n for e in parts for n in e._chains or ())
        return cls._from_columns(values, logw, latents, traces, name or parts[0]._name, chains)

    @classmethod
    def from_chains(cls, chains: Sequence[Empirical], name: str | None = None) -> Empirical:
        """Concatenate MCMC chains, one Empirical per chain, into a result that knows them
        (:attr:`chains`, :attr:`ess`).

        Raises:
            ValueError: if no chain or an empty chain is given.
        """
        parts = list(chains)
        if not parts or any(len(c) == 0 for c in parts):
            raise ValueError("from_chains() needs one or more non-empty chains")
        whole = parts[0] if len(parts) == 1 else cls.combine(parts, name)
        return whole._with_chains(tuple(len(c) for c in parts), name)

    def _with_chains(self, chains: Chains | None, name: str | None = None) -> Empirical:
        return Empirical._from_columns(
            self._values, self._logw, self._latents, self._traces, name or self._name, chains
        )

    # ---------------------------------------------------------------- persistence, summary

    def save(self, path: str | os.PathLike[str], *, traces: bool = True) -> None:
        """Save to one file (ZIP/``.npz`` layout, JSON metadata, no pickle), atomically.

        Args:
            path: The file to write.
            traces: Also save the kept traces (when there are any); ``False`` leaves them
                out, which keeps files small when the traces were only needed in memory.

        Raises:
            TypeError: if a column of Python objects holds a value JSON cannot express.
        """
        kept = self._traces if traces else None
        parts = (self._values, self._logw, self._latents, kept, self._name)
        run = None if self.info is None else self.info.to_json()
        write_empirical(path, parts, self.metadata, self._chains, run)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Empirical:
        """Load a file written by :meth:`save`.

        Raises:
            DatasetError: naming the file if it is missing, truncated, corrupt or of an
                unsupported format version.
        """
        values, logw, latents, traces, name = read_empirical(path)
        info, lengths, run = read_info(path)
        chains = None
        if lengths is not None:
            try:
                chains = check_chains(lengths, len(logw))
            except ValueError as exc:
                raise DatasetError(f"{path}: corrupt saved Empirical: {exc}") from None
        elif isinstance(info.get("chains"), list):  # saved before chains were recorded
            with contextlib.suppress(AttributeError, TypeError, ValueError):
                chains = check_chains([c["length"] for c in info["chains"]], len(logw))
        emp = cls._from_columns(values, logw, latents, traces, name, chains)
        emp.metadata = info
        try:  # files saved before RunInfo existed carry it as metadata keys
            emp.info = RunInfo.from_metadata(info) if run is None else RunInfo.from_json(run)
        except ValueError as exc:
            raise DatasetError(f"{path}: corrupt saved Empirical: {exc}") from None
        return emp

    def summary(self) -> dict[str, dict[str, Any]]:
        """Statistics of the result and of each latent: ``{label: {"mean", "std", "q05",
        "q50", "q95", "ess", "n"}}`` (dict results: one label per key, ``"result.key"``)."""
        return summarize(self._values, self._latents, self._logw, self.chains)

    def summary_table(self) -> str:
        """:meth:`summary` as an aligned text table."""
        return format_table(self.summary())
