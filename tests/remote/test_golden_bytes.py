"""Golden bytes both ways: pyprob's own ppx code encodes, rotalumis decodes, and vice versa.

For every message type and every distribution type. pyprob runs in ``.venv-pyprob`` through
``peers/pyprob_codec.py``; messages cross as hex in JSON and are compared as "specs"
(plain dicts), with scalars of shape ``[]`` and ``[1]`` treated alike and float32 rounding
allowed (pyprob reads every tensor as float32).
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from ppx_helpers import PEERS

from rotalumis.remote._codec import decode, encode
from rotalumis.remote.messages import DISTRIBUTION_FIELDS, PPXMessage

pytestmark = pytest.mark.interop


def T(data: list[float] | float, shape: list[int] | None = None) -> dict[str, Any]:
    data = data if isinstance(data, list) else [data]
    return {"data": data, "shape": [len(data)] if shape is None else shape}


SCALAR_PARAMS = {
    "Normal": [0.5, 2.0],
    "Uniform": [-1.0, 3.0],
    "Categorical": None,
    "Poisson": [3.5],
    "Bernoulli": [0.25],
    "Beta": [2.0, 5.0],
    "Exponential": [1.5],
    "Gamma": [3.0, 2.0],
    "LogNormal": [0.5, 0.25],
    "Binomial": [10.0, 0.375],
    "Weibull": [2.0, 1.5],
}


def dist_spec(name: str, shape: list[int]) -> dict[str, Any]:
    fields = DISTRIBUTION_FIELDS[name]
    if name == "Categorical":
        return {"type": name, "params": {"probs": T([0.125, 0.5, 0.375])}}
    values = SCALAR_PARAMS[name]
    assert values is not None
    return {"type": name, "params": {f: T(v, shape) for f, v in zip(fields, values, strict=True)}}


def specs() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"type": "Handshake", "system_name": "pyprob 1.5.0"},
        {"type": "HandshakeResult", "system_name": "rotalumis", "model_name": "Model ü"},
        {"type": "Run"},
        {"type": "RunResult", "result": None},
        {"type": "RunResult", "result": T([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3])},
        {"type": "SampleResult", "result": T(0.75, [])},
        {"type": "SampleResult", "result": T([1.0, -2.0])},
        {"type": "ObserveResult"},
        {"type": "Tag", "address": "forward:7", "name": "t", "value": T(4.0, [])},
        {"type": "TagResult"},
        {"type": "Reset"},
        {
            "type": "Observe",
            "address": "forward:9",
            "name": "obs0",
            "distribution": dist_spec("Normal", []),
            "value": None,
        },
        {
            "type": "Observe",
            "address": "forward:9",
            "name": "",
            "distribution": dist_spec("Normal", [1]),
            "value": T(8.5, [1]),
        },
    ]
    for i, name in enumerate(DISTRIBUTION_FIELDS):
        for shape in ([], [1]):
            out.append(
                {
                    "type": "Sample",
                    "address": f"[forward()+0x{i:x}]",
                    "name": f"site{i}" if shape else "",
                    "distribution": dist_spec(name, shape),
                    "control": i % 2 == 0,
                }
            )
    out.append(
        {
            "type": "Sample",
            "address": "vector",
            "name": "v",
            "distribution": {
                "type": "Normal",
                "params": {"mean": T([0.0, 1.0]), "stddev": T(1.0, [])},
            },
            "control": True,
        }
    )
    return out


def canonical(value: Any) -> Any:
    """A spec tensor as None, a float (one element, shape [] or [1]) or (shape, data)."""
    if value is None or not value["data"]:
        return None
    if len(value["data"]) == 1 and value["shape"] in ([], [1]):
        return float(value["data"][0])
    return (list(value["shape"]), [float(x) for x in value["data"]])


def same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return False
        if {"data", "shape"} == set(a) or {"data", "shape"} == set(b):
            return same(canonical(a), canonical(b))
        return all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return a[0] == b[0] and all(same(x, y) for x, y in zip(a[1], b[1], strict=True))
    return bool(a == b)


def to_spec(msg: PPXMessage) -> dict[str, Any]:
    """Our decoded message as a spec (the form pyprob's side produces)."""

    def tensor(v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, (tuple, list)):
            v = torch.tensor(v)
        if isinstance(v, torch.Tensor):
            return {"data": v.reshape(-1).tolist(), "shape": list(v.shape)}
        return {"data": [float(v)], "shape": []}

    out: dict[str, Any] = {"type": type(msg).__name__}
    for field in getattr(msg, "__dataclass_fields__", {}):
        value = getattr(msg, field)
        if field == "distribution":
            params = {k: tensor(v) for k, v in value.params.items()}
            out[field] = {"type": value.name, "params": params}
        elif field in ("result", "value"):
            out[field] = tensor(value)
        elif field == "name":
            out[field] = value or ""
        else:
            out[field] = value
    return out


def from_spec(spec: dict[str, Any]) -> PPXMessage:
    """Build our message from a spec (for the rotalumis -> pyprob direction)."""
    from rotalumis.core import distributions as dists
    from rotalumis.remote import messages

    def value(t: Any) -> Any:
        c = canonical(t)
        return c if c is None or isinstance(c, float) else torch.tensor(c[1]).reshape(c[0])

    kwargs: dict[str, Any] = {}
    for key, v in spec.items():
        if key == "type":
            continue
        if key == "distribution":
            params = [value(p) for p in v["params"].values()]
            kwargs[key] = getattr(dists, v["type"])(*params)
        elif key in ("result", "value"):
            kwargs[key] = value(v)
        elif key == "name":
            kwargs[key] = v or None
        else:
            kwargs[key] = v
    return getattr(messages, spec["type"])(**kwargs)  # type: ignore[no-any-return]


def pyprob_codec(python: Path, mode: str, items: list[Any]) -> list[Any]:
    done = subprocess.run(
        [str(python), str(PEERS / "pyprob_codec.py"), mode],
        input=json.dumps(items),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.timeout(180)
def test_pyprob_bytes_decode_in_rotalumis(pyprob_python: Path) -> None:
    sent = specs()
    encoded = pyprob_codec(pyprob_python, "encode", sent)
    assert len(encoded) == len(sent)
    for spec, hex_text in zip(sent, encoded, strict=True):
        got = to_spec(decode(bytes.fromhex(hex_text)))
        if "control" not in spec and got["type"] == "Sample":
            spec = {**spec, "control": True}
        assert same(got, spec), (spec, got)


@pytest.mark.timeout(180)
def test_rotalumis_bytes_decode_in_pyprob(pyprob_python: Path) -> None:
    sent = specs()
    ours = [encode(from_spec(spec)).hex() for spec in sent]
    decoded = pyprob_codec(pyprob_python, "decode", ours)
    for spec, got in zip(sent, decoded, strict=True):
        assert same(got, spec), (spec, got)


def test_every_message_and_distribution_type_is_covered() -> None:
    kinds = {s["type"] for s in specs()}
    assert len(kinds) == 11
    dists = {s["distribution"]["type"] for s in specs() if s["type"] == "Sample"}
    assert dists == set(DISTRIBUTION_FIELDS)
