"""Generating a trace dataset: prior simulations written shard by shard, atomically.

Shard ``k`` holds traces ``k*S .. (k+1)*S - 1`` drawn with its own random stream
``derive_seed(seed, "shard", k)``, so its content depends only on the seed and its index:
an interrupted generation is resumed by writing the shards that are missing (or invalid),
giving exactly the dataset an uninterrupted run would have written — no duplicates, no
losses. Each shard is written to a temporary file in the same directory and renamed into
place, so a shard file is either complete or absent.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rotalumis.core import RNG, DatasetError, Model
from rotalumis.core.checks import get_field, loads_json
from rotalumis.core.files import atomic_write, remove_stale_temporaries, write_text_atomic
from rotalumis.core.rng import derive_seed
from rotalumis.core.validity import InvalidPolicy, SimulationCounter, simulate_valid
from rotalumis.distributed import check_executor, open_executor

from .schema import (
    FORMAT,
    MANIFEST,
    META_SHARD,
    META_STATS,
    META_VERSION,
    SCHEMA,
    SCHEMA_VERSION,
    DatasetStatistics,
    shard_name,
    traces_to_table,
)
from .schema import shard_rows as _shard_rows

__all__ = ["check_shard", "generate_dataset", "generate_shard", "read_manifest"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
_PROGRESS_EVERY = 64
#: Most shards a dataset may have (shard files are named with six digits).
MAX_SHARDS = 1_000_000
#: Most traces one shard may hold.
MAX_TRACES_PER_SHARD = 2**31 - 1


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of the dataset in ``directory``, with every field checked.

    Raises:
        DatasetError: naming the file if it is missing, unreadable, of another format or
            schema version, or has a missing or invalid field (a count out of range, shard
            counts that do not add up, ...).
    """
    path = directory / MANIFEST
    try:
        manifest = loads_json(path.read_bytes(), "it")
    except FileNotFoundError:
        raise DatasetError(f"{directory} is not a trace dataset (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"dataset manifest {path} is unreadable: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError(f"{path} is not a rotalumis trace-dataset manifest")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DatasetError(
            f"{path}: schema version {version} is not supported (this rotalumis reads "
            f"version {SCHEMA_VERSION})"
        )
    try:
        _check_manifest(manifest)
    except ValueError as exc:
        raise DatasetError(f"dataset manifest {path} is invalid: {exc}") from None
    return manifest


def _check_manifest(m: dict[str, Any]) -> None:
    where = ""  # the caller's message names the manifest
    get_field(m, "model", (str, type(None)), where, optional=True)
    get_field(m, "imitates", str, where, optional=True)
    get_field(m, "seed", int, where, low=-(2**127), high=2**127)
    per = get_field(m, "traces_per_shard", int, where, low=1, high=MAX_TRACES_PER_SHARD)
    total = get_field(m, "num_traces", int, where, low=1, high=MAX_SHARDS * per)
    shards = get_field(m, "num_shards", int, where, low=1, high=MAX_SHARDS)
    if shards != math.ceil(total / per):
        raise ValueError(
            f"'num_shards' is {shards}, but {total} traces at {per} per shard make "
            f"{math.ceil(total / per)}"
        )
    get_field(m, "rows_per_group", int, where, low=1, high=MAX_TRACES_PER_SHARD, optional=True)


def _imitated(model: Model) -> dict[str, str]:
    """``{"imitates": name}`` for a stand-in (a surrogate) of the model called ``name``."""
    imitates = getattr(model, "imitates", None)
    return {"imitates": imitates} if isinstance(imitates, str) and imitates else {}


def _write_manifest(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))


def check_shard(path: Path, index: int, expected_rows: int | None = None) -> str | None:
    """Why shard file ``path`` is unusable, or ``None`` when its footer and metadata are sound.

    Reads only the Parquet footer (a truncated or overwritten file has none).
    """
    try:
        meta = pq.read_metadata(path)
    except FileNotFoundError:
        return "missing"
    except (OSError, pa.ArrowException) as exc:
        return f"corrupt or truncated ({type(exc).__name__}: {exc})"
    kv = meta.metadata or {}
    if kv.get(META_VERSION) != str(SCHEMA_VERSION).encode():
        return f"schema version {kv.get(META_VERSION)!r} is not {SCHEMA_VERSION}"
    if kv.get(META_SHARD) != str(index).encode():
        return f"holds shard {kv.get(META_SHARD)!r}, expected {index}"
    if expected_rows is not None and meta.num_rows != expected_rows:
        return f"has {meta.num_rows} traces, expected {expected_rows}"
    try:
        schema = meta.schema.to_arrow_schema()
    except (ValueError, pa.ArrowException) as exc:
        return f"unreadable schema ({type(exc).__name__}: {exc})"
    if not schema.remove_metadata().equals(SCHEMA):
        return "its columns are not those of the trace-dataset schema"
    return None


def generate_shard(
    model: Model,
    directory: str | os.PathLike[str],
    index: int,
    manifest: dict[str, Any],
    model_args: tuple[Any, ...] = (),
    on_trace: Callable[[int], None] | None = None,
    policy: InvalidPolicy | None = None,
) -> Path:
    """Simulate and write shard ``index`` of the dataset described by ``manifest``.

    Usable on its own (e.g. one shard per worker of a cluster); the result is independent
    of where and when it runs. Runs that raise or produce NaN/inf are dropped and counted
    (``policy``; the shard still gets its full number of valid traces, drawn on from the
    same stream), the count kept in the shard's statistics.

    Args:
        model: The simulator.
        directory: The dataset directory.
        index: Shard index.
        manifest: The dataset manifest (seed, num_traces, traces_per_shard, ...).
        model_args: Arguments of ``model.forward``.
        on_trace: Called with the number of traces simulated so far in this shard.
        policy: What to do with invalid runs (default: drop and count).

    Returns:
        The path of the written shard.
    """
    directory = Path(directory)
    rows = _shard_rows(manifest, index)
    per = int(manifest["traces_per_shard"])
    rng = RNG(derive_seed(int(manifest["seed"]), "shard", index))
    counter = SimulationCounter()

    def tick(n: int) -> None:
        if on_trace is not None and n % _PROGRESS_EVERY == 0:
            on_trace(n)

    def where(k: int) -> str:
        return f"trace {index * per + k} of the dataset with seed {manifest['seed']}"

    traces = simulate_valid(
        model, rng, rows, policy or InvalidPolicy(), counter, model_args=model_args,
        where=where, on_trace=tick,
    )  # fmt: skip
    stats = DatasetStatistics()
    stats.simulations = counter
    table = traces_to_table(traces, index * per, stats)
    del traces
    meta = {
        META_VERSION: str(SCHEMA_VERSION).encode(),
        META_SHARD: str(index).encode(),
        META_STATS: stats.to_json().encode(),
    }
    table = table.replace_schema_metadata(meta)
    final = directory / shard_name(index)
    with atomic_write(final, clean_stale=False) as fh:  # the generator cleans once
        pq.write_table(
            table,
            fh,
            compression="zstd",
            row_group_size=int(manifest.get("rows_per_group", 256)),
        )
    return final


def _prepare_manifest(
    directory: Path, model: Model, num_traces: int, seed: int | None, traces_per_shard: int
) -> dict[str, Any]:
    if (directory / MANIFEST).exists():
        manifest = read_manifest(directory)
        if seed is not None and int(manifest["seed"]) != seed:
            raise DatasetError(
                f"{directory} was generated with seed {manifest['seed']}, not {seed}; "
                "resume with the same seed or use another directory"
            )
        if int(manifest["traces_per_shard"]) != traces_per_shard:
            raise DatasetError(
                f"{directory} has {manifest['traces_per_shard']} traces per shard, not "
                f"{traces_per_shard}; resume with the same value or use another directory"
            )
        if manifest.get("model") != model.name:
            raise DatasetError(
                f"{directory} holds traces of model {manifest.get('model')!r}, not {model.name!r}"
            )
        if num_traces < int(manifest["num_traces"]):
            raise DatasetError(
                f"{directory} is a dataset of {manifest['num_traces']} traces: asking for "
                f"{num_traces} would shrink it (its manifest would drop shards already "
                f"written); resume or extend it with {manifest['num_traces']} traces or more, "
                "or use another directory"
            )
    else:
        manifest = {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "model": model.name,
            # a stand-in for another model (a surrogate): the model it imitates
            **_imitated(model),
            "seed": seed if seed is not None else RNG(None).seed,
            "traces_per_shard": traces_per_shard,
            "rows_per_group": min(256, traces_per_shard),
        }
    manifest["num_traces"] = num_traces
    manifest["num_shards"] = math.ceil(num_traces / traces_per_shard)
    return manifest


def generate_dataset(
    model: Model,
    directory: str | os.PathLike[str],
    num_traces: int,
    *,
    seed: int | None = None,
    traces_per_shard: int = 1000,
    model_args: tuple[Any, ...] = (),
    on_progress: ProgressCallback | None = None,
    workers: int = 0,
    cluster: Any = None,
    policy: InvalidPolicy | None = None,
) -> Path:
    """Simulate ``num_traces`` prior traces of ``model`` into ``directory`` (resumable).

    Existing valid shards are kept; missing, truncated or corrupt ones are (re)written.
    Calling it again after an interruption, with the same arguments, completes the dataset
    exactly as an uninterrupted run would have; calling it with a larger ``num_traces``
    extends the dataset.

    Args:
        model: The simulator (local or remote).
        directory: Output directory (created if needed).
        num_traces: Total traces in the dataset.
        seed: Seed (``None``: a fresh one, recorded in the manifest; on resume, the
            manifest's).
        traces_per_shard: Traces per Parquet file.
        model_args: Arguments of ``model.forward``.
        on_progress: Called as ``on_progress(done, total)`` while generating (with
            ``workers``: as each shard is written).
        workers: Write the shards in this many forked worker processes (``0``: here). Each
            shard depends only on the seed and its index: the same dataset for any number.
        policy: Simulations that raise or produce NaN/inf: dropped and counted (default;
            the count is in ``TraceDataset(directory).stats().simulations``) or fatal.
        cluster: Write the shards on a Dask cluster instead (a ``Client``, a scheduler
            address, ``"local"`` / ``"local:N"``, or a
            :class:`~rotalumis.distributed.DaskExecutor`); ``directory`` must then be on a
            file system the workers share. Shards are still written atomically (temporary
            file and rename, on the worker), so the dataset stays resumable.

    Returns:
        The dataset directory.

    Raises:
        DatasetError: if ``directory`` holds a dataset made with another seed, shard size
            or model, or with more traces than ``num_traces`` (a dataset is never shrunk).
    """
    if isinstance(num_traces, bool) or not isinstance(num_traces, int) or num_traces < 1:
        raise ValueError(f"num_traces must be a positive integer, got {num_traces!r}")
    check_executor(model, workers, cluster)
    if not 1 <= traces_per_shard <= MAX_TRACES_PER_SHARD:
        raise ValueError(
            f"traces_per_shard must be between 1 and {MAX_TRACES_PER_SHARD}, "
            f"got {traces_per_shard!r}"
        )
    if math.ceil(num_traces / traces_per_shard) > MAX_SHARDS:
        raise ValueError(
            f"{num_traces} traces at {traces_per_shard} per shard make more than {MAX_SHARDS} "
            "shards: raise traces_per_shard"
        )
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    manifest = _prepare_manifest(path, model, num_traces, seed, traces_per_shard)
    _write_manifest(path / MANIFEST, manifest)
    remove_stale_temporaries(path)
    todo: list[int] = []
    done = 0
    for k in range(int(manifest["num_shards"])):
        rows = _shard_rows(manifest, k)
        reason = check_shard(path / shard_name(k), k, rows)
        if reason is None:
            done += rows
        else:
            if reason != "missing":
                log.warning("rewriting shard %s: %s", path / shard_name(k), reason)
            todo.append(k)
    if done:
        log.info("%s: %d of %d traces already generated", path, done, num_traces)
    if on_progress is not None:
        on_progress(done, num_traces)
    with open_executor(model, workers, cluster) as executor:
        if executor is not None and todo:

            def shard(j: int) -> int:
                generate_shard(model, path, todo[j], manifest, model_args, policy=policy)
                return _shard_rows(manifest, todo[j])

            def written(j: int, rows: int) -> None:
                nonlocal done
                done += rows
                if on_progress is not None:
                    on_progress(done, num_traces)

            def describe(j: int) -> str:
                k = todo[j]
                seed = derive_seed(int(manifest["seed"]), "shard", k)
                return f"shard {k} of {path}, drawing from the stream with seed {seed}"

            executor.map(shard, len(todo), describe, written)
            return path
    for k in todo:
        base = done

        def tick(n: int, base: int = base) -> None:
            if on_progress is not None:
                on_progress(base + n, num_traces)

        generate_shard(model, path, k, manifest, model_args, tick, policy)
        done += _shard_rows(manifest, k)
        if on_progress is not None:
            on_progress(done, num_traces)
    return path
