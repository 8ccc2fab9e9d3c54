"""Server and RemoteModel over the in-memory transport: equivalence with local runs, faults."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from sim_models import AllDistributions, FailsOnce, UnknownMean, UsesFactor, VectorSites

from rotalumis.core import Model, Normal, observe, sample
from rotalumis.core.errors import ModelError, ProtocolError, RemoteSimulatorError
from rotalumis.remote._codec import RUN, decode, encode
from rotalumis.remote.client import RemoteModel
from rotalumis.remote.messages import (
    Handshake,
    HandshakeResult,
    ObserveResult,
    Reset,
    Sample,
    SampleResult,
)
from rotalumis.remote.server import PPXServer
from rotalumis.remote.transport import MemoryClientTransport, memory_pair

pytestmark = pytest.mark.timeout(60)  # a hard limit for every test here

OBS = {"obs0": 8.0, "obs1": 9.0}


class Serving:
    """A PPXServer running in a thread on an in-memory transport."""

    def __init__(self, model: Model, timeout: float = 10.0) -> None:
        self.client, server_transport = memory_pair(timeout=timeout)
        self.server = PPXServer(model, server_transport, seed=0)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ask(self, msg: Any) -> Any:
        return decode(self.client.request(msg if isinstance(msg, bytes) else encode(msg)))

    def close(self) -> None:
        self.server.stop()
        self.thread.join(5)
        assert not self.thread.is_alive()


def serving(model: Model, timeout: float = 10.0) -> Iterator[Serving]:
    s = Serving(model, timeout)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def unknown_mean() -> Iterator[Serving]:
    yield from serving(UnknownMean())


def values(emp: Any, name: str) -> np.ndarray:
    return np.asarray(emp.get(name).to_numpy(), dtype=float)


@pytest.mark.timeout(60)
def test_handshake_and_repr(unknown_mean: Serving) -> None:
    reply = unknown_mean.ask(Handshake("tester"))
    assert isinstance(reply, HandshakeResult)
    assert reply.model_name == "UnknownMean" and reply.system_name.startswith("rotalumis")
    model = RemoteModel(transport=unknown_mean.client)
    assert model.name == "UnknownMean" and "UnknownMean" in repr(model)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "engine,options",
    [("is", {}), ("lmh", {"burn_in": 20}), ("rmh", {"burn_in": 20, "scale": 0.5})],
)
def test_remote_posterior_equals_local(unknown_mean: Serving, engine: str, options: dict) -> None:
    # The engine makes every random choice, so the same seed gives the very same posterior.
    remote = RemoteModel(transport=unknown_mean.client)
    got = remote.posterior(500, engine=engine, observe=OBS, seed=3, progress=False, **options)
    want = UnknownMean().posterior(
        500, engine=engine, observe=OBS, seed=3, progress=False, **options
    )
    np.testing.assert_allclose(values(got, "mu"), values(want, "mu"))
    np.testing.assert_allclose(got.log_weights, want.log_weights)


@pytest.mark.timeout(60)
def test_addresses_and_sites_match_local_runs() -> None:
    for s in serving(AllDistributions()):
        remote = RemoteModel(transport=s.client).get_trace(seed=5, observe={"obs": 20.0})
        local = AllDistributions().get_trace(seed=5, observe={"obs": 20.0})
        assert [v.address for v in remote] == [v.address for v in local]
        for r, lo in zip(remote, local, strict=True):
            assert (r.name, r.control, r.observed) == (lo.name, lo.control, lo.observed)
            assert float(r.value) == pytest.approx(float(lo.value))
        assert remote.result == pytest.approx(local.result)


@pytest.mark.timeout(60)
def test_tensor_sites_keep_their_shapes() -> None:
    for s in serving(VectorSites()):
        remote = RemoteModel(transport=s.client).get_trace(seed=1)
        local = VectorSites().get_trace(seed=1)
        for r, lo in zip(remote, local, strict=True):
            assert torch.as_tensor(r.value).shape == torch.as_tensor(lo.value).shape
            assert torch.allclose(
                torch.as_tensor(r.value).double(), torch.as_tensor(lo.value).double()
            )


@pytest.mark.timeout(60)
def test_out_of_sequence_requests_get_reset(unknown_mean: Serving) -> None:
    assert unknown_mean.ask(SampleResult(1.0)) == Reset()  # nothing to answer while idle
    assert isinstance(unknown_mean.ask(RUN), Sample)
    assert unknown_mean.ask(RUN) == Reset()  # Run in the middle of an execution
    assert isinstance(unknown_mean.ask(RUN), Sample)  # a fresh execution starts cleanly
    assert unknown_mean.ask(ObserveResult()) == Reset()  # a Sample wanted a SampleResult
    assert isinstance(unknown_mean.ask(Handshake("x")), HandshakeResult)


@pytest.mark.timeout(60)
def test_garbage_gets_reset_and_the_server_keeps_serving(unknown_mean: Serving, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="rotalumis.remote")
    assert unknown_mean.ask(b"\x00garbage bytes\xff" * 3) == Reset()
    assert isinstance(unknown_mean.ask(RUN), Sample)
    assert unknown_mean.ask(b"\x01\x02") == Reset()  # mid-execution: abandoned
    assert "bad PPX request" in caplog.text
    remote = RemoteModel(transport=unknown_mean.client)
    assert len(remote.prior(5, seed=0, progress=False)) == 5


@pytest.mark.timeout(60)
def test_failing_model_resets_and_recovers(caplog) -> None:
    caplog.set_level(logging.ERROR, logger="rotalumis.remote")
    for s in serving(FailsOnce()):
        remote = RemoteModel(transport=s.client)
        with pytest.raises(RemoteSimulatorError, match="abandoned the execution"):
            remote.get_trace(seed=0)
        assert "simulator bug" in caplog.text
        assert len(remote.prior(3, seed=0, progress=False)) == 3


@pytest.mark.timeout(60)
def test_factor_cannot_be_served(caplog) -> None:
    caplog.set_level(logging.ERROR, logger="rotalumis.remote")
    for s in serving(UsesFactor()):
        with pytest.raises(RemoteSimulatorError):
            RemoteModel(transport=s.client).get_trace(seed=0)
        assert "factor() at" in caplog.text


class Blocking(Model):
    """Blocks inside its first execution until released."""

    def __init__(self) -> None:
        super().__init__("Blocking")
        self.release = threading.Event()

    def forward(self) -> float:
        x = sample(Normal(0.0, 1.0), name="x")
        self.release.wait(30)
        observe(Normal(x, 1.0), name="y")
        return x


@pytest.mark.timeout(60)
def test_a_simulator_that_stops_answering_times_out_and_the_engine_recovers() -> None:
    model = Blocking()
    for s in serving(model, timeout=0.5):
        remote = RemoteModel(transport=s.client)
        start = time.monotonic()
        with pytest.raises(RemoteSimulatorError, match=r"within 0\.5 s"):
            remote.get_trace(seed=0)
        assert time.monotonic() - start < 3.0
        model.release.set()  # the simulator finishes late; its stale reply is discarded
        assert len(remote.prior(3, seed=0, progress=False)) == 3


@pytest.mark.timeout(30)
def test_no_simulator_at_all_times_out() -> None:
    client, _ = memory_pair(timeout=0.2)
    with pytest.raises(RemoteSimulatorError):
        RemoteModel(transport=client)


@pytest.mark.timeout(30)
def test_handshake_answered_by_something_else(unknown_mean: Serving) -> None:
    class Liar(MemoryClientTransport):
        def request(self, data: bytes) -> bytes:
            return encode(Reset())

    with pytest.raises(ProtocolError, match="handshake"):
        RemoteModel(transport=Liar(unknown_mean.client._link))


@pytest.mark.timeout(30)
def test_forward_takes_no_arguments(unknown_mean: Serving) -> None:
    with pytest.raises(ModelError, match="no arguments"):
        RemoteModel(transport=unknown_mean.client).forward(1.0)


class Scripted(MemoryClientTransport):
    """A fake simulator: answers the handshake, then replays ``replies`` in order."""

    def __init__(self, replies: list[bytes]) -> None:
        super().__init__(memory_pair()[0]._link, timeout=1.0)
        self.replies = [encode(HandshakeResult("fake", "Scripted")), *replies]

    def request(self, data: bytes) -> bytes:
        return self.replies.pop(0)


@pytest.mark.timeout(30)
def test_engine_rejects_malformed_replies_with_protocol_error() -> None:
    remote = RemoteModel(transport=Scripted([b"\x00" * 40, encode(Reset()), encode(Reset())]))
    with pytest.raises(ProtocolError, match="PPX"):
        remote.get_trace(seed=0)
    with pytest.raises(RemoteSimulatorError, match="abandoned"):  # Reset twice in a row
        remote.get_trace(seed=0)


@pytest.mark.timeout(30)
def test_engine_rejects_out_of_order_replies() -> None:
    remote = RemoteModel(transport=Scripted([encode(HandshakeResult("again", "x"))]))
    with pytest.raises(ProtocolError, match="unexpected HandshakeResult"):
        remote.get_trace(seed=0)
