"""Generating a trace dataset: prior simulations written shard by shard, atomically.

Shard ``k`` holds traces ``k*S .. (k+1)*S - 1`` drawn with its own random stream
``derive_seed(seed, "shard", k)``, so its content depends only on the seed and its index:
an interrupted generation is resumed by writing the shards that are missing (or invalid),
giving exactly the dataset an uninterrupted run would have written — no duplicates, no
losses. Each shard is written to a temporary file in the same directory and renamed into
place, so a shard file is either complete or absent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rotalumis.core import RNG, DatasetError, Model, TraceHandler
from rotalumis.core.parallel import check_parallel, map_in_workers
from rotalumis.core.rng import derive_seed
from rotalumis.core.validity import InvalidPolicy, SimulationCounter, simulate_valid

from ._dataset_schema import (
    FORMAT,
    MANIFEST,
    META_SHARD,
    META_STATS,
    META_VERSION,
    SCHEMA_VERSION,
    DatasetStatistics,
    shard_name,
    traces_to_table,
)

__all__ = ["check_shard", "generate_dataset", "generate_shard", "read_manifest"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
_PROGRESS_EVERY = 64


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of the dataset in ``directory``.

    Raises:
        DatasetError: if it is missing, unreadable or of another format or schema version.
    """
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
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
    return manifest


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _shard_rows(manifest: dict[str, Any], index: int) -> int:
    per = int(manifest["traces_per_shard"])
    return max(0, min(per, int(manifest["num_traces"]) - index * per))


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
    tracer = TraceHandler()
    counter = SimulationCounter()

    def tick(n: int) -> None:
        if on_trace is not None and n % _PROGRESS_EVERY == 0:
            on_trace(n)

    with tracer, model.executions(rng) as execute:
        traces = simulate_valid(
            execute, tracer, rows, policy or InvalidPolicy(), counter, model_args, tick
        )
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
    tmp = directory / f".{final.name}.{os.getpid()}.tmp"
    try:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            row_group_size=int(manifest.get("rows_per_group", 256)),
        )
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return final


def _remove_stale_temporaries(directory: Path) -> None:
    for tmp in directory.glob(".shard-*.tmp"):
        try:
            pid = int(tmp.name.rsplit(".", 2)[-2])
        except ValueError:
            pid = -1
        if pid == os.getpid() or not _alive(pid):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    else:
        manifest = {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "model": model.name,
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

    Returns:
        The dataset directory.

    Raises:
        DatasetError: if ``directory`` holds a dataset made with another seed, shard size
            or model.
    """
    if isinstance(num_traces, bool) or not isinstance(num_traces, int) or num_traces < 1:
        raise ValueError(f"num_traces must be a positive integer, got {num_traces!r}")
    check_parallel(model, workers)
    if traces_per_shard < 1:
        raise ValueError(f"traces_per_shard must be positive, got {traces_per_shard!r}")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    manifest = _prepare_manifest(path, model, num_traces, seed, traces_per_shard)
    _write_json_atomic(path / MANIFEST, manifest)
    _remove_stale_temporaries(path)
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
    if workers and todo:

        def shard(j: int) -> int:
            generate_shard(model, path, todo[j], manifest, model_args, policy=policy)
            return _shard_rows(manifest, todo[j])

        def written(j: int, rows: int) -> None:
            nonlocal done
            done += rows
            if on_progress is not None:
                on_progress(done, num_traces)

        map_in_workers(shard, len(todo), workers, written)
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
