"""The PPX codec: round trips, agreement with the flatc-generated reference code, conventions."""

from __future__ import annotations

import flatbuffers
import pytest
import torch
from sim_models import ALL_SITES

from rotalumis.core import Normal, TruncatedNormal
from rotalumis.core.errors import ProtocolError
from rotalumis.remote._codec import OBSERVE_RESULT, RESET, RUN, TAG_RESULT, decode, encode
from rotalumis.remote.messages import (
    BODY_TYPES,
    DISTRIBUTION_FIELDS,
    DISTRIBUTION_TYPES,
    Handshake,
    HandshakeResult,
    Observe,
    ObserveResult,
    Reset,
    Run,
    RunResult,
    Sample,
    SampleResult,
    Tag,
    TagResult,
)
from rotalumis.remote.ppx_generated import (
    Message,
    MessageBody,
    Tensor,
)
from rotalumis.remote.ppx_generated import Normal as GNormal
from rotalumis.remote.ppx_generated import Sample as GSample
from rotalumis.remote.ppx_generated.Distribution import Distribution as GDistribution

pytestmark = pytest.mark.timeout(60)  # a hard limit for every test here


def same_value(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        ta, tb = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
        return ta.shape == tb.shape and torch.allclose(ta, tb, rtol=1e-6)
    if isinstance(a, (tuple, list)):
        return same_value(torch.tensor(a), torch.tensor(b))
    return float(a) == float(b)  # type: ignore[arg-type]


def same_message(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    for field in getattr(a, "__dataclass_fields__", {}):
        x, y = getattr(a, field), getattr(b, field)
        if field == "distribution":
            if x.name != y.name or not all(same_value(x.params[k], y.params[k]) for k in x.params):
                return False
        elif field in ("result", "value"):
            if not same_value(x, y):
                return False
        elif x != y:
            return False
    return True


DISTS = [cls(*params) for cls, params in ALL_SITES.values()] + [
    Normal(torch.zeros(3), torch.ones(3)),
    Normal(torch.arange(100.0).reshape(10, 10), 2.0),
]

MESSAGES = [
    Handshake("rotalumis test"),
    HandshakeResult("a system", "a model ü"),
    Run(),
    RunResult(None),
    RunResult(3.5),
    RunResult(torch.arange(6.0).reshape(2, 3)),
    SampleResult(-1.25),
    SampleResult(torch.tensor([1.0, 2.0])),
    ObserveResult(),
    Tag("forward:3", "t", 2.0),
    Tag("forward:3", None, torch.ones(2, 2)),
    TagResult(),
    Reset(),
    Observe("forward:9", "obs0", Normal(1.0, 2.0)),
    Observe("forward:9", None, Normal(1.0, 2.0), torch.arange(80.0)),
] + [Sample(f"site{i}", f"n{i}", d, control=i % 2 == 0) for i, d in enumerate(DISTS)]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(msg: object) -> None:
    assert same_message(decode(encode(msg)), msg)  # type: ignore[arg-type]


def test_every_distribution_kind_is_covered() -> None:
    sent = {m.distribution.name for m in MESSAGES if isinstance(m, Sample)}
    assert sent == set(DISTRIBUTION_TYPES)


def test_union_values_follow_the_schema() -> None:
    order = ["Handshake", "HandshakeResult", "Run", "RunResult", "Sample", "SampleResult"]
    order += ["Observe", "ObserveResult", "Tag", "TagResult", "Reset"]
    assert {cls.__name__: v for cls, v in BODY_TYPES.items()} == {
        n: i + 1 for i, n in enumerate(order)
    }
    dists = ["Normal", "Uniform", "Categorical", "Poisson", "Bernoulli", "Beta", "Exponential"]
    dists += ["Gamma", "LogNormal", "Binomial", "Weibull"]
    assert {n: i + 1 for i, n in enumerate(dists)} == DISTRIBUTION_TYPES
    assert list(DISTRIBUTION_FIELDS) == dists


def test_constant_messages() -> None:
    assert decode(RUN) == Run() and decode(RESET) == Reset()
    assert decode(OBSERVE_RESULT) == ObserveResult() and decode(TAG_RESULT) == TagResult()


# -- our bytes through the reference (flatc-generated) reader -------------------------------


def _body(buf: bytes, cls: type) -> object:
    message = Message.Message.GetRootAs(buf, 0)
    assert message.BodyType() == getattr(MessageBody.MessageBody, cls.__name__.split(".")[-1])
    table = message.Body()
    body = cls()
    body.Init(table.Bytes, table.Pos)
    return body


def test_reference_reader_reads_a_sample() -> None:
    buf = encode(Sample("forward:12", None, Normal(1.5, 2.0), control=False))
    body = _body(buf, GSample.Sample)
    assert body.Address() == b"forward:12"
    assert body.Name() == b""  # always written: pyprob calls .decode() on it
    assert body.Control() is False
    assert body.DistributionType() == GDistribution.Normal
    normal = GNormal.Normal()
    union = body.Distribution()
    normal.Init(union.Bytes, union.Pos)
    assert normal.Mean().DataAsNumpy().tolist() == [1.5]
    assert normal.Mean().ShapeLength() == 0  # scalars travel with shape []
    assert normal.Stddev().DataAsNumpy().tolist() == [2.0]
    assert not Message.Message.MessageBufferHasIdentifier(buf, 0)  # like pyprob and pyprob_cpp


@pytest.mark.parametrize("dist", DISTS, ids=lambda d: d.name)
def test_reference_reader_reads_every_distribution(dist: object) -> None:
    import importlib

    name = dist.name  # type: ignore[attr-defined]
    buf = encode(Sample("a", "b", dist))  # type: ignore[arg-type]
    body = _body(buf, GSample.Sample)
    assert body.DistributionType() == DISTRIBUTION_TYPES[name]
    table_cls = getattr(importlib.import_module(f"rotalumis.remote.ppx_generated.{name}"), name)
    table = table_cls()
    union = body.Distribution()
    table.Init(union.Bytes, union.Pos)
    for field, value in dist.params.items():  # type: ignore[attr-defined]
        accessor = "".join(p[:1].upper() + p[1:] for p in field.split("_"))
        t = getattr(table, accessor)()
        expected = torch.as_tensor(value, dtype=torch.float64)
        got = torch.tensor(t.DataAsNumpy().tolist(), dtype=torch.float64)
        shape = t.ShapeAsNumpy().tolist() if t.ShapeLength() else []
        assert list(expected.shape) == shape
        assert torch.allclose(got, expected.reshape(-1))


def test_none_travels_as_empty_data_shape_zero() -> None:
    from rotalumis.remote.ppx_generated import RunResult as GRunResult

    body = _body(encode(RunResult(None)), GRunResult.RunResult)
    assert body.Result().DataLength() == 0
    assert body.Result().ShapeAsNumpy().tolist() == [0]


# -- reference (flatbuffers.Builder) bytes through our reader -------------------------------


def _tensor(b: flatbuffers.Builder, data: list[float], shape: list[int] | None) -> int:
    Tensor.TensorStartDataVector(b, len(data))
    for x in reversed(data):
        b.PrependFloat64(x)
    d = b.EndVector()
    s = None
    if shape is not None:
        Tensor.TensorStartShapeVector(b, len(shape))
        for x in reversed(shape):
            b.PrependInt32(x)
        s = b.EndVector()
    Tensor.TensorStart(b)
    Tensor.TensorAddData(b, d)
    if s is not None:
        Tensor.TensorAddShape(b, s)
    return int(Tensor.TensorEnd(b))


def _builder_sample(shape: list[int] | None, control: bool | None, name: str | None) -> bytes:
    b = flatbuffers.Builder(64)
    address = b.CreateString("[forward()+0x96]")
    name_off = b.CreateString(name) if name is not None else None
    mean = _tensor(b, [0.5], shape)
    std = _tensor(b, [2.0], shape)
    GNormal.NormalStart(b)
    GNormal.NormalAddMean(b, mean)
    GNormal.NormalAddStddev(b, std)
    dist = GNormal.NormalEnd(b)
    GSample.SampleStart(b)
    GSample.SampleAddAddress(b, address)
    if name_off is not None:
        GSample.SampleAddName(b, name_off)
    GSample.SampleAddDistributionType(b, GDistribution.Normal)
    GSample.SampleAddDistribution(b, dist)
    if control is not None:
        GSample.SampleAddControl(b, control)
    body = GSample.SampleEnd(b)
    Message.MessageStart(b)
    Message.MessageAddBodyType(b, MessageBody.MessageBody.Sample)
    Message.MessageAddBody(b, body)
    b.Finish(Message.MessageEnd(b), file_identifier=b"PPXF" if shape is None else None)
    return bytes(b.Output())


@pytest.mark.parametrize("shape", [[], [1], None], ids=["shape[]", "shape[1]", "no-shape"])
@pytest.mark.parametrize("control", [None, True, False], ids=["absent", "true", "false"])
@pytest.mark.parametrize("name", [None, "", "mu"], ids=["no-name", "empty-name", "named"])
def test_reads_builder_sample(
    shape: list[int] | None, control: bool | None, name: str | None
) -> None:
    msg = decode(_builder_sample(shape, control, name))
    assert isinstance(msg, Sample)
    assert msg.address == "[forward()+0x96]"
    assert msg.name == (name or None)
    assert msg.control is (control is not False)  # absent means true
    assert msg.distribution.params == {"mean": 0.5, "stddev": 2.0}  # scalars, any shape


def test_one_element_tensor_with_more_dimensions_stays_a_tensor() -> None:
    value = decode(encode(SampleResult(torch.ones(1, 1))))
    assert isinstance(value, SampleResult) and value.result.shape == (1, 1)


def test_values_of_other_types() -> None:
    import numpy as np

    assert decode(encode(SampleResult(True))).result == 1.0  # type: ignore[union-attr]
    assert decode(encode(SampleResult(7))).result == 7.0  # type: ignore[union-attr]
    got = decode(encode(SampleResult(np.arange(4.0))))
    assert torch.equal(got.result, torch.arange(4.0))  # type: ignore[union-attr]
    with pytest.raises(ProtocolError, match="str"):
        encode(RunResult("not a number"))


def test_non_ppx_distribution_is_refused() -> None:
    with pytest.raises(ProtocolError, match="TruncatedNormal"):
        encode(Sample("a", None, TruncatedNormal(0.0, 1.0, -1.0, 1.0)))


# -- the hot-path caches give exactly what a full encode/decode gives ----------------------


def test_site_templates_and_learned_layouts() -> None:
    from rotalumis.remote._codec import encoder as codec

    for i in range(4):
        for msg in (
            Sample("forward:3", "mu", Normal(0.5 * i, 1.0 + i), control=i % 2 == 0),
            Observe("forward:4", "y", Normal(-1.0 * i, 2.0), None if i % 2 else 0.25 * i),
            SampleResult(float(i)),
            RunResult(None if i % 2 else float(i)),
        ):
            cached = encode(msg)
            codec._TEMPLATES.clear()
            codec._SCALAR_RESULTS.clear()
            assert encode(msg) == cached  # the template wrote the same bytes
            assert same_message(decode(cached), msg)
            assert same_message(decode(cached), msg)  # again, now from the learned layout


def test_a_learned_layout_never_matches_other_bytes() -> None:
    first = encode(Sample("forward:3", "mu", Normal(0.5, 1.0)))
    decode(first)
    other = encode(Sample("forward:4", "mu", Normal(0.5, 1.0)))  # same length, other address
    assert len(other) == len(first)
    assert decode(other).address == "forward:4"  # type: ignore[union-attr]
