"""The on-disk format of a saved :class:`~rotalumis.data.Empirical` (no pickle anywhere).

One file, a ZIP archive laid out like NumPy's ``.npz`` (so ``numpy.load(path,
allow_pickle=False)`` reads its arrays and any ZIP tool lists it):

* ``metadata.json`` — ``{"format": "rotalumis.empirical", "version": 1, "length": N,
  "name": ..., "log_weights": "log_weights.npy", "values": SPEC, "latents": {name: SPEC},
  "traces": member or null, "chains": [chain lengths] or null (MCMC results), "info":
  {engine metadata}}`` where a column ``SPEC`` is ``{"kind": "scalar" | "array" |
  "object" | "record", "data": member, "present": member or null, "torch_dtype": ...,
  "fields": {key: SPEC}}``;
* ``log_weights.npy`` and one ``cK.npy`` per numeric column (and ``cK.present.npy`` for a
  column missing from some entries), written with ``allow_pickle=False``;
* ``cK.json`` for a column of Python objects: JSON values, with tensors and arrays encoded
  as ``{"__tensor__": nested list, "dtype": ...}`` / ``{"__ndarray__": ..., "dtype": ...}``
  (tuples come back as lists); a value JSON cannot express is refused with a ``TypeError``;
* ``traces.json`` only when traces were kept and each has a ``to_dict()`` method; they load
  back as those dicts (otherwise traces are not saved and a log message says so).

The file is written to a temporary file in the target's directory and moved into place with
:func:`os.replace`, so a reader never sees a half-written result.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import DatasetError
from ._columns import ArrayColumn, Column, ObjectColumn, RecordColumn, ScalarColumn, freeze

__all__ = ["FORMAT", "VERSION", "read_empirical", "write_empirical"]

FORMAT = "rotalumis.empirical"
VERSION = 1
_log = logging.getLogger(__name__)

Parts = tuple[Column, np.ndarray, dict[str, Column], list[Any] | None, str | None]


def _to_json(v: Any, where: str) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list | tuple):
        return [_to_json(x, where) for x in v]
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise TypeError(f"cannot save {where}: a dict has non-str keys")
        return {k: _to_json(x, where) for k, x in v.items()}
    if isinstance(v, torch.Tensor):
        t = v.detach().cpu()
        return {"__tensor__": t.tolist(), "dtype": str(t.dtype).removeprefix("torch.")}
    if isinstance(v, np.ndarray) and v.dtype.kind in "biufc" and v.dtype.kind != "c":
        return {"__ndarray__": v.tolist(), "dtype": str(v.dtype)}
    raise TypeError(
        f"cannot save {where}: a {type(v).__name__} is not JSON-serialisable; map() the "
        "values to numbers, tensors, lists or dicts first"
    )


def _from_json(v: Any) -> Any:
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    if isinstance(v, dict):
        if "__tensor__" in v and set(v) == {"__tensor__", "dtype"}:
            return torch.tensor(v["__tensor__"], dtype=getattr(torch, v["dtype"]))
        if "__ndarray__" in v and set(v) == {"__ndarray__", "dtype"}:
            return np.asarray(v["__ndarray__"], dtype=np.dtype(v["dtype"]))
        return {k: _from_json(x) for k, x in v.items()}
    return v


class _Writer:
    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.count = 0

    def array(self, member: str, a: np.ndarray) -> str:
        with self.zf.open(member, "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.ascontiguousarray(a), allow_pickle=False)
        return member

    def json(self, member: str, obj: Any) -> str:
        self.zf.writestr(member, json.dumps(obj))
        return member

    def column(self, col: Column, where: str) -> dict[str, Any]:
        key = f"c{self.count}"
        self.count += 1
        spec: dict[str, Any] = {"present": None}
        if col.present is not None:
            spec["present"] = self.array(f"{key}.present.npy", col.present)
        if isinstance(col, ScalarColumn):
            spec.update(kind="scalar", data=self.array(f"{key}.npy", col.data))
        elif isinstance(col, ArrayColumn):
            spec.update(kind="array", torch_dtype=col.torch_dtype)
            spec["data"] = self.array(f"{key}.npy", col.data)
        elif isinstance(col, ObjectColumn):
            items = [_to_json(v, f"{where} entry {i}") for i, v in enumerate(col.items)]
            spec.update(kind="object", data=self.json(f"{key}.json", items))
        else:
            fields = {k: self.column(c, f"{where}[{k!r}]") for k, c in col.fields.items()}
            spec.update(kind="record", length=col.length, fields=fields)
        return spec


def write_empirical(
    path: str | os.PathLike[str],
    parts: Parts,
    info: dict[str, Any] | None = None,
    chains: tuple[int, ...] | None = None,
) -> None:
    """Write ``parts`` (values, log weights, latents, traces, name), the JSON-able ``info``
    (engine metadata) and the MCMC chain lengths to ``path`` atomically."""
    values, logw, latents, traces, name = parts
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                w = _Writer(zf)
                meta: dict[str, Any] = {
                    "format": FORMAT,
                    "version": VERSION,
                    "length": int(logw.shape[0]),
                    "name": name,
                    "log_weights": w.array("log_weights.npy", logw),
                    "values": w.column(values, "the values"),
                    "latents": {k: w.column(c, f"latent {k!r}") for k, c in latents.items()},
                    "traces": None,
                    "chains": None if chains is None else list(chains),
                    "info": _to_json(info or {}, "the metadata"),
                }
                if traces is not None:
                    if all(t is None or callable(getattr(t, "to_dict", None)) for t in traces):
                        dicts = [None if t is None else t.to_dict() for t in traces]
                        meta["traces"] = w.json("traces.json", _to_json(dicts, "the traces"))
                    else:
                        _log.info("%s: traces not saved (they have no to_dict() method)", target)
                w.json("metadata.json", meta)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _Reader:
    def __init__(self, zf: zipfile.ZipFile, n: int) -> None:
        self.zf = zf
        self.n = n

    def array(self, member: str, what: str) -> np.ndarray:
        with self.zf.open(member) as f:
            a = np.lib.format.read_array(f, allow_pickle=False)
        if a.ndim == 0 or a.shape[0] != self.n:
            raise ValueError(f"{what} ({member}) has shape {a.shape}, expected {self.n} entries")
        return freeze(a)

    def column(self, spec: dict[str, Any], where: str) -> Column:
        present = None
        if spec.get("present") is not None:
            present = self.array(spec["present"], f"{where} mask").astype(np.bool_)
        kind = spec["kind"]
        if kind == "scalar":
            data = self.array(spec["data"], where)
            if data.ndim != 1 or data.dtype.kind not in "biuf":
                raise ValueError(f"{where} is not a 1-D numeric array")
            return ScalarColumn(data, present)
        if kind == "array":
            tdt = spec.get("torch_dtype")
            if tdt is not None and not isinstance(getattr(torch, tdt, None), torch.dtype):
                raise ValueError(f"{where}: unknown tensor dtype {tdt!r}")
            return ArrayColumn(self.array(spec["data"], where), tdt, present)
        if kind == "object":
            items = json.loads(self.zf.read(spec["data"]))
            if not isinstance(items, list) or len(items) != self.n:
                raise ValueError(f"{where} does not hold {self.n} entries")
            return ObjectColumn([_from_json(v) for v in items], present)
        if kind == "record":
            fields = {str(k): self.column(s, f"{where}[{k!r}]") for k, s in spec["fields"].items()}
            return RecordColumn(fields, self.n, present)
        raise ValueError(f"{where} has unknown column kind {kind!r}")


def read_info(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[int] | None]:
    """The engine metadata saved with an Empirical (empty for files without it) and its
    chain lengths (``None`` if not MCMC chains)."""
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("metadata.json"))
    info = meta.get("info") or {}
    info = dict(info) if isinstance(info, dict) else {}
    chains = meta.get("chains")
    if chains is not None and not (
        isinstance(chains, list) and all(isinstance(c, int) for c in chains)
    ):
        chains = [-1]  # refused by the caller's check, which names the file
    return info, chains


def read_empirical(path: str | os.PathLike[str]) -> Parts:
    """Read a file written by :func:`write_empirical`.

    Raises:
        DatasetError: naming ``path`` if it is missing, truncated, corrupt, not a saved
            Empirical, or written in a newer format version.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p}: no saved Empirical here (file not found)")
    try:
        with zipfile.ZipFile(p) as zf:
            try:
                meta = json.loads(zf.read("metadata.json"))
            except KeyError:
                raise DatasetError(f"{p}: not a saved Empirical (no metadata.json)") from None
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise DatasetError(f"{p}: not a saved Empirical (format is not {FORMAT!r})")
            version = meta.get("version")
            if not isinstance(version, int) or not 1 <= version <= VERSION:
                raise DatasetError(
                    f"{p}: unsupported format version {version!r} "
                    f"(this rotalumis reads versions 1 to {VERSION})"
                )
            r = _Reader(zf, int(meta["length"]))
            logw = r.array(meta["log_weights"], "log weights").astype(np.float64, copy=False)
            values = r.column(meta["values"], "the values")
            latents = {str(k): r.column(s, f"latent {k!r}") for k, s in meta["latents"].items()}
            traces = None
            if meta.get("traces") is not None:
                traces = [_from_json(t) for t in json.loads(zf.read(meta["traces"]))]
                if len(traces) != r.n:
                    raise ValueError(f"traces.json holds {len(traces)} traces, expected {r.n}")
            name = meta.get("name")
    except DatasetError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError, EOFError) as e:
        raise DatasetError(f"{p}: corrupt or truncated saved Empirical: {e}") from e
    except OSError as e:
        raise DatasetError(f"{p}: cannot read saved Empirical: {e}") from e
    return values, freeze(logw), latents, traces, None if name is None else str(name)
