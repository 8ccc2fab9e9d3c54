"""Malformed PPX bytes: always a ProtocolError (or DistributionError) that says what is wrong."""

from __future__ import annotations

import contextlib
import random
import struct

import pytest
import torch

from rotalumis.core import Categorical, Normal
from rotalumis.core.errors import DistributionError, ProtocolError
from rotalumis.remote._codec import decode, encode
from rotalumis.remote.messages import (
    Handshake,
    HandshakeResult,
    Observe,
    RunResult,
    Sample,
    SampleResult,
    Tag,
)

pytestmark = pytest.mark.timeout(60)  # a hard limit for every test here

SAMPLES = [
    encode(Sample("forward:12", "mu", Normal(1.0, 2.0))),
    encode(Sample("f", None, Categorical(torch.tensor([0.1, 0.2, 0.7])), control=False)),
    encode(Observe("forward:13", "obs", Normal(torch.zeros(20), 1.0), torch.ones(20))),
    encode(Tag("t", "name", torch.ones(3))),
    encode(HandshakeResult("sys", "model")),
    encode(Handshake("sys")),
    encode(RunResult(torch.ones(2, 2))),
    encode(SampleResult(0.5)),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("buf", SAMPLES, ids=lambda b: str(len(b)))
def test_every_truncation_is_detected(buf: bytes) -> None:
    original = decode(buf)
    for k in range(len(buf)):
        try:
            got = decode(buf[:k])
        except ProtocolError:
            continue
        # Only cutting padding or the NUL after the last string may leave a complete message.
        assert repr(got) == repr(original), f"prefix of {k}/{len(buf)} bytes decoded differently"
        assert k >= len(buf) - 8


@pytest.mark.timeout(60)
def test_random_garbage_never_escapes_as_another_exception() -> None:
    rng = random.Random(1234)
    for _ in range(3000):
        n = rng.choice([0, 1, 3, 8, 12, 16, 33, 64, 200])
        buf = bytes(rng.getrandbits(8) for _ in range(n))
        with contextlib.suppress(ProtocolError, DistributionError):
            decode(buf)


@pytest.mark.timeout(60)
def test_random_corruption_never_escapes_as_another_exception() -> None:
    rng = random.Random(99)
    for i in range(3000):
        buf = bytearray(SAMPLES[i % len(SAMPLES)])
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] = rng.getrandbits(8)
        with contextlib.suppress(ProtocolError, DistributionError):
            decode(bytes(buf))


def _patched(buf: bytes, old: bytes, new: bytes) -> bytes:
    assert buf.count(old) >= 1
    return buf.replace(old, new, 1)


def test_unknown_message_type() -> None:
    buf = bytearray(encode(SampleResult(1.0)))
    buf[20] = 42  # the body-type byte of our Message table
    with pytest.raises(ProtocolError, match="unknown type 42"):
        decode(bytes(buf))


def test_no_body() -> None:
    buf = bytearray(encode(SampleResult(1.0)))
    buf[20] = 0
    with pytest.raises(ProtocolError, match="no body"):
        decode(bytes(buf))


def test_unknown_distribution_type() -> None:
    buf = bytearray(SAMPLES[0])
    buf[40 + 16] = 77  # Sample table at 40, distribution type at +16
    with pytest.raises(ProtocolError, match=r"forward:12.*unknown distribution type 77"):
        decode(bytes(buf))


def test_missing_distribution() -> None:
    buf = bytearray(SAMPLES[0])
    buf[40 + 16] = 0
    with pytest.raises(ProtocolError, match="has no distribution"):
        decode(bytes(buf))


def test_invalid_utf8_address() -> None:
    buf = _patched(SAMPLES[0], b"forward:12", b"forw\xff\xfe:12")
    with pytest.raises(ProtocolError, match=r"Sample\.address.*UTF-8"):
        decode(buf)


def test_shape_that_does_not_match_the_data() -> None:
    buf = encode(RunResult(torch.ones(2, 2)))
    shape = struct.pack("<Iii", 2, 2, 2)
    with pytest.raises(ProtocolError, match=r"RunResult\.result.*shape \[3, 2\]"):
        decode(_patched(buf, shape, struct.pack("<Iii", 2, 3, 2)))


def test_vector_longer_than_the_message() -> None:
    buf = encode(RunResult(torch.ones(2, 2)))
    with pytest.raises(ProtocolError, match=r"RunResult\.result\.data.*runs past the end"):
        decode(
            _patched(
                buf,
                struct.pack("<I", 4) + struct.pack("<d", 1.0),
                struct.pack("<I", 4000) + struct.pack("<d", 1.0),
            )
        )


def test_invalid_parameters_name_the_site() -> None:
    buf = encode(Sample("forward:12", "mu", Normal(1.0, 2.0)))
    bad = _patched(buf, struct.pack("<d", 2.0), struct.pack("<d", -2.0))
    with pytest.raises(DistributionError, match="forward:12"):
        decode(bad)


def test_too_short_and_wrong_types() -> None:
    with pytest.raises(ProtocolError, match="too short"):
        decode(b"\x01\x02")
    with pytest.raises(TypeError):
        decode("text")  # type: ignore[arg-type]
