"""A PPX simulator that streams ``Sample`` messages forever stops at the engine's limit per
trace with a clear error, and the engine stays usable (issue 12, defect 6). Before, the
engine hung: its time-out applies to each reply, and every reply came at once."""

from __future__ import annotations

import threading

import pytest

from rotalumis.core import Model, Normal, TraceLimitError, Uniform, observe, sample
from rotalumis.remote.client import RemoteModel
from rotalumis.remote.server import PPXServer
from rotalumis.remote.transport import memory_pair

pytestmark = pytest.mark.timeout(120)


class Streams(Model):
    """Once ``endless`` is set, every execution draws forever."""

    endless = False

    def forward(self) -> float:
        mu = sample(Normal(0.0, 1.0), name="mu")
        observe(Normal(mu, 1.0), name="y")
        while self.endless and sample(Uniform(0.0, 1.0)) < 2.0:
            pass
        return mu


def test_endless_sample_stream_stops_at_max_choices_and_the_engine_recovers() -> None:
    simulator = Streams()
    client, server_transport = memory_pair(timeout=10.0)
    server = PPXServer(simulator, server_transport, seed=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        model = RemoteModel(transport=client, timeout=10.0)
        simulator.endless = True
        for _ in range(2):  # the second run starts cleanly after the abandoned execution
            with pytest.raises(TraceLimitError) as info:
                model.posterior(10, observe={"y": 0.3}, seed=4, max_choices=3000)
            assert "model 'Streams' made more than 3,000 random choices" in str(info.value)
            assert "seed 4" in str(info.value)
        simulator.endless = False
        post = model.posterior(50, observe={"y": 0.3}, seed=4, max_choices=3000)
        assert len(post) == 50
    finally:
        server.stop()
        thread.join(10)
