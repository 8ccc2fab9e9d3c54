"""Skip inputs: recent values and tags read by the value heads beside the LSTM state.

What must hold whatever the training quality: the inputs built for a batch of training
sequences are the ones a running surrogate builds step by step; a surrogate scores the
values of its own traces as training scored them (one at a time and batched); the settings
are saved, and files saved before them load without skip inputs.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from rotalumis.core import (
    Categorical,
    DatasetError,
    Model,
    Normal,
    Poisson,
    observe,
    sample,
    tag,
)
from rotalumis.surrogate import (
    SiteFilter,
    SurrogateConfig,
    SurrogateModel,
    SurrogateNetwork,
    SurrogateTraining,
    train_surrogate,
)
from rotalumis.surrogate._sequence import steps_of_trace
from rotalumis.surrogate._skip import history_inputs, push, skip_size


class Mixed(Model):
    """A count, a category, a learned normal, a tag, a scalar and a vector observation."""

    def forward(self) -> float:
        k = sample(Poisson(2.0), name="k")
        c = sample(Categorical([0.2, 0.3, 0.5]), name="c")
        z = sample(Normal(float(k + c), 1.0), name="z")
        tag(2.0 * float(z), "twice")
        observe(Normal(float(z), 0.5), name="y")
        observe(Normal(torch.full((3,), float(z)), 1.0), name="v")
        return float(z)


SKIP = SurrogateConfig(
    lstm_dim=16, address_dim=8, value_dim=8, skip_values=2, skip_tags=1, skip_width=2
)


@pytest.fixture(scope="module")
def mixed() -> SurrogateModel:
    torch.manual_seed(0)
    trained = train_surrogate(Mixed(), SKIP, SurrogateTraining(num_traces=600, epochs=1, seed=1))
    return trained.model


@pytest.mark.parametrize(("values", "tags"), [(2, 1), (0, 2), (3, 0), (1, 3)])
def test_training_inputs_are_the_running_ones(values: int, tags: int) -> None:
    config = SurrogateConfig(skip_values=values, skip_tags=tags, skip_width=2)
    g = torch.Generator().manual_seed(values * 10 + tags)
    b, t, w = 5, 9, 2
    features = torch.randn(b, t, w, generator=g)
    lengths = [9, 0, 4, 7, 1]
    present = torch.arange(t).expand(b, t) < torch.tensor(lengths).unsqueeze(1)
    is_tag = torch.rand(b, t, generator=g) < 0.4
    inputs = history_inputs(features, present, is_tag, config)
    assert inputs.shape == (b, t, skip_size(config))
    for row in range(b):
        running = torch.zeros(1, skip_size(config))
        for pos in range(lengths[row]):
            assert torch.equal(inputs[row, pos], running[0]), (row, pos)
            visit = features[row, pos : pos + 1]
            running = push(running, visit, bool(is_tag[row, pos]), config)
        if lengths[row] < t:  # the step after the last visit (end of trace) reads them all
            assert torch.equal(inputs[row, lengths[row]], running[0])


def _learned_scores(surrogate: SurrogateModel, batch: int) -> list[tuple[float, float]]:
    """(runtime, training) log-densities of the learned sites of prior traces."""
    net = surrogate.network
    model = SurrogateModel(net, surrogate.simulator, batch=batch)
    pairs = []
    for trace in model.traces(40, seed=batch):
        steps = steps_of_trace(trace, SiteFilter())
        trained = net.site_log_probs([steps])[0]
        sites = [v for v in trace.variables if v.kind in ("sample", "observe", "tag")]
        assert [v.address for v in sites] == [s.address for s in steps]
        for t, v in enumerate(sites):
            if v.kind == "tag" or v.address in net.fixed:  # exact: the simulator's prior
                continue
            pairs.append((float(v.log_prob), float(trained[t])))
    return pairs


@pytest.mark.parametrize("batch", [1, 16])
def test_running_surrogates_score_values_as_training_does(
    mixed: SurrogateModel, batch: int
) -> None:
    pairs = _learned_scores(mixed, batch)
    assert len(pairs) >= 80  # z, y and v of every trace
    for runtime, trained in pairs:
        assert math.isclose(runtime, trained, rel_tol=1e-4, abs_tol=1e-4)


def test_heads_read_the_skip_inputs(mixed: SurrogateModel) -> None:
    """Changing only a skip input changes a head's distribution (the inputs are wired)."""
    net = mixed.network
    site = net.layers(next(i for i, s in enumerate(net.specs) if s.name == "y"))
    h = torch.zeros(1, SKIP.lstm_dim)
    a = torch.zeros(1, skip_size(SKIP))
    b = a.clone()
    b[0, -3] = 3.0  # the latest tag's first feature
    with torch.no_grad():
        ma = site.distribution(torch.cat([h, a], 1)).mean
        mb = site.distribution(torch.cat([h, b], 1)).mean
    assert float(ma) != float(mb)


def test_skip_settings_are_saved_and_old_files_have_none(
    mixed: SurrogateModel, tmp_path: Path
) -> None:
    net = mixed.network
    loaded = SurrogateNetwork.load(net.save(tmp_path / "s.pt"))
    assert (loaded.config.skip_values, loaded.config.skip_tags, loaded.config.skip_width) == (
        2,
        1,
        2,
    )
    again = SurrogateModel(loaded, mixed.simulator, batch=1)
    a = [float(t.log_prob) for t in SurrogateModel(net, None, batch=1).traces(5, seed=3)]
    b = [float(t.log_prob) for t in again.traces(5, seed=3)]
    assert a == pytest.approx(b)
    old = {k: v for k, v in SKIP.to_dict().items() if not k.startswith("skip_")}
    assert SurrogateConfig.from_dict(old).skip_values == 0
    assert SurrogateConfig.from_dict(old).skip_tags == 0
    with pytest.raises(ValueError, match="unknown settings"):
        SurrogateConfig.from_dict({**SKIP.to_dict(), "skip_everything": 1})


def test_a_file_with_unknown_settings_is_named(mixed: SurrogateModel, tmp_path: Path) -> None:
    path = mixed.network.save(tmp_path / "s.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"] = payload["config"].replace('"skip_width"', '"skip_newer"')
    torch.save(payload, path)
    with pytest.raises(DatasetError, match="unknown settings"):
        SurrogateNetwork.load(path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"skip_values": -1}, "skip_values"), ({"skip_tags": 1.5}, "skip_tags"),
     ({"skip_width": 0}, "skip_width"), ({"skip_values": True}, "skip_values")],
)  # fmt: skip
def test_bad_skip_settings_are_named(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SurrogateConfig(**kwargs)  # type: ignore[arg-type]
