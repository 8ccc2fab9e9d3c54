"""Summaries of an :class:`~rotalumis.data.Empirical`: a dict and an aligned text table."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product
from typing import Any

import numpy as np
import torch

from . import _column_stats
from ._chains import Chains, column_ess, sub_chains
from ._columns import Column, ObjectColumn, RecordColumn
from ._weights import ess, normalized_weights

__all__ = ["format_table", "summarize"]

_QS = np.array([0.05, 0.5, 0.95])
_KEYS = ("mean", "std", "q05", "q50", "q95", "ess", "n")
_MAX_ELEMENTS = 8  # tensors with more elements get one row with their shape only


def _add(
    out: dict[str, dict[str, Any]],
    label: str,
    col: Column,
    logw: np.ndarray,
    chains: Chains | None,
) -> None:
    if col.present is not None and chains is not None:
        chains = sub_chains(chains, np.flatnonzero(col.present))  # None: no entry left
    col, logw = _column_stats.present_subset(col, logw)
    if isinstance(col, RecordColumn):
        for k, c in col.fields.items():
            _add(out, f"{label}.{k}", c, logw, chains)
        return
    row: dict[str, Any] = dict.fromkeys(_KEYS)
    row["n"] = len(col)
    if len(col) and not isinstance(col, ObjectColumn):
        w = normalized_weights(logw)
        row.update(mean=_column_stats.mean(col, w), std=_column_stats.stddev(col, w))
        row["ess"] = ess(logw) if chains is None else column_ess(col, chains)
        try:
            qs = _column_stats.quantiles(_QS, False)(col, w)
        except TypeError:  # complex values have no order
            pass
        else:
            row.update(q05=qs[0], q50=qs[1], q95=qs[2])
    out[label] = row


def summarize(
    values: Column, latents: Mapping[str, Column], logw: np.ndarray, chains: Chains | None
) -> dict[str, dict[str, Any]]:
    """``{label: {"mean", "std", "q05", "q50", "q95", "ess", "n"}}`` for the result (label
    ``"result"``; ``result.key`` per key of dict results) and each latent.
    Statistics are ``None`` for values stored as Python objects. The ESS is Kish's for
    weighted samples and ArviZ's bulk ESS for MCMC chains (see ``Empirical.ess``)."""
    out: dict[str, dict[str, Any]] = {}
    label = "result"
    if label in latents:
        label = f"{label} (result)"
    _add(out, label, values, logw, chains)
    for name, col in latents.items():
        _add(out, name, col, logw, chains)
    return out


def _array(v: Any) -> Any:
    if isinstance(v, torch.Tensor):  # NumPy has no bfloat16
        v = v.detach().cpu()
        return (v if v.is_complex() else v.double()).numpy()
    return None if v is None else np.asarray(v)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool | int | np.integer | np.bool_):
        return str(v)
    if isinstance(v, complex | np.complexfloating):
        return f"{complex(v):.4g}"
    return f"{float(v):.4g}"


def format_table(summary: dict[str, dict[str, Any]]) -> str:
    """Render :func:`summarize` output; tensors of up to 8 elements get one row each."""
    header = ["", "mean", "std", "5%", "50%", "95%", "ess", "n"]
    rows = [header]
    for label, s in summary.items():
        arrays = {k: _array(s[k]) for k in ("mean", "std", "q05", "q50", "q95")}
        shape = () if arrays["mean"] is None else arrays["mean"].shape
        if not shape:
            rows.append([label, *(_cell(s[k]) for k in _KEYS)])
            continue
        size = int(np.prod(shape))
        if size > _MAX_ELEMENTS:
            rows.append(
                [f"{label} {list(shape)}", "...", "", "", "", "", _cell(s["ess"]), str(s["n"])]
            )
            continue
        for idx in product(*(range(d) for d in shape)):
            cells = [
                "-" if a is None else _cell(a[idx])
                for a in (arrays[k] for k in ("mean", "std", "q05", "q50", "q95"))
            ]
            rows.append([f"{label}{list(idx)}", *cells, _cell(s["ess"]), str(s["n"])])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join(line.rstrip() for line in lines)
