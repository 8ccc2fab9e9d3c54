"""pyprob 1.5.0's own PPX code as an encoder/decoder for golden-bytes tests.

Runs in ``.venv-pyprob``; never imports rotalumis. Reads JSON from stdin, writes JSON to stdout:

* ``encode``: a list of message specs in, a list of hex strings out. Tensors are built with
  pyprob's ``ModelServer._variable_to_protocol_tensor`` and messages with pyprob's generated
  ``ppx`` classes and ``flatbuffers`` 2.0, exactly as pyprob builds its requests.
* ``decode``: a list of hex strings in, a list of specs out, read the way pyprob reads
  replies (``ModelServer._get_message_body``, ``_protocol_tensor_to_variable``); each
  decoded distribution is also constructed as a pyprob distribution.

Spec of a message: ``{"type": "Sample", "address": ..., "name": ..., "control": ...,
"distribution": {"type": "Normal", "params": {"mean": T, "stddev": T}}}`` and similarly
for the other ten types, where a tensor ``T`` is ``{"data": [...], "shape": [...]}`` or
``null``.
"""

from __future__ import annotations

import importlib
import json
import sys

import flatbuffers
import pyprob.distributions as pdists
import torch
from pyprob.ppx import Distribution as DistributionUnion
from pyprob.ppx import Message, MessageBody
from pyprob.remote import ModelServer

FIELDS = {
    "Normal": ("mean", "stddev"),
    "Uniform": ("low", "high"),
    "Categorical": ("probs",),
    "Poisson": ("rate",),
    "Bernoulli": ("probs",),
    "Beta": ("concentration1", "concentration0"),
    "Exponential": ("rate",),
    "Gamma": ("concentration", "rate"),
    "LogNormal": ("loc", "scale"),
    "Binomial": ("total_count", "probs"),
    "Weibull": ("scale", "concentration"),
}


def _camel(field):
    return "".join(part[:1].upper() + part[1:] for part in field.split("_"))


def _module(name):
    return importlib.import_module(f"pyprob.ppx.{name}")


def _tensor(builder, spec):
    value = None
    if spec is not None:
        value = torch.tensor(spec["data"], dtype=torch.float64).reshape(spec["shape"])
    return ModelServer._variable_to_protocol_tensor(None, builder, value)


def _table(builder, name, children, scalars=()):
    """Build table ``name`` whose offset fields are ``children`` ({field: offset})."""
    mod = _module(name)
    getattr(mod, f"{name}Start")(builder)
    for field, off in children.items():
        getattr(mod, f"{name}Add{_camel(field)}")(builder, off)
    for field, value in scalars:
        getattr(mod, f"{name}Add{_camel(field)}")(builder, value)
    return getattr(mod, f"{name}End")(builder)


def encode(spec):
    builder = flatbuffers.Builder(64)
    kind = spec["type"]
    children, scalars = {}, []
    for field in ("address", "name", "system_name", "model_name"):
        if field in spec:
            children[field] = builder.CreateString(spec[field])
    for field in ("result", "value"):
        if field in spec:
            children[field] = _tensor(builder, spec[field])
    if "distribution" in spec:
        dist = spec["distribution"]
        params = {f: _tensor(builder, dist["params"][f]) for f in FIELDS[dist["type"]]}
        children["distribution"] = _table(builder, dist["type"], params)
        scalars.append(("distribution_type", getattr(DistributionUnion.Distribution, dist["type"])))
    if "control" in spec:
        scalars.append(("control", spec["control"]))
    body = _table(builder, kind, children, scalars)
    Message.MessageStart(builder)
    Message.MessageAddBodyType(builder, getattr(MessageBody.MessageBody, kind))
    Message.MessageAddBody(builder, body)
    builder.Finish(Message.MessageEnd(builder))
    return bytes(builder.Output()).hex()


def _plain(value):
    if value is None:
        return None
    return {"data": value.reshape(-1).tolist(), "shape": list(value.shape)}


def decode(hex_text):
    buf = bytearray.fromhex(hex_text)
    message = Message.Message.GetRootAsMessage(buf, 0)
    kind_value = message.BodyType()
    kind = next(k for k, v in vars(MessageBody.MessageBody).items() if v == kind_value)
    if kind in ("HandshakeResult", "RunResult", "Sample", "Observe", "Tag", "Reset"):
        body = ModelServer._get_message_body(None, buf)  # pyprob's own reader
    else:  # requests: pyprob only writes these; read them with its generated classes
        body = getattr(_module(kind), kind)()
        table = message.Body()
        body.Init(table.Bytes, table.Pos)
    to_value = lambda t: _plain(ModelServer._protocol_tensor_to_variable(None, t))  # noqa: E731
    out = {"type": kind}
    for field in ("Address", "Name", "SystemName", "ModelName"):
        if hasattr(body, field):
            key = {"SystemName": "system_name", "ModelName": "model_name"}.get(field, field.lower())
            out[key] = getattr(body, field)().decode("utf-8")
    for field in ("Result", "Value"):
        if hasattr(body, field):
            out[field.lower()] = to_value(getattr(body, field)())
    if hasattr(body, "Control"):
        out["control"] = bool(body.Control())
    if hasattr(body, "DistributionType"):
        dtype = body.DistributionType()
        name = next(k for k, v in vars(DistributionUnion.Distribution).items() if v == dtype)
        table = getattr(_module(name), name)()
        union = body.Distribution()
        table.Init(union.Bytes, union.Pos)
        params = {
            f: ModelServer._protocol_tensor_to_variable(None, getattr(table, _camel(f))())
            for f in FIELDS[name]
        }
        getattr(pdists, name)(*params.values())  # pyprob must accept the parameters
        out["distribution"] = {"type": name, "params": {k: _plain(v) for k, v in params.items()}}
    return out


def main():
    mode = sys.argv[1]
    items = json.load(sys.stdin)
    fn = encode if mode == "encode" else decode
    json.dump([fn(item) for item in items], sys.stdout)


if __name__ == "__main__":
    main()
