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

The file is written with :func:`rotalumis.core.files.atomic_write` (a temporary file in the
target's directory, moved into place), so a reader never sees a half-written result. Reading
checks every description in ``metadata.json`` (types, sizes against the data, nesting at most
``MAX_RECORD_DEPTH`` levels) before using it: a damaged or crafted file raises
:class:`~rotalumis.core.DatasetError` naming it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...core.checks import get_field, loads_json
from ...core.errors import DatasetError
from ...core.files import atomic_write
from ._columns import ArrayColumn, Column, ObjectColumn, RecordColumn, ScalarColumn, freeze

__all__ = ["FORMAT", "VERSION", "read_empirical", "write_empirical"]

FORMAT = "rotalumis.empirical"
VERSION = 1
#: Dict values nested deeper than this are neither saved nor read.
MAX_RECORD_DEPTH = 32
_NULL = type(None)
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
    """Inverse of :func:`_to_json` (ValueError for an encoded array it cannot rebuild)."""
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    if isinstance(v, dict):
        if "__tensor__" in v and set(v) == {"__tensor__", "dtype"}:
            dtype = getattr(torch, str(v["dtype"]), None)
            if not isinstance(dtype, torch.dtype):
                raise ValueError(f"unknown tensor dtype {v['dtype']!r}")
            try:
                return torch.tensor(v["__tensor__"], dtype=dtype)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise ValueError(f"an encoded tensor is malformed ({exc})") from None
        if "__ndarray__" in v and set(v) == {"__ndarray__", "dtype"}:
            dt = np.dtype(str(v["dtype"]))
            if dt.kind not in "biuf":
                raise ValueError(f"unsupported array dtype {dt}")
            return np.asarray(v["__ndarray__"], dtype=dt)
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

    def column(self, col: Column, where: str, depth: int = 1) -> dict[str, Any]:
        if depth > MAX_RECORD_DEPTH:
            raise ValueError(
                f"cannot save {where}: dicts nested deeper than {MAX_RECORD_DEPTH} levels"
            )
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
            fields = {
                k: self.column(c, f"{where}[{k!r}]", depth + 1) for k, c in col.fields.items()
            }
            spec.update(kind="record", length=col.length, fields=fields)
        return spec


def write_empirical(
    path: str | os.PathLike[str],
    parts: Parts,
    info: dict[str, Any] | None = None,
    chains: tuple[int, ...] | None = None,
    run: dict[str, Any] | None = None,
) -> None:
    """Write ``parts`` (values, log weights, latents, traces, name), the JSON-able ``info``
    (free-form metadata), the MCMC chain lengths and the run information (``run``: a
    :meth:`~.run_info.RunInfo.to_json` dict) to ``path`` atomically."""
    values, logw, latents, traces, name = parts
    target = Path(path)
    with (
        atomic_write(target) as fh,
        zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf,
    ):
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
        if run is not None:
            meta["run"] = _to_json(run, "the run information")
        if traces is not None:
            if all(t is None or callable(getattr(t, "to_dict", None)) for t in traces):
                dicts = [None if t is None else t.to_dict() for t in traces]
                meta["traces"] = w.json("traces.json", _to_json(dicts, "the traces"))
            else:
                _log.info("%s: traces not saved (they have no to_dict() method)", target)
        w.json("metadata.json", meta)


class _Reader:
    """Reads the members of a saved Empirical, checking each description before use."""

    def __init__(self, zf: zipfile.ZipFile, n: int) -> None:
        self.zf = zf
        self.n = n

    def _member(self, member: Any, what: str) -> zipfile.ZipInfo:
        if not isinstance(member, str):
            raise ValueError(f"{what}: member name must be a string, got {member!r}")
        try:
            return self.zf.getinfo(member)
        except KeyError:
            raise ValueError(f"{what}: member {member!r} is missing") from None

    def array(self, member: Any, what: str) -> np.ndarray:
        info = self._member(member, what)
        with self.zf.open(info) as f:  # check the header before allocating anything
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"{what} ({member}): unsupported .npy version {version}")
        if not shape or shape[0] != self.n:
            raise ValueError(f"{what} ({member}) has shape {shape}, expected {self.n} entries")
        if dtype.hasobject or dtype.kind not in "biufcV":
            raise ValueError(f"{what} ({member}) has unsupported dtype {dtype}")
        if math.prod(shape) * dtype.itemsize > info.file_size:
            raise ValueError(
                f"{what} ({member}) declares shape {shape} but holds only {info.file_size} bytes"
            )
        with self.zf.open(info) as f:
            a = np.lib.format.read_array(f, allow_pickle=False)
        return freeze(a)

    def json(self, member: Any, what: str) -> Any:
        return loads_json(self.zf.read(self._member(member, what)), what, max_depth=None)

    def column(self, spec: Any, where: str, depth: int = 1) -> Column:
        if depth > MAX_RECORD_DEPTH:
            raise ValueError(f"{where} is nested deeper than {MAX_RECORD_DEPTH} levels")
        kind = get_field(spec, "kind", str, where)
        present = None
        mask = get_field(spec, "present", (str, _NULL), where, optional=True)
        if mask is not None:
            present = self.array(mask, f"{where} mask").astype(np.bool_)
        if kind == "scalar":
            data = self.array(get_field(spec, "data", str, where), where)
            if data.ndim != 1 or data.dtype.kind not in "biuf":
                raise ValueError(f"{where} is not a 1-D numeric array")
            return ScalarColumn(data, present)
        if kind == "array":
            tdt = get_field(spec, "torch_dtype", (str, _NULL), where, optional=True)
            if tdt is not None and not isinstance(getattr(torch, tdt, None), torch.dtype):
                raise ValueError(f"{where}: unknown tensor dtype {tdt!r}")
            return ArrayColumn(self.array(get_field(spec, "data", str, where), where), tdt, present)
        if kind == "object":
            items = self.json(get_field(spec, "data", str, where), where)
            if not isinstance(items, list) or len(items) != self.n:
                raise ValueError(f"{where} does not hold {self.n} entries")
            return ObjectColumn([_from_json(v) for v in items], present)
        if kind == "record":
            specs = get_field(spec, "fields", dict, where)
            fields = {k: self.column(s, f"{where}[{k!r}]", depth + 1) for k, s in specs.items()}
            return RecordColumn(fields, self.n, present)
        raise ValueError(f"{where} has unknown column kind {kind!r}")


def _metadata(zf: zipfile.ZipFile, p: Path) -> dict[str, Any]:
    """The checked ``metadata.json`` of an open saved Empirical."""
    try:
        meta = loads_json(zf.read("metadata.json"), "metadata.json")
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
    where = "metadata.json"
    get_field(meta, "length", int, where, low=0, high=2**48)
    get_field(meta, "log_weights", str, where)
    get_field(meta, "latents", dict, where)
    get_field(meta, "traces", (str, _NULL), where, optional=True)
    get_field(meta, "name", (str, _NULL), where, optional=True)
    get_field(meta, "info", (dict, _NULL), where, optional=True)
    get_field(meta, "chains", (list, _NULL), where, optional=True)
    get_field(meta, "run", (dict, _NULL), where, optional=True)
    return meta


@contextlib.contextmanager
def _reading(p: Path) -> Iterator[zipfile.ZipFile]:
    """Open ``p``; turn whatever a damaged file raises into a DatasetError naming it."""
    if not p.is_file():
        raise DatasetError(f"{p}: no saved Empirical here (file not found)")
    try:
        with zipfile.ZipFile(p) as zf:
            yield zf
    except DatasetError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, EOFError, RecursionError) as e:
        raise DatasetError(f"{p}: corrupt or truncated saved Empirical: {e}") from None
    except OSError as e:
        raise DatasetError(f"{p}: cannot read saved Empirical: {e}") from e


def read_info(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], list[int] | None, dict[str, Any] | None]:
    """The free-form metadata saved with an Empirical (empty for files without it), its
    chain lengths (``None`` if not MCMC chains) and its run information (``None`` for files
    saved without it).

    Raises:
        DatasetError: naming ``path`` if it is not a readable saved Empirical.
    """
    with _reading(Path(path)) as zf:
        meta = _metadata(zf, Path(path))
    info = meta.get("info") or {}
    chains = meta.get("chains")
    if chains is not None and not (
        isinstance(chains, list) and all(isinstance(c, int) for c in chains)
    ):
        chains = [-1]  # refused by the caller's check, which names the file
    return dict(info), chains, meta.get("run")


def read_empirical(path: str | os.PathLike[str]) -> Parts:
    """Read a file written by :func:`write_empirical`.

    Raises:
        DatasetError: naming ``path`` if it is missing, truncated, corrupt, not a saved
            Empirical, written in a newer format version, or describes its columns wrongly
            (wrong types, sizes that do not match the data, nesting deeper than
            ``MAX_RECORD_DEPTH``).
    """
    p = Path(path)
    with _reading(p) as zf:
        meta = _metadata(zf, p)
        r = _Reader(zf, meta["length"])
        logw = r.array(meta["log_weights"], "log weights").astype(np.float64, copy=False)
        values = r.column(meta["values"], "the values")
        latents = {str(k): r.column(s, f"latent {k!r}") for k, s in meta["latents"].items()}
        traces = None
        if meta.get("traces") is not None:
            stored = r.json(meta["traces"], "traces.json")
            if not isinstance(stored, list) or len(stored) != r.n:
                raise ValueError(f"traces.json does not hold {r.n} traces")
            traces = [_from_json(t) for t in stored]
        name = meta.get("name")
    return values, freeze(logw), latents, traces, name
